"""The block-level merge through the real CLI and the stand-in server, for both formats."""

from __future__ import annotations

import json

from syncd.model import Book
from tests.e2e.conftest import Setup
from tests.e2e.test_once import _books

T1 = "2024-03-05T09:15:00+00:00"
T2 = "2024-03-07T18:40:00+00:00"


def _pick_book(books: dict[int, Book]) -> Book:
    """A book with four or more single-line, distinct highlights (easy to edit by hand)."""
    for book in sorted(books.values(), key=lambda b: b.id):
        live = book.live_highlights()
        simple = [h for h in live if "\n" not in h.text.strip() and len(h.text.strip()) > 20]
        if not book.is_deleted and len(live) >= 4 and len(simple) == len(live):
            texts = [h.text.strip() for h in live]
            urls = [h.url for h in live]
            unrelated = all(a not in b for a in texts for b in texts if a is not b)
            if unrelated and all(urls) and len(set(urls)) == len(urls):
                return book
    raise AssertionError("the generated library has no simple book")


def _without_block(lines: list[str], needle: str) -> list[str]:
    """The lines with the highlight that contains `needle` removed, child blocks and all."""
    start = next(i for i, line in enumerate(lines) if needle in line)
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while (
        end < len(lines)
        and lines[end].strip()
        and (len(lines[end]) - len(lines[end].lstrip()) > indent)
    ):
        end += 1
    return lines[:start] + lines[end:]


def test_user_edits_and_upstream_changes_merge_per_block(setup: Setup) -> None:
    assert setup.run("--once", now=T1).returncode == 0
    book = _pick_book(_books(setup))
    keep_mine, edited_up, deleted_up, deleted_by_me = book.live_highlights()[:4]
    roots = {"obs": setup.obsidian, "lsq": setup.logseq}
    pages = {t: setup.pages(t)[book.id][0] for t in roots}
    for target, root in roots.items():
        path = root / pages[target]
        text = path.read_text(encoding="utf-8")
        text = text.replace(keep_mine.text.strip(), keep_mine.text.strip() + " (my edit)")
        lines = _without_block(text.split("\n"), deleted_by_me.text.strip())
        own = "My own paragraph." if target == "obs" else "- my own block"
        path.write_text("\n".join(lines) + "\n" + own + "\n", encoding="utf-8")

    setup.library.edit_highlight(edited_up.id, text="Corrected upstream: " + edited_up.text.strip())
    setup.library.delete_highlight(deleted_up.id)
    setup.library.edit_highlight(keep_mine.id, text="Readwise changed this too")
    new_id = setup.library.add_highlight(book.id, text="A highlight added after the edits")

    plan = setup.run("--once", "--dry-run", now=T2)
    assert plan.returncode == 0, plan.stderr
    assert "conflict" in plan.stdout and "blocks affected" in plan.stdout

    result = setup.run("--once", now=T2)
    assert result.returncode == 0, result.stderr
    for target, root in roots.items():
        text = (root / pages[target]).read_text(encoding="utf-8")
        assert keep_mine.text.strip() + " (my edit)" in text  # the user's edit wins
        assert "Readwise changed this too" not in text
        assert "Corrected upstream: " + edited_up.text.strip() in text
        assert f"({deleted_up.url})" not in text
        assert f"({deleted_by_me.url})" not in text  # stays deleted
        assert text.count("A highlight added after the edits") == 1
        assert ("My own paragraph." if target == "obs" else "- my own block") in text

    status = json.loads(setup.run("status", "--json").stdout)
    for target in status["targets"]:
        assert [c["highlight_id"] for c in target["conflicts"]] == [keep_mine.id]
    again = setup.run("--once", now=T2)
    assert "0 created, 0 updated" in again.stdout
    assert new_id > 0
