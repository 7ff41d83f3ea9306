"""One sync pass: check every vault, pull the export into the cache, then plan and apply each
target in batches. The engine gets small runtime objects, never the config.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from syncd.adapters.base import Adapter
from syncd.errors import FileChangedError, SafetyStop, SyncdError, VaultError
from syncd.model import Book
from syncd.sync.apply import (
    ReadFile,
    WriteBatch,
    WriteFile,
    apply_batch,
    begin_batch,
    finish_batch,
    one_by_one,
    recover_intents,
    write_items,
)
from syncd.sync.locate import OwnedPaths, VaultIndex
from syncd.sync.notify import write_notifications
from syncd.sync.parallel import Worker, can_fork, start_gated_worker, start_worker
from syncd.sync.plan import FolderNames, PlanContext, Planned, TargetPolicy, plan_book
from syncd.sync.pull import ExportSource, PullResult, pull, pulls_everything
from syncd.sync.state import PAGE_LIVE, PageRow, StateStore

if TYPE_CHECKING:
    from syncd.writeback.push import WriteBack, WriteBackReport

log = structlog.get_logger("syncd.engine")

BATCH_BOOKS = 256
# A pass over several targets with at least this many books due gives half the targets to a
# worker process (a full re-sync, a new target); a few edits are not worth a fork.
PARALLEL_MIN_BOOKS = 200
# A full pull (the first pass, a reconcile) over several targets forks that worker before the
# pull, whatever the number of books (unknown until the pull ends).
FORK_BEFORE_FULL_PULL = True
_DISK_LEVEL = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO}


@dataclass(frozen=True, slots=True)
class TargetRuntime:
    policy: TargetPolicy
    adapter: Adapter
    read_file: ReadFile
    write_file: WriteFile
    cleanup_temp: Callable[[Sequence[str]], int]  # folders (relative) -> temp files removed
    list_files: Callable[[], Iterable[str]] = tuple  # the target's .md files (relative paths)
    write_batch: WriteBatch | None = None  # many files at once (one flush); else one by one

    def batch_writer(self) -> WriteBatch:
        return self.write_batch if self.write_batch is not None else one_by_one(self.write_file)


@dataclass(slots=True)
class TargetSummary:
    name: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    adopted: int = 0
    conflicts: int = 0
    highlights_added: int = 0
    elapsed: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (error kind, message)
    paused: bool = False  # the mass-removal guard stopped this target; nothing was written
    plan: list[Planned] = field(default_factory=list)
    added: list[tuple[int, int]] = field(default_factory=list)  # (book id, highlights) written

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "adopted": self.adopted,
            "conflicts": self.conflicts,
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
    writeback: WriteBackReport | None = None  # edits sent back to Readwise (syncd.writeback)
    # Readwise could not be reached (or refused the token): the device sources were synced
    # without it (syncd.passes.configured_pass); the caller still fails the pass with this.
    readwise_failure: SyncdError | None = None


Progress = Callable[[str, int, int], None]  # (target, books done, books total)
PullProgress = Callable[[int, int], None]  # (books, highlights) pulled so far


DEFAULT_TEMPLATES = "default"  # TemplateSet.digest of the shipped defaults


def templates_key(target: str) -> str:
    """The state key holding the digest of the templates a target's pages were written with."""
    return f"templates:{target}"


class _Rollback(Exception):
    pass


class PassStopped(Exception):
    """`should_stop` said so: the pass ended between batches; every finished batch is committed."""


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
    should_stop: Callable[[], bool] | None = None,
    force: bool = False,
    resync: frozenset[int] = frozenset(),
    fold_local: Callable[[StateStore], None] | None = None,
    writeback: WriteBack | None = None,
    readwise: bool = True,
) -> PassSummary:
    """`now` dates new sections (local time); `clock` is the real UTC time for the watermark.
    `should_stop` is asked before each batch of writes (the daemon's SIGTERM); True raises
    PassStopped. `force` skips the mass-removal guard; `resync` restores pages (by book id) the
    user deleted. `fold_local` folds device sources into the cache, in the pull's transaction
    (syncd.sources.local_pass). `writeback` sends the user's edits to Readwise (Readwise
    highlights only): what a killed pass left first, then this pass's, between the pull and the
    writes. `readwise=False`: Readwise cannot be reached, so nothing is asked of it (no pull, the
    watermark stays; the user's edits wait in the outbox) and only the device sources and the
    cache are synced."""
    started = time.perf_counter()
    for runtime in targets:
        check_vault_root(runtime, store)
    if readwise:
        source.check_token()
    if writeback is not None:
        writeback.resume(store, dry_run=dry_run, send=readwise)
    summaries: list[TargetSummary] = []

    def pull_now() -> PullResult:
        if not readwise:
            return PullResult(
                pages=0, books_seen=0, books_changed=0, highlights_seen=0, full=False, rev=0
            )
        return pull(
            store,
            source,
            base_url=base_url,
            overlap=overlap,
            now=clock,
            full=full,
            on_page=pull_progress,
        )

    try:
        if dry_run:
            with _rolled_back(store):
                pulled = pull_now()
                if fold_local is not None:
                    fold_local(store)
                if writeback is not None:
                    writeback.push(store, targets, dry_run=True)
                summaries = _sync_targets(
                    store, targets, now=now(), apply=False, progress=progress, resync=resync
                )
        else:
            early = _start_early_worker(
                store,
                targets,
                full=readwise and pulls_everything(store, base_url=base_url, full=full),
                force=force,
                resync=resync,
            )
            try:
                with store.transaction():
                    pulled = pull_now()
                    if fold_local is not None:
                        fold_local(store)
            except BaseException:
                if early is not None:
                    early.cancel()
                raise
            log.info(
                "pull.done",
                pages=pulled.pages,
                books=pulled.books_seen,
                books_changed=pulled.books_changed,
                highlights=pulled.highlights_seen,
                full=pulled.full,
            )
            if writeback is not None:
                writeback.push(store, targets, should_stop=should_stop, send=readwise)
            section_time = now()
            summaries = _sync_targets(
                store,
                targets,
                now=section_time,
                apply=True,
                progress=progress,
                should_stop=should_stop,
                force=force,
                resync=resync,
                early=early,
            )
            write_notifications(store, targets, summaries, section_time)
    finally:
        store.release_books()  # the books kept parsed from the pull, however the pass ended
    return PassSummary(
        pull=pulled,
        targets=summaries,
        elapsed=time.perf_counter() - started,
        writeback=writeback.report if writeback is not None else None,
    )


def _start_early_worker(
    store: StateStore,
    runtimes: Sequence[TargetRuntime],
    *,
    full: bool,
    force: bool,
    resync: frozenset[int],
) -> Worker | None:
    """Before a full pull over several targets, fork the worker for half of them while this
    process is still small: it waits for the pull, so this process keeps the books it pulled
    and the worker shares none of that memory (see syncd.sync.parallel)."""
    if not (FORK_BEFORE_FULL_PULL and full and len(runtimes) > 1 and can_fork()):
        return None
    theirs = runtimes[1::2]

    def work(report: Progress, now: datetime) -> list[TargetSummary]:
        store.reconnect()  # the worker's own connection: one must never cross a fork
        runs, due = _target_runs(store, theirs, now=now, apply=True, force=force, resync=resync)
        _drive(store, runs, due, report, None)
        return [run.summary for run in runs]

    with store.disconnected():  # no SQLite connection may be open across the fork
        return start_gated_worker(work)


def _target_runs(
    store: StateStore,
    runtimes: Sequence[TargetRuntime],
    *,
    now: datetime,
    apply: bool,
    force: bool,
    resync: frozenset[int],
) -> tuple[list[_TargetRun], list[int]]:
    """A run per target, and the books due in any of them (in id order)."""
    runs = [
        _TargetRun(store, runtime, now=now, apply=apply, force=force, resync=resync)
        for runtime in runtimes
    ]
    return runs, sorted(set().union(*(run.due for run in runs)))


def _sync_targets(
    store: StateStore,
    runtimes: Sequence[TargetRuntime],
    *,
    now: datetime,
    apply: bool,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None = None,
    force: bool = False,
    resync: frozenset[int] = frozenset(),
    early: Worker | None = None,
) -> list[TargetSummary]:
    """Every target, batch by batch over the books due anywhere: each book is read from the
    cache once per batch, whatever number of targets it goes to. Every target's safety checks
    run before the first write. A big pass over several targets gives half of them to a forked
    worker process (syncd.sync.parallel): `early`, forked before the pull, or one forked now."""
    if early is not None:
        early.go(now)
        try:
            runs, due = _target_runs(
                store, runtimes[0::2], now=now, apply=apply, force=force, resync=resync
            )
        except BaseException:
            early.cancel()  # it started already: wait for it, its error is not the first
            raise
        return _with_worker(store, runs, due, early, progress, should_stop, runtimes[1::2])
    runs, due = _target_runs(store, runtimes, now=now, apply=apply, force=force, resync=resync)
    if not (apply and len(runs) > 1 and len(due) >= PARALLEL_MIN_BOOKS and can_fork()):
        _drive(store, runs, due, progress, should_stop)
        return [run.summary for run in runs]

    mine, theirs = runs[0::2], runs[1::2]

    def work(report: Progress) -> list[TargetSummary]:
        store.reconnect()  # the worker's own connection: one must never cross a fork
        _drive(store, theirs, due, report, None)
        return [run.summary for run in theirs]

    # Both processes touch every book they render, so each would end up with its own copy of
    # the books kept from the pull: read them from the store instead (memory stays ~flat).
    store.release_books()
    with store.disconnected():  # no SQLite connection may be open across the fork
        worker = start_worker(work)
    return _with_worker(
        store, mine, due, worker, progress, should_stop, [run.runtime for run in theirs]
    )


def _with_worker(
    store: StateStore,
    mine: Sequence[_TargetRun],
    due: Sequence[int],
    worker: Worker,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    theirs: Sequence[TargetRuntime],
) -> list[TargetSummary]:
    """Drive this process's targets while the worker does the others; every summary, in the
    order of the config (this process has the even places, the worker the odd)."""
    failed = True
    try:
        _drive(store, mine, due, progress, should_stop, poll=lambda: worker.poll(progress))
        failed = False
    finally:
        try:
            summaries: list[TargetSummary] = worker.join(progress)
        except Exception as error:
            if not failed:
                raise
            # The pass is failing here already: report the worker's failure, raise ours.
            log.error("worker.failed", error=str(error))
    log.info(
        "worker.done",
        targets=[runtime.policy.name for runtime in theirs],
        private_mb=round(worker.private_kb / 1024, 1) if worker.private_kb else None,
    )
    ordered: list[TargetSummary] = []
    for index in range(len(mine) + len(summaries)):
        ordered.append(mine[index // 2].summary if index % 2 == 0 else summaries[index // 2])
    return ordered


def _drive(
    store: StateStore,
    runs: Sequence[_TargetRun],
    due: Sequence[int],
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    *,
    poll: Callable[[], None] | None = None,
) -> None:
    """The batches of `runs`. One writer thread: a batch's files are written while the next
    batch is planned (the disk waits and the rendering overlap). Only file I/O runs there; the
    state store stays on this thread."""
    mine = [book_id for book_id in due if any(book_id in run.due for run in runs)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-writer") as writer:
        for run in runs:
            run.writer = writer
        try:
            for start in range(0, len(mine), BATCH_BOOKS):
                if should_stop is not None and should_stop():
                    _finish_all(runs, progress)
                    raise PassStopped(f"stopped after {start} of {len(mine)} books")
                ids = mine[start : start + BATCH_BOOKS]
                books = {book_id: store.load_book(book_id) for book_id in ids}
                for run in runs:
                    run.batch(books, ids, progress)
                if poll is not None:
                    poll()
            _finish_all(runs, progress)
            for run in runs:
                run.complete()
        except BaseException:
            _finish_all(runs, progress, quiet=True)
            raise


def _finish_all(
    runs: Sequence[_TargetRun], progress: Progress | None, *, quiet: bool = False
) -> None:
    """Record every batch still being written. `quiet`: the pass is failing anyway, so a
    failure here is logged, not raised over the first one."""
    for run in runs:
        try:
            run.finish(progress)
        except Exception as error:
            if not quiet:
                raise
            log.error("batch.unrecorded", target=run.runtime.policy.name, error=str(error))


class _TargetRun:
    """One target's share of a pass: its due books, plan context and summary."""

    def __init__(
        self,
        store: StateStore,
        runtime: TargetRuntime,
        *,
        now: datetime,
        apply: bool,
        force: bool,
        resync: frozenset[int],
    ) -> None:
        started = time.perf_counter()
        self.store = store
        self.runtime = runtime
        self.apply = apply
        policy = runtime.policy
        self.summary = TargetSummary(policy.name)
        first_synced = store.create_markers(policy.name)  # before recovery drops them
        if apply:
            runtime.cleanup_temp(store.page_folders(policy.name))
            finalized, dropped = recover_intents(store, policy.name, runtime.read_file)
            if finalized or dropped:
                log.info(
                    "recovered.intents", target=policy.name, finalized=finalized, dropped=dropped
                )
        if resync:
            store.mark_due(policy.name, resync)
        self.templates_digest = runtime.adapter.templates.digest
        known = store.get_source(templates_key(policy.name))
        templates_changed = (known or DEFAULT_TEMPLATES) != self.templates_digest and (
            known is not None or store.has_pages(policy.name)  # no pages: nothing to redo
        )
        if templates_changed:
            log.info("templates.changed", target=policy.name)
            store.mark_all_due(policy.name)
        self.due = dict(store.books_to_render(policy.name))
        # Pages not due are considered too: their book did not change, so they stay as they are.
        self.summary.unchanged = store.count_settled_pages(policy.name)
        # Not the placeholders a killed pass left (still there in a dry run): their files are
        # recognised as syncd's own, not taken by another page. Read only by a pass that names
        # a new page or looks for a missing one: a pass of edits to existing pages (most of
        # them) never holds the whole list.
        owned = OwnedPaths(lambda: store.page_paths(policy.name, placeholders=False))
        index = VaultIndex(runtime.list_files, runtime.read_file, owned)
        self.ctx = PlanContext(
            policy=policy,
            adapter=runtime.adapter,
            names=FolderNames(policy.vault, owned),
            read_file=runtime.read_file,
            now=now,
            find_existing=index.find_existing,
            find_moved=index.find_moved,
            resync=resync,
            first_synced=first_synced,
            templates_changed=templates_changed,
        )
        if apply and not force:
            try:
                _guard_removals(store, policy, list(self.due.items()))
            except SafetyStop as stop:
                # Only this target pauses (until `--force`); the others go on.
                log.error("target.paused", target=policy.name, error=str(stop))
                self.summary.errors.append(("SafetyStop", str(stop)))
                self.summary.paused = True
                self.due = {}
        self.done = 0
        self.writer: Executor | None = None  # set by _drive
        self.in_flight: _InFlight | None = None
        self.summary.elapsed = time.perf_counter() - started

    def batch(
        self, books: dict[int, Book | None], ids: Sequence[int], progress: Progress | None
    ) -> None:
        """Plan this target's books among `ids`; with `apply`, finish the batch still being
        written, then start writing this one on the writer thread."""
        started = time.perf_counter()
        mine = [(book_id, self.due[book_id]) for book_id in ids if book_id in self.due]
        if not mine:
            return
        batch = _plan_batch(self.store, self.ctx, mine, books, self.summary)
        if self.apply:
            self.finish(progress)
            writes = begin_batch(self.store, batch)
            assert self.writer is not None
            results = self.writer.submit(self.runtime.batch_writer(), write_items(writes))
            self.in_flight = _InFlight(batch, writes, results)
        else:
            _count(self.summary, batch)
            self.summary.plan.extend(batch)
            self._progress(len(batch), progress)
        self.summary.elapsed += time.perf_counter() - started

    def finish(self, progress: Progress | None = None) -> None:
        """Wait for the batch on the writer thread (if any) and record how it went."""
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is None:
            return
        started = time.perf_counter()
        store, ctx, name = self.store, self.ctx, self.runtime.policy.name
        batch = in_flight.batch
        failures = finish_batch(
            store,
            batch,
            in_flight.writes,
            in_flight.results.result(),
            on_written=lambda p: _log_written(name, p),
        )
        changed = [p for p, error in failures if isinstance(error, FileChangedError)]
        if changed:
            # The user saved these files while we planned: plan them again from what is there.
            log.info("file.changed_while_planning", target=name, files=len(changed))
            retry = _plan_batch(store, ctx, [(p.book_id, p.page.rendered_rev) for p in changed])
            failures = [f for f in failures if not isinstance(f[1], FileChangedError)]
            failures += apply_batch(
                store,
                retry,
                self.runtime.batch_writer(),
                on_written=lambda p: _log_written(name, p),
            )
            batch = [p for p in batch if p.book_id not in {c.book_id for c in changed}] + retry
        _count(self.summary, batch)
        failed = {planned.book_id for planned, _error in failures}
        self.summary.added += [
            (p.book_id, p.highlights_added)
            for p in batch
            if p.highlights_added and p.text is not None and p.book_id not in failed
        ]
        _record_failures(self.summary, name, failures)
        _record_conflicts(store, name, batch, failures)
        self._progress(len(batch), progress)
        self.summary.elapsed += time.perf_counter() - started

    def complete(self) -> None:
        """The target's pass went through: its pages are now those of its current templates."""
        key = templates_key(self.runtime.policy.name)
        if (
            self.apply
            and not self.summary.paused
            and self.store.get_source(key) != self.templates_digest
        ):
            with self.store.transaction():
                self.store.set_source(
                    templates_key(self.runtime.policy.name), self.templates_digest
                )

    def _progress(self, planned: int, progress: Progress | None) -> None:
        self.done += planned
        if progress is not None:
            progress(self.runtime.policy.name, self.done, len(self.due))


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch whose intents are committed and whose files the writer thread is writing."""

    batch: Sequence[Planned]
    writes: Sequence[Planned]
    results: Future[list[Exception | None]]


def _plan_batch(
    store: StateStore,
    ctx: PlanContext,
    due: Sequence[tuple[int, int]],
    books: dict[int, Book | None] | None = None,
    summary: TargetSummary | None = None,
) -> list[Planned]:
    """Plan each book; one that cannot be planned (an unreadable or non-UTF-8 file, a path
    that leaves the vault, a bug) is logged and left due for the next pass, and the rest go on."""
    batch: list[Planned] = []
    pages = store.pages_of(ctx.policy.name, [book_id for book_id, _rev in due])
    for book_id, rev in due:
        book = books[book_id] if books is not None else store.load_book(book_id)
        if book is None:
            continue
        page = pages.get(book_id)
        try:
            batch.append(plan_book(book=book, rev=rev, page=page, ctx=ctx))
        except Exception as error:  # isolate: one bad note must not stop the whole sync
            path = page.path if page is not None else ""
            log.error(
                "book.failed",
                target=ctx.policy.name,
                book_id=book_id,
                title=book.display_title,
                path=path,
                error=str(error),
                kind=type(error).__name__,
                exc_info=not isinstance(error, SyncdError),
            )
            if summary is not None:
                summary.failed += 1
                summary.errors.append(
                    (
                        type(error).__name__,
                        f"book {book_id} ({path or book.display_title}): {error}",
                    )
                )
    return batch


# Below this many pages a percentage says little: a small library may lose a highlight or two.
_GUARD_MIN_PAGES = 3
_GUARD_SHARE = 0.2


def _guard_removals(
    store: StateStore, policy: TargetPolicy, due: Sequence[tuple[int, int]]
) -> None:
    """Refuse a pass that would remove highlights from more than 20% of the target's pages: more
    likely a bad upstream reply or a bug than a person deleting that much."""
    if policy.on_upstream_delete == "keep":
        return
    live_pages = store.count_live_pages(policy.name)
    if live_pages == 0:
        return  # a first pass: nothing to remove anything from
    affected = 0
    pages: dict[int, PageRow] = {}
    for index, (book_id, _rev) in enumerate(due):
        if index % 500 == 0:  # a few hundred rows at a time: rows hold whole page texts
            pages = store.pages_of(policy.name, [bid for bid, _ in due[index : index + 500]])
        page = pages.get(book_id)
        if page is None or page.status != PAGE_LIVE or not page.blocks:
            continue
        book = store.load_book(book_id)
        if book is None or book.is_deleted:
            continue
        live = {h.id for h in book.highlights if h.is_live}
        if any(hid not in live for hid in page.blocks):
            affected += 1
    if affected >= _GUARD_MIN_PAGES and affected > _GUARD_SHARE * live_pages:
        raise SafetyStop(
            f"target {policy.name!r}: this pass would remove highlights from {affected} of "
            f"{live_pages} pages (more than {_GUARD_SHARE:.0%}); nothing was written. If Readwise "
            "really lost them, run `syncd --once --force`"
        )


def _record_conflicts(
    store: StateStore,
    target: str,
    batch: Sequence[Planned],
    failures: Sequence[tuple[Planned, Exception]],
) -> None:
    failed = {p.book_id for p, _ in failures}
    open_before = store.books_with_conflicts(target)
    for planned in batch:
        if planned.book_id in failed or planned.page.status != PAGE_LIVE:
            continue
        if planned.conflicts or planned.book_id in open_before:  # new, changed or resolved
            store.set_conflicts(target, planned.book_id, planned.conflicts)
            for conflict in planned.conflicts:
                log.warning(
                    "merge.conflict",
                    target=target,
                    book_id=planned.book_id,
                    path=planned.path,
                    highlight_id=conflict.highlight_id,
                )


def _count(summary: TargetSummary, batch: Sequence[Planned]) -> None:
    for planned in batch:
        summary.conflicts += len(planned.conflicts)
        if planned.action == "adopt":
            summary.adopted += 1
        if planned.action == "create":
            summary.created += 1
        elif planned.text is not None:
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
        summary.errors.append((type(error).__name__, f"{planned.path}: {error}"))
    for _planned, error in failures:
        cause = error.__cause__ if isinstance(error.__cause__, OSError) else error
        if isinstance(cause, OSError) and cause.errno in _DISK_LEVEL:
            raise VaultError(
                f"target {target!r}: cannot write ({cause.strerror}); "
                "the pass stopped, nothing was damaged"
            ) from error
