"""One sync pass: check every vault, pull the export into the cache, then plan and apply each
target in batches. The engine gets small runtime objects, never the config.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

import structlog

from syncd.adapters.base import Adapter
from syncd.errors import VaultError
from syncd.sync.apply import ReadFile, WriteFile, apply_batch, recover_intents
from syncd.sync.plan import FolderNames, Planned, TargetPolicy, plan_book
from syncd.sync.pull import ExportSource, PullResult, pull
from syncd.sync.state import StateStore

log = structlog.get_logger("syncd.engine")

BATCH_BOOKS = 256
_DISK_LEVEL = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO}


@dataclass(frozen=True, slots=True)
class TargetRuntime:
    policy: TargetPolicy
    adapter: Adapter
    read_file: ReadFile
    write_file: WriteFile
    cleanup_temp: Callable[[Sequence[str]], int]  # folders (relative) -> temp files removed


@dataclass(slots=True)
class TargetSummary:
    name: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    highlights_added: int = 0
    elapsed: float = 0.0
    plan: list[Planned] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "highlights_added": self.highlights_added,
            "elapsed_s": round(self.elapsed, 3),
        }


@dataclass(slots=True)
class PassSummary:
    pull: PullResult | None
    targets: list[TargetSummary]
    elapsed: float


Progress = Callable[[str, int, int], None]  # (target, books done, books total)
PullProgress = Callable[[int, int], None]  # (books, highlights) pulled so far


class _Rollback(Exception):
    pass


@contextmanager
def _rolled_back(store: StateStore) -> Iterator[None]:
    """A transaction that is always rolled back: --dry-run sees the pull but keeps nothing."""
    try:
        with store.transaction():
            yield
            raise _Rollback
    except _Rollback:
        pass


def check_vault_root(runtime: TargetRuntime, store: StateStore) -> None:
    """Refuse to touch a vault whose root is missing, not a folder, or looks unmounted."""
    root = runtime.policy.vault
    name = runtime.policy.name
    if not root.exists():
        raise VaultError(f"target {name!r}: vault folder {root} does not exist")
    if not root.is_dir():
        raise VaultError(f"target {name!r}: vault path {root} is not a folder")
    if store.count_live_pages(name) > 0 and not any(root.iterdir()):
        raise VaultError(
            f"target {name!r}: vault folder {root} is empty but syncd wrote pages there before "
            "(an unmounted drive or a sync tool mid-restore?); nothing was written"
        )


def run_pass(
    store: StateStore,
    source: ExportSource,
    targets: Sequence[TargetRuntime],
    *,
    base_url: str,
    overlap: timedelta,
    now: Callable[[], datetime],
    dry_run: bool = False,
    full: bool = False,
    progress: Progress | None = None,
    pull_progress: PullProgress | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PassSummary:
    """`now` dates new sections (local time); `clock` is the real UTC time for the watermark."""
    started = time.perf_counter()
    for runtime in targets:
        check_vault_root(runtime, store)
    source.check_token()
    summaries: list[TargetSummary] = []
    if dry_run:
        with _rolled_back(store):
            pulled = pull(
                store,
                source,
                base_url=base_url,
                overlap=overlap,
                now=clock,
                full=full,
                on_page=pull_progress,
            )
            for runtime in targets:
                summaries.append(
                    _sync_target(store, runtime, now=now(), apply=False, progress=progress)
                )
    else:
        with store.transaction():
            pulled = pull(
                store,
                source,
                base_url=base_url,
                overlap=overlap,
                now=clock,
                full=full,
                on_page=pull_progress,
            )
        log.info(
            "pull.done",
            pages=pulled.pages,
            books=pulled.books_seen,
            books_changed=pulled.books_changed,
            highlights=pulled.highlights_seen,
            full=pulled.full,
        )
        for runtime in targets:
            summaries.append(_sync_target(store, runtime, now=now(), apply=True, progress=progress))
    return PassSummary(pull=pulled, targets=summaries, elapsed=time.perf_counter() - started)


def _sync_target(
    store: StateStore,
    runtime: TargetRuntime,
    *,
    now: datetime,
    apply: bool,
    progress: Progress | None,
) -> TargetSummary:
    started = time.perf_counter()
    policy = runtime.policy
    summary = TargetSummary(policy.name)
    if apply:
        owned_folders = sorted(
            {str(PurePosixPath(p).parent) for p in store.page_paths(policy.name) if p}
        )
        runtime.cleanup_temp(owned_folders)
        finalized, dropped = recover_intents(store, policy.name, runtime.read_file)
        if finalized or dropped:
            log.info("recovered.intents", target=policy.name, finalized=finalized, dropped=dropped)
    due = store.books_to_render(policy.name)
    names = FolderNames(policy.vault, store.page_paths(policy.name))
    done = 0
    for start in range(0, len(due), BATCH_BOOKS):
        batch: list[Planned] = []
        for book_id, rev in due[start : start + BATCH_BOOKS]:
            book = store.load_book(book_id)
            if book is None:
                continue
            planned = plan_book(
                book=book,
                rev=rev,
                page=store.page(policy.name, book_id),
                policy=policy,
                adapter=runtime.adapter,
                names=names,
                read_file=runtime.read_file,
                now=now,
            )
            batch.append(planned)
        _count(summary, batch)
        if apply:
            failures = apply_batch(
                store, batch, runtime.write_file, on_written=lambda p: _log_written(policy.name, p)
            )
            _record_failures(summary, policy.name, failures)
        else:
            summary.plan.extend(batch)
        done += len(batch)
        if progress is not None:
            progress(policy.name, done, len(due))
    summary.elapsed = time.perf_counter() - started
    return summary


def _count(summary: TargetSummary, batch: Sequence[Planned]) -> None:
    for planned in batch:
        if planned.action == "create":
            summary.created += 1
        elif planned.action in ("rewrite", "append"):
            summary.updated += 1
        elif planned.reason == "unchanged":
            summary.unchanged += 1
        else:
            summary.skipped += 1
        summary.highlights_added += planned.highlights_added


def _log_written(target: str, planned: Planned) -> None:
    log.info(
        "file.written",
        target=target,
        book_id=planned.book_id,
        path=planned.path,
        action=planned.action,
        highlights_added=planned.highlights_added,
    )


def _record_failures(
    summary: TargetSummary, target: str, failures: Sequence[tuple[Planned, Exception]]
) -> None:
    for planned, error in failures:
        summary.failed += 1
        if planned.action == "create":
            summary.created -= 1
        else:
            summary.updated -= 1
        summary.highlights_added -= planned.highlights_added
        log.error(
            "file.failed",
            target=target,
            book_id=planned.book_id,
            path=planned.path,
            error=str(error),
        )
    for _planned, error in failures:
        cause = error.__cause__ if isinstance(error.__cause__, OSError) else error
        if isinstance(cause, OSError) and cause.errno in _DISK_LEVEL:
            raise VaultError(
                f"target {target!r}: cannot write ({cause.strerror}); "
                "the pass stopped, nothing was damaged"
            ) from error
