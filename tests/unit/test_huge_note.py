"""A note too large for a block merge gets new highlights appended, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.sync import plan
from tests.harness import Harness


@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_past_the_limit_only_appends_then_merges_again_below_it(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan, "MERGE_LIMIT_CHARS", 5_000)  # the real limit is 8 MB
    h = Harness(tmp_path, fmt)  # type: ignore[arg-type]
    h.source.add_book(1, "Big Book", ["First highlight", "Second highlight"])
    h.sync()
    paste = "\n- my pasted table " + "x" * 6_000 + "\n"
    user_text = h.read(1) + paste
    h.write(1, user_text)
    first_id = h.source.live_ids(1)[0]
    h.source.edit(first_id, text="First highlight, edited upstream")
    h.source.add_highlight(1, "Third highlight")

    summary = h.sync()
    text = h.read(1)
    assert summary.failed == 0
    assert text.startswith(user_text.rstrip("\n"))  # every byte of the user's kept, in place
    assert text.count("Third highlight") == 1
    assert "edited upstream" not in text  # no block merge on a page this size
    assert "First highlight" in text

    # The user takes the paste out: below the limit the block merge is back, and what was
    # appended before is known (not appended a second time).
    h.write(1, text.replace(paste.strip("\n"), "").replace("\n\n\n", "\n\n"))
    h.source.add_highlight(1, "Fourth highlight")
    again = h.sync()
    text = h.read(1)
    assert again.failed == 0
    assert text.count("Third highlight") == 1
    assert text.count("Fourth highlight") == 1
    assert text.count("First highlight, edited upstream") == 1
    assert text.count("Second highlight") == 1
