"""Logseq pages written with custom templates read back in Logseq's own parser (mldoc) as the
template meant them, whatever a highlight holds: every block syncd wrote is one block there, at
its depth, with its content, so a highlight's text stays in one block (issue 10).

The highlights are the stand-in's hostile texts and notes (lines that start with `- `, `> `,
`#`, `---`, `key::`, fences, blank lines, CRLF, ...), written on a first pass and appended to a
page the user edited.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.standin.library import _SPECIAL_NOTES, _SPECIAL_TEXTS
from tests.harness import Harness
from tests.mldoc import outline
from tests.unit.template_cases import CASES, TemplateCase

pytestmark = pytest.mark.mldoc

LOGSEQ_CASES = [case for case in CASES if case.fmt == "logseq"]
EXTRA_TEXTS = (
    "- a first line that is a list item",
    "> a first line that is a quote\n> and its second line",
    "# a first line that is a heading\n## and a second",
    "---\nfront: matter\n---",
    "\tan indented first line",
    "id:: 6571c0de-0000-4000-8000-00000000abcd",
    "**Tags**: #[[not a tag child]]",
)
_BLOCK_START = re.compile(r"^(\t*)-(?: |$)")


def intended(text: str) -> list[tuple[int, str]]:
    """The outline syncd wrote, by its own serialisation: a block starts at `<tabs>- `, its
    continuation lines are at `<tabs>  `; (depth, content) per block, as outline.js prints it."""
    blocks: list[tuple[int, list[str]]] = []
    for line in text.split("\n"):
        start = _BLOCK_START.match(line)
        if start is not None:
            blocks.append((len(start[1]), [line[start.end() :]]))
        elif blocks:
            indent = "\t" * blocks[-1][0] + "  "
            assert line.startswith(indent) or not line.strip(), f"stray line {line!r}"
            blocks[-1][1].append(line[len(indent) :])
    return [(depth, "\n".join(lines).rstrip()) for depth, lines in blocks]


def read(node: dict[str, Any], depth: int = 0) -> list[tuple[int, str]]:
    out = [(depth, node["content"])]
    for child in node["children"]:
        out += read(child, depth + 1)
    return out


def mldoc_blocks(page: dict[str, Any]) -> list[tuple[int, str]]:
    return [entry for block in page["blocks"] for entry in read(block)]


def _hostile_library(h: Harness) -> None:
    texts = [*_SPECIAL_TEXTS, *EXTRA_TEXTS]
    notes = [note for note in _SPECIAL_NOTES if note is not None]
    h.source.add_book(1, "Hostile Texts")
    for n, text in enumerate(texts):
        h.source.add_highlight(
            1,
            text,
            note=notes[n % len(notes)],
            tags=("two words", "x") if n % 3 == 0 else (),
            highlighted_at=datetime(2024, 1, 1 + n % 28, tzinfo=UTC),
        )
    h.source.add_book(2, "Notes Only", ["plain"])
    for note in notes:
        h.source.add_highlight(2, "with a hostile note", note=note)


@pytest.mark.parametrize("case", LOGSEQ_CASES, ids=str)
def test_hostile_highlights_read_back_in_mldoc_as_written(
    tmp_path: Path, case: TemplateCase
) -> None:
    h = Harness(tmp_path, "logseq", templates=case.templates())
    _hostile_library(h)
    h.sync()
    # A second pass appends the hostile texts again to a page the user edited.
    h.write(1, h.read(1) + "\n- my own block")
    for text in (*EXTRA_TEXTS, *_SPECIAL_TEXTS[:8]):
        h.source.add_highlight(1, "again: " + text, note="- a note\n# with a heading")
    h.sync()
    pages = [h.path(1), h.path(2)]
    for path, page in zip(pages, outline(pages), strict=True):
        text = path.read_text(encoding="utf-8")
        assert mldoc_blocks(page) == intended(text), path.name
        assert page["page_properties"]["title"] == h.page(1 if path == pages[0] else 2).page_title
    # Each highlight is the blocks its template gave it, wherever it stands in the page.
    for book_id, path in zip((1, 2), pages, strict=True):
        written = intended(path.read_text(encoding="utf-8"))
        blocks = h.page(book_id).blocks
        assert len(blocks) == len(h.source.live_ids(book_id))
        for record in blocks.values():
            own = intended(record.text.rstrip("\n"))
            position = next(i for i in range(len(written)) if written[i : i + len(own)] == own)
            assert written[position][0] == own[0][0]


def test_the_comparison_sees_a_block_mldoc_splits(tmp_path: Path) -> None:
    """Not vacuous: an unescaped continuation line that starts like a block or a heading is
    one block by syncd's serialisation and two in mldoc."""
    path = tmp_path / "page.md"
    path.write_text("title:: x\n\n- > quote\n  - not a block\n  # nor a heading", encoding="utf-8")
    [page] = outline([path])
    assert mldoc_blocks(page) != intended(path.read_text(encoding="utf-8"))
