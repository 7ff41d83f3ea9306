"""The pass summary counts every page it considered: a re-run over untouched notes says
`N unchanged`, not 0."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from tests.harness import Harness


@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_a_rerun_counts_every_untouched_page_as_unchanged(
    tmp_path: Path, fmt: Literal["obsidian", "logseq"]
) -> None:
    target = Harness(tmp_path, fmt)
    for book_id in (1, 2, 3):
        target.source.add_book(book_id, f"Book {book_id}", [f"highlight of {book_id}"])
    first = target.sync()
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)

    again = target.sync()
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)

    target.source.add_highlight(2, "a new one")
    target.write(3, target.read(3) + "\nmy own line\n")  # edited by the user, not upstream
    changed = target.sync()
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 2)

    dry = target.sync(dry_run=True)
    assert (dry.created, dry.updated, dry.unchanged) == (0, 0, 3)
