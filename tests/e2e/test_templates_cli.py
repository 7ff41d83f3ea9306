"""A user's own templates, through the real CLI: `templates init`, `check` (warnings and broken
templates), a pass with them, a template change, and `templates show`."""

from __future__ import annotations

from pathlib import Path

from syncd.notes.template_set import SLOTS, SUFFIX
from tests.e2e.conftest import Setup

T1 = "2024-03-05T09:15:00+00:00"
T2 = "2024-03-06T10:00:00+00:00"

QUOTE = """> {{ highlight_text | replace("\\n  ", "\\n> ") }}
> — {{ highlight_location }}{% if highlight_note %}

Note: {{ highlight_note }}{% endif %}

---
"""


def _use_templates(setup: Setup, target: str, folder: Path) -> None:
    text = setup.config.read_text(encoding="utf-8")
    marker = f'name = "{target}"\n'
    setup.config.write_text(
        text.replace(marker, marker + f'templates = "{folder}"\n'), encoding="utf-8"
    )


def test_init_writes_every_default_and_refuses_to_overwrite(setup: Setup, tmp_path: Path) -> None:
    folder = tmp_path / "tpl"
    done = setup.run("templates", "init", str(folder), "--format", "logseq")
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in folder.iterdir())
    assert written == sorted(slot + SUFFIX for slot in SLOTS["logseq"])
    again = setup.run("templates", "init", str(folder), "--format", "logseq")
    assert again.returncode == 2
    assert "already exists" in again.stderr
    # The defaults as written are the defaults: a pass with them writes Readwise's default pages.
    _use_templates(setup, "lsq", folder)
    assert setup.run("--once", now=T1).returncode == 0
    page = next((setup.logseq / "pages").glob("*(highlights).md")).read_text(encoding="utf-8")
    assert "\n- Highlights first synced by [[Readwise]] [[Mar 5th, 2024]]\n\t- " in page


def test_check_names_unknown_variables_and_broken_templates(setup: Setup, tmp_path: Path) -> None:
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "page_title.j2").write_text("# {{ titel }}\n", encoding="utf-8")
    _use_templates(setup, "obs", folder)
    done = setup.run("check")
    assert done.returncode == 0, done.stderr
    assert 'page_title.j2:1: "titel" is not a Readwise variable' in done.stdout
    assert 'did you mean "title"' in done.stdout

    (folder / "highlight.j2").write_text(
        "- {{ highlight_text }}\n{% if highlight_note %}\n  {{ highlight_note }\n", encoding="utf-8"
    )
    for args in (("check",), ("--once",)):
        broken = setup.run(*args)
        assert broken.returncode == 2, broken.stderr
        assert f"{folder / 'highlight.j2'}:3" in broken.stderr
    assert not any(setup.obsidian.rglob("*.md")), "nothing is written with a broken template"

    (folder / "highlight.j2").write_text("- {{ highlight_text|wordcount(1, 2) }}\n")
    raised = setup.run("--once")
    assert raised.returncode == 2 and f"{folder / 'highlight.j2'}:1" in raised.stderr

    (folder / "highlight.j2").unlink()
    (folder / "highlight.jinja").write_text("x")  # ignored: not a .j2 file
    (folder / "higlight.j2").write_text("x")
    typo = setup.run("check")
    assert typo.returncode == 2
    assert 'did you mean "highlight.j2"' in typo.stderr


def test_a_pass_with_a_quote_template_then_a_template_change(setup: Setup, tmp_path: Path) -> None:
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "highlight.j2").write_text(QUOTE, encoding="utf-8")
    _use_templates(setup, "obs", folder)
    first = setup.run("--once", now=T1)
    assert first.returncode == 0, first.stderr
    pages = sorted(setup.obsidian.rglob("*.md"))
    assert pages and all("\n> — " in p.read_text(encoding="utf-8") for p in pages)
    second = setup.run("--once", now=T1)
    assert "obs: 0 created, 0 updated" in second.stdout

    touched, untouched = pages[0], pages[1:]
    touched.write_text(touched.read_text(encoding="utf-8") + "\nmy own line\n", encoding="utf-8")
    before = touched.read_bytes()
    (folder / "highlight.j2").write_text(QUOTE.replace("---", "***"), encoding="utf-8")
    plan = setup.run("--once", "--dry-run", now=T2)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.count("re-rendered with the target's new templates") == len(untouched)
    assert setup.run("--once", now=T2).returncode == 0
    assert touched.read_bytes() == before, "a page the user touched is never re-rendered"
    for page in untouched:
        text = page.read_text(encoding="utf-8")
        assert "\n***" in text and "\n---\n" not in text.split("## Highlights", 1)[1]
    assert "obs: 0 created, 0 updated" in setup.run("--once", now=T2).stdout

    book_id = next(bid for bid, row in setup.pages("obs").items() if row[2] == "live")
    path = setup.pages("obs")[book_id][0]
    shown = setup.run("templates", "show", "--target", "obs", str(book_id))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (setup.obsidian / path).read_text(encoding="utf-8")
    assert path in shown.stderr
