"""Hostile upstream data: titles and tags made to escape the vault, huge titles, highlight texts
full of Markdown/Logseq/Jinja syntax. Nothing lands outside the vault, nothing is evaluated as a
template, and Logseq's own parser reads each highlight back as exactly one block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.harness import Harness
from tests.mldoc import outline

HOSTILE_TITLES = [
    "../../escape",
    "/etc/passwd",
    "C:\\Windows\\system32",
    "a\x00b",
    "CON",
    "nul.txt",
    ".",
    "..",
    "...",
    "trailing dot.",
    "trailing space ",
    "x" * 10_000,
    "emoji 🧵🔥 and RTL \u202eevil\u202c",
    "{{ 3*33333 }} {% if true %}jinja{% endif %}",
    "#tag [[link]] ^block | pipe",
    "new\nline title",
]

HOSTILE_TEXTS = [
    "- starts like a bullet",
    "key:: value that looks like a property",
    "# looks like a heading",
    "[[page]] and ]] and [[ unbalanced",
    "^caret at start",
    "{{embed [[x]]}} and {{ 3*33333 }} and {% raw %}",
    "%} closes a tag that never opened",
    "<div>html <b>bold</b></div>",
    "line one\n- second line bullet\n  - indented bullet\n\n# heading inside\nkey:: value",
    "```\ncode fence never closed",
    "tab\tseparated\tvalues",
]


@pytest.fixture(params=["obsidian", "logseq"])
def hostile(tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    return _synced(tmp_path, request.param)


def _synced(tmp_path: Path, fmt: str) -> Harness:
    h = Harness(tmp_path, fmt)  # type: ignore[arg-type]
    for book_id, title in enumerate(HOSTILE_TITLES, start=1):
        h.source.add_book(book_id, title, tags=("../x", "a/b", "#[[t]]"))
        for text in HOSTILE_TEXTS:
            h.source.add_highlight(
                book_id, text, note="note with {{ 3*33333 }} and - dash", tags=("../../up", "{{x}}")
            )
    h.sync()
    return h


def test_nothing_leaves_the_vault_and_every_book_has_one_page(hostile: Harness) -> None:
    root = hostile.vault.resolve()
    files = hostile.files_on_disk()
    assert len(files) == len(HOSTILE_TITLES)
    for path in files:
        assert path.resolve().is_relative_to(root)
        assert len(path.name.encode()) <= 200
        assert not re.search(r'[\\:*?"<>|\x00-\x1f]', path.name)
    names = [p.name.casefold() for p in files]
    assert len(set(names)) == len(names)
    assert not (hostile.vault.parent / "escape.md").exists()


def test_no_template_is_evaluated(hostile: Harness) -> None:
    for path in hostile.files_on_disk():
        text = path.read_text(encoding="utf-8")
        assert "99999" not in text  # printed as written, never computed
        assert "{{ 3*33333 }}" in text


def test_logseq_reads_each_hostile_highlight_as_one_block(tmp_path: Path) -> None:
    pages = outline(_synced(tmp_path, "logseq").files_on_disk())
    for page in pages:
        header = page["blocks"][-1]
        assert header["content"].startswith("Highlights first synced by")
        children = header["children"]
        assert len(children) == len(HOSTILE_TEXTS)
        for block, text in zip(children, HOSTILE_TEXTS, strict=True):
            unescaped = re.sub(r"\\([-#:$<`~\\])", r"\1", block["content"])
            assert unescaped.startswith(text.strip()), (block["content"], text)
            assert block["properties"] == {}
            kids = [c["content"] for c in block["children"]]
            assert [k.split(":")[0] for k in kids] == ["**Tags**", "**Note**"]
