"""Carry out planned writes crash-safely: intent (committed) -> atomic file write -> finalize.

(New pages skip the intent: an unrecorded page of syncd's is adopted by the next pass.)

A kill -9 between the steps leaves an intent; `recover_intents` at the start of the next pass
compares the file on disk with it: the file already holds the intended text -> the write happened
and the row is finalized; anything else -> the write never happened and the intent is dropped. So
no pass ever mistakes its own half-finished write for a user edit (which would append duplicates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from syncd.sync.plan import Planned
from syncd.sync.state import PageRow, StateStore, text_hash

WriteFile = Callable[[str, str, str | None], None]  # (relative path, text, expected hash)
# many (relative path, text, expected hash) at once -> per item None or the error
WriteBatch = Callable[[Sequence[tuple[str, str, str | None]]], list[Exception | None]]
ReadFile = Callable[[str], str | None]


def recover_intents(store: StateStore, target: str, read_file: ReadFile) -> tuple[int, int]:
    """Finish or forget the writes a killed pass left behind: (finalized, dropped)."""
    finalized: list[PageRow] = []
    dropped: list[int] = []
    for _current, intended in store.pending_intents(target):
        on_disk = read_file(intended.path) if intended.path else None
        if on_disk is not None and text_hash(on_disk) == intended.written_hash:
            finalized.append(intended)
        else:
            dropped.append(intended.book_id)
    if finalized:
        store.save_pages(finalized)
    if dropped:
        store.drop_intents(target, dropped)
    store.drop_create_markers(target)
    return len(finalized), len(dropped)


def apply_batch(
    store: StateStore,
    batch: Sequence[Planned],
    write_batch: WriteBatch,
    *,
    on_written: Callable[[Planned], None] | None = None,
) -> list[tuple[Planned, Exception]]:
    """Write one batch of planned pages and record them; returns the writes that failed.

    A failed page keeps its old row (and its intent, dropped by the next pass), so the book stays
    due and is tried again next pass; the rest of the batch is recorded as usual.
    """
    writes = begin_batch(store, batch)
    results = write_batch(write_items(writes)) if writes else []
    return finish_batch(store, batch, writes, results, on_written=on_written)


def begin_batch(store: StateStore, batch: Sequence[Planned]) -> list[Planned]:
    """Record (committed) what the batch is about to write; returns the pages to write. The
    files may be written only after this returns."""
    writes = [p for p in batch if p.text is not None]
    if writes:
        # A new page needs only a light marker (its folder gets temp-file cleanup): if the pass
        # dies before recording it, the next pass finds the file where it would create it and
        # adopts it (syncd's own text: nothing changes).
        store.record_intents([p.page for p in writes if p.action != "create"])
        store.record_create_markers([p.page for p in writes if p.action == "create"])
    return writes


def write_items(writes: Sequence[Planned]) -> list[tuple[str, str, str | None]]:
    """What a WriteBatch takes: (relative path, text, expected hash) per page."""
    return [(p.path, p.text or "", p.expected_hash) for p in writes]


def finish_batch(
    store: StateStore,
    batch: Sequence[Planned],
    writes: Sequence[Planned],
    results: Sequence[Exception | None],
    *,
    on_written: Callable[[Planned], None] | None = None,
) -> list[tuple[Planned, Exception]]:
    """Record the pages whose writes went through; returns the writes that failed."""
    failed: list[tuple[Planned, Exception]] = []
    for planned, error in zip(writes, results, strict=True):
        if error is None:
            if on_written is not None:
                on_written(planned)
        else:
            failed.append((planned, error))
    failed_ids = {p.book_id for p, _ in failed}
    store.save_pages([p.page for p in batch if p.book_id not in failed_ids])
    return failed


def one_by_one(write_file: WriteFile) -> WriteBatch:
    """A batch writer from a single-file writer (for runtimes without a batch writer)."""

    def write(items: Sequence[tuple[str, str, str | None]]) -> list[Exception | None]:
        results: list[Exception | None] = []
        for path, text, expected in items:
            try:
                write_file(path, text, expected)
                results.append(None)
            except Exception as exc:
                results.append(exc)
        return results

    return write
