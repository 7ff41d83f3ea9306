"""After a pass: the sync notification entry on each target's log page (see
syncd.notes.notification). A failure here is logged and reported; it never undoes the pass."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from syncd.errors import FileChangedError, SyncdError
from syncd.notes.notification import BookCount, appended, render_notification
from syncd.sync.state import StateStore, text_hash

if TYPE_CHECKING:
    from syncd.sync.engine import TargetRuntime, TargetSummary

log = structlog.get_logger("syncd.notify")


def write_notifications(
    store: StateStore,
    targets: Sequence[TargetRuntime],
    summaries: Sequence[TargetSummary],
    moment: datetime,
) -> None:
    for runtime, summary in zip(targets, summaries, strict=True):
        adapter = runtime.adapter
        if adapter.templates.notification is None or not summary.added:
            continue
        books = []
        for book_id, count in summary.added:
            book = store.load_book(book_id)
            title = book.display_title if book is not None else f"book {book_id}"
            books.append(BookCount(title, book.author if book is not None else "", count))
        path = adapter.notification_path.as_posix()
        try:
            entry = render_notification(adapter.templates, books, moment, adapter)
            if entry.strip():
                _append(runtime, path, entry, logseq=adapter.name == "logseq")
        except (SyncdError, OSError) as error:
            log.error("notification.failed", target=summary.name, path=path, error=str(error))
            summary.errors.append((type(error).__name__, f"{path}: {error}"))
        else:
            log.info("notification.written", target=summary.name, path=path, books=len(books))


def _append(runtime: TargetRuntime, path: str, entry: str, *, logseq: bool) -> None:
    """Append atomically; if the user saves the page meanwhile, read it again (3 tries)."""
    for attempt in range(3):
        existing = runtime.read_file(path)
        expected = None if existing is None else text_hash(existing)
        try:
            runtime.write_file(path, appended(existing, entry, logseq=logseq), expected)
            return
        except FileChangedError:
            if attempt == 2:
                raise
