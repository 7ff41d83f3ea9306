"""An Obsidian highlight whose own lines start with "- " parses as an item with child items (its
continuation "  - and a second line" is a nested list item in Markdown). On a page the user
edited elsewhere, such a highlight is still syncd's untouched block: an upstream edit replaces
it, and it is never taken for a block the user deleted or edited (found by the daemon crash
suite at 20 trials: an upstream edit that never arrived)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import Harness

LIST_LIKE = "- starts like a list item\n- and a second line that does too"


@pytest.mark.parametrize("twin", [False, True], ids=["alone", "with-a-same-text-twin"])
def test_a_list_like_highlight_takes_upstream_edits_on_an_edited_page(
    tmp_path: Path, twin: bool
) -> None:
    h = Harness(tmp_path, "obsidian")
    h.source.add_book(1, "Book", [])
    first = h.source.add_highlight(1, LIST_LIKE if twin else "plain first", location=296)
    h.source.add_highlight(1, "middle one", location=300)
    edited = h.source.add_highlight(1, LIST_LIKE, location=38295, note="a note")
    h.sync()
    page = h.read(1)
    h.write(1, page.replace("## Metadata\n", "## Metadata\n- Mine: a line of my own\n"))

    h.source.edit(edited, text="Edited upstream: " + LIST_LIKE)
    summary = h.sync()

    assert (summary.updated, summary.conflicts) == (1, 0)
    text = h.read(1)
    assert "- Mine: a line of my own\n" in text
    assert "- Edited upstream: - starts like a list item\n  - and a second line" in text
    assert text.count("- - starts like a list item\n") == (1 if twin else 0)
    row = h.page(1)
    assert row.tombstones == frozenset()
    assert {first, edited} <= set(row.blocks)
    # Recorded as written: the next pass finds both blocks again, exactly.
    again = h.sync()
    assert (again.updated, again.conflicts) == (0, 0) and h.read(1) == text
    assert h.page(1).tombstones == frozenset()
