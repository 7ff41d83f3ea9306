"""A page a killed pass wrote but did not record is syncd's own on any later day: the next pass
(and a dry run before it) recognises it by the first-section date its create marker kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from syncd.sync.state import StateStore
from tests.harness import Harness


class _Killed(BaseException):
    """Stands for a kill -9 between the file writes and their recording."""


def _killed_after_writing(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(self: StateStore, pages: object) -> None:
        raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(StateStore, "save_pages", killed)
        with pytest.raises(_Killed):
            harness.sync()


@pytest.mark.parametrize("fmt", ["logseq", "obsidian"])
def test_a_page_a_killed_pass_created_is_recognised_days_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    harness = Harness(tmp_path, fmt)  # type: ignore[arg-type]
    harness.source.add_book(1, "A book", ["first highlight", "second highlight"])
    created_on = harness.now
    _killed_after_writing(harness, monkeypatch)
    [page_file] = harness.files_on_disk()
    written = page_file.read_bytes()
    assert harness.store.page("t", 1) is not None  # only the create marker

    harness.now = created_on + timedelta(days=3)  # the Logseq page's date no longer renders
    dry = harness.sync(dry_run=True)
    assert [(p.action, p.reason) for p in dry.plan] == [("adopt", "syncd's own page, recorded now")]
    summary = harness.sync()
    assert (summary.created, summary.updated, summary.adopted) == (0, 0, 1)
    page = harness.page(1)
    assert not page.user_modified
    assert [(s.kind, s.synced_at) for s in page.sections] == [("first", created_on)]
    assert page_file.read_bytes() == written and harness.files_on_disk() == [page_file]

    # Still syncd's own, untouched page: an upstream edit shows in place, nothing appended.
    harness.source.edit(harness.source.live_ids(1)[0], text="edited upstream")
    harness.sync()
    text = page_file.read_text(encoding="utf-8")
    assert "edited upstream" in text and "first highlight" not in text
    assert text == written.decode("utf-8").replace("first highlight", "edited upstream")
