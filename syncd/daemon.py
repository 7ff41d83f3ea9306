"""The resident daemon: one main loop waiting on one queue (file events, signals) with a timeout
set by the pull timer and the systemd watchdog. No busy waiting.

    start: lock the state dir (exit 6 naming the holder) -> watch every vault -> scan every
           target (stat each page file; read only what changed since the state last saw it)
           -> READY=1 -> first pass at once
    loop:  file event -> record what the user did (edit, move, delete) in the state; no write
           pull due    -> one pass (full reconcile every `full_reconcile_interval`), then the
                          next after `poll_interval` ±10%, or after an error a backoff that
                          doubles up to 1 h
           SIGHUP      -> reload the config; a bad one is reported and the old one kept
           SIGTERM/INT -> finish the batch being written, commit, STOPPING=1, exit 0

The watcher only records; merging the user's version is the next pass's job (plan.py), so a
save in an editor never causes a write back into that file.
"""

from __future__ import annotations

import hashlib
import os
import queue
import random
import signal
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

import httpx

from syncd.adapters._fs import read_regular
from syncd.config import Config, TargetConfig, load_config, resolve_token
from syncd.errors import ConfigError, StateError, SyncdError, VaultError
from syncd.lock import StateLock
from syncd.log import get_logger, redact_text
from syncd.model import format_timestamp, parse_timestamp
from syncd.runs import record_error, record_pass
from syncd.runtime import build_targets, make_client, make_writeback, section_clock
from syncd.sources.readwise import ReadwiseClient
from syncd.sync.engine import PassStopped, PassSummary, TargetRuntime, run_pass
from syncd.sync.pull import ExportPageLike, ExportSource
from syncd.sync.state import PAGE_LIVE, PageRow, StateStore, text_hash
from syncd.systemd import Notifier, watchdog_interval
from syncd.watch import OwnWrites, PathChanged, VaultRearmed, VaultWatcher, WatchEvent, is_ignored

log = get_logger("syncd.daemon")

BACKOFF_CAP_S = 3600.0
JITTER = 0.10
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class _Signal:
    signum: int


_Item = WatchEvent | _Signal


def run_daemon(config_path: Path, *, full_first: bool = False) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop. Start-up errors raise (cli maps exit codes)."""
    environ = dict(os.environ)
    cfg = load_config(config_path, environ=environ, check_vaults=False)
    token = resolve_token(cfg.readwise, environ, environ.get("CREDENTIALS_DIRECTORY"))
    notifier = Notifier.from_environ(environ)
    try:
        with StateLock(cfg.state.dir):
            store = StateStore.open(cfg.state.dir, verify=True)
            try:
                return Daemon(cfg, token, store, notifier, environ=environ).run(
                    full_first=full_first
                )
            finally:
                store.close()
    finally:
        notifier.close()


# --- what a vault file looks like now --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    content_hash: str
    mtime_ns: int
    size: int


def observe_file(path: Path) -> Observed | None:
    """Hash, mtime and size of one file, taken from the same open file; None if it is gone.
    Other OSErrors (permissions, I/O) are raised: an unreadable file is not a deleted one."""
    try:
        found = read_regular(path)
    except (NotADirectoryError, IsADirectoryError, VaultError):
        return None  # a pipe, device or folder is no note
    if found is None:
        return None
    data, stat = found
    try:
        content_hash = text_hash(data.decode("utf-8"))
    except UnicodeDecodeError:
        # Not text syncd could have written: any distinct hash marks it as the user's.
        content_hash = "bytes:" + hashlib.sha256(data).hexdigest()
    return Observed(content_hash, stat.st_mtime_ns, stat.st_size)


def jittered(seconds: float, rng: random.Random) -> float:
    return seconds * rng.uniform(1 - JITTER, 1 + JITTER)


def backoff_delay(poll_interval: float, failures: int) -> float:
    """After `failures` failed passes in a row: the poll interval doubled each time, capped."""
    cap = max(BACKOFF_CAP_S, poll_interval)
    return float(min(cap, poll_interval * 2.0 ** max(failures - 1, 0)))


class Daemon:
    def __init__(
        self,
        cfg: Config,
        token: str,
        store: StateStore,
        notifier: Notifier,
        *,
        environ: Mapping[str, str],
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._notifier = notifier
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._own_writes = OwnWrites()
        self._watcher = VaultWatcher(self._queue.put)
        self._rng = random.Random()
        self._http = httpx.Client(timeout=cfg.readwise.timeout)
        self._client: ReadwiseClient = make_client(self._http, cfg, token)
        self._writeback = make_writeback(self._http, cfg, token, self._network)
        self._targets: list[TargetRuntime] = self._runtimes(cfg)
        self._stop_requested = False
        self._in_network = False
        self._failures = 0
        self._next_pull = time.monotonic()
        self._watchdog_every = watchdog_interval(environ)
        self._next_watchdog = time.monotonic()

    # --- set-up ----------------------------------------------------------------------------------

    def _runtimes(self, cfg: Config) -> list[TargetRuntime]:
        """The engine's targets, with writes remembered so their watcher echo is recognised."""
        return [self._remembering(runtime) for runtime in build_targets(cfg)]

    def _remembering(self, runtime: TargetRuntime) -> TargetRuntime:
        target = runtime.policy.name
        expect = self._own_writes.expect
        write_file, write_batch = runtime.write_file, runtime.write_batch

        def write_one(relative: str, text: str, *args: Any, **kwargs: Any) -> None:
            expect(target, relative, text_hash(text))
            write_file(relative, text, *args, **kwargs)

        if write_batch is None:
            return replace(runtime, write_file=write_one)

        def write_many(items: Sequence[tuple[str, str, str | None]]) -> list[Exception | None]:
            for relative, text, _expected in items:
                expect(target, relative, text_hash(text))
            return write_batch(items)

        return replace(runtime, write_file=write_one, write_batch=write_many)

    def _target_config(self, name: str) -> TargetConfig | None:
        return next((t for t in self._cfg.targets if t.name == name), None)

    def _runtime(self, name: str) -> TargetRuntime | None:
        return next((r for r in self._targets if r.policy.name == name), None)

    # --- the loop --------------------------------------------------------------------------------

    def run(self, *, full_first: bool = False) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (*_STOP_SIGNALS, signal.SIGHUP)
        }
        try:
            self._watcher.start()
            for runtime in self._targets:
                self._watcher.watch(runtime.policy.name, runtime.policy.vault)
            for runtime in self._targets:
                self._scan(runtime, reason="start-up")
            if not self._stop_requested:
                self._notifier.ready("started; first pass running")
                log.info(
                    "daemon.ready",
                    pid=os.getpid(),
                    targets=[r.policy.name for r in self._targets],
                    poll_interval_s=self._cfg.daemon.poll_interval,
                    watch={r.policy.name: self._watcher.mode(r.policy.name) for r in self._targets},
                )
            full = full_first
            while not self._stop_requested:
                self._wait_for_pull()
                if self._stop_requested:
                    break
                self._pass(full=full)
                full = False
        finally:
            self._notifier.stopping("stopping")
            self._watcher.stop()
            self._http.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("daemon.stopped", pid=os.getpid())
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum in _STOP_SIGNALS:
            self._stop_requested = True
        self._queue.put(_Signal(signum))  # SimpleQueue.put is reentrant: safe in a handler
        if signum in _STOP_SIGNALS and self._in_network:
            # Waiting on Readwise (a slow reply or a retry backoff) may take minutes; the pull
            # is one transaction, so ending it here loses nothing and keeps the 5 s promise.
            self._in_network = False
            raise PassStopped("stopped while waiting for Readwise")

    def _wait_for_pull(self) -> None:
        """Handle queue items until the next pull is due (or a stop is asked for)."""
        while not self._stop_requested:
            now = time.monotonic()
            if now >= self._next_pull:
                # What the user did just before is recorded before the pass reads the files.
                self._handle(self._drain())
                return
            wake = self._next_pull
            if self._watchdog_every is not None:
                wake = min(wake, self._next_watchdog)
            try:
                first: _Item | None = self._queue.get(timeout=max(wake - now, 0.0))
            except queue.Empty:
                first = None
            self._ping_watchdog()
            if first is not None:
                self._handle([first, *self._drain()])

    def _drain(self) -> list[_Item]:
        items: list[_Item] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _ping_watchdog(self) -> None:
        if self._watchdog_every is None or time.monotonic() < self._next_watchdog:
            return
        self._notifier.watchdog()
        self._next_watchdog = time.monotonic() + self._watchdog_every

    def _handle(self, items: Sequence[_Item]) -> None:
        changes: dict[str, list[PathChanged]] = {}
        for item in items:
            if isinstance(item, _Signal):
                if item.signum == signal.SIGHUP:
                    self._reload()
            elif isinstance(item, VaultRearmed):
                runtime = self._runtime(item.target)
                if runtime is not None:
                    self._scan(runtime, reason="vault came back")
            else:
                changes.setdefault(item.target, []).append(item)
        for target, events in changes.items():
            if self._stop_requested:
                return
            try:
                self._apply_changes(target, events)
            except OSError as exc:
                # The vault is half there (unmounting, permissions changed): the next event or
                # the re-arm scan looks again; the pass checks the vault before writing.
                log.warning("watch.event_failed", target=target, error=str(exc))

    # --- passes ----------------------------------------------------------------------------------

    def _full_reconcile_due(self) -> bool:
        last = self._store.get_source("last_full_pull")
        moment = parse_timestamp(last, where="state last_full_pull") if last else None
        if moment is None:
            return False  # no watermark yet either: the pull is a full one by itself
        age = datetime.now(UTC) - moment
        return age >= timedelta(seconds=self._cfg.daemon.full_reconcile_interval)

    def _pass(self, *, full: bool) -> None:
        full = full or self._full_reconcile_due()
        started_at = datetime.now(UTC).isoformat()
        self._notifier.status("pass running" + (" (full reconcile)" if full else ""))
        source = _Interruptible(self._client, self._network)
        try:
            summary = run_pass(
                self._store,
                source,
                self._targets,
                base_url=self._cfg.readwise.base_url,
                overlap=timedelta(seconds=self._cfg.readwise.overlap_seconds),
                now=section_clock(),
                full=full,
                progress=lambda _target, _done, _total: self._ping_watchdog(),
                pull_progress=lambda _books, _highlights: self._ping_watchdog(),
                should_stop=lambda: self._stop_requested,
                writeback=self._writeback,
            )
        except PassStopped as exc:
            log.info("pass.stopped", reason=str(exc))
            return
        except StateError:
            raise  # a damaged state store does not heal by waiting
        except SyncdError as exc:
            self._failed(exc, started_at)
            return
        finally:
            source.close()
        self._failures = 0
        self._record(summary, started_at)
        delay = jittered(self._cfg.daemon.poll_interval, self._rng)
        self._next_pull = time.monotonic() + delay
        self._notifier.status(f"{_summary_text(summary)}; next pull in {delay:.0f} s")

    @contextmanager
    def _network(self) -> Iterator[None]:
        if self._stop_requested:  # the signal came just before: its handler could not raise
            raise PassStopped("stopped before asking Readwise")
        self._in_network = True
        try:
            yield
        finally:
            self._in_network = False

    def _failed(self, exc: SyncdError, started_at: str) -> None:
        self._failures += 1
        delay = backoff_delay(self._cfg.daemon.poll_interval, self._failures)
        self._next_pull = time.monotonic() + delay
        message = redact_text(str(exc))
        log.error(
            "pass.failed",
            error=message,
            kind=type(exc).__name__,
            failures_in_a_row=self._failures,
            retry_in_s=round(delay, 1),
        )
        self._notifier.status(f"error: {message}; retrying in {delay:.0f} s")
        record_error(self._store, (r.policy.name for r in self._targets), started_at, message)

    def _record(self, summary: PassSummary, started_at: str) -> None:
        record_pass(self._store, summary, started_at)
        log.info(
            "pass.summary",
            targets=[t.as_dict() for t in summary.targets],
            elapsed_s=round(summary.elapsed, 3),
            full=summary.pull.full if summary.pull is not None else False,
        )

    # --- SIGHUP ----------------------------------------------------------------------------------

    def _reload(self) -> None:
        path = self._cfg.path
        environ = dict(os.environ)
        try:
            cfg = load_config(path, environ=environ, check_vaults=False)
            if cfg.state.dir != self._cfg.state.dir:
                raise ConfigError(
                    [
                        f"{path}: state.dir: changed from {self._cfg.state.dir} to "
                        f"{cfg.state.dir}; restart syncd to use another state dir"
                    ]
                )
            token = resolve_token(cfg.readwise, environ, environ.get("CREDENTIALS_DIRECTORY"))
        except ConfigError as exc:
            problems = [redact_text(p) for p in exc.problems]
            log.error("config.reload_failed", problems=problems, kept=str(path))
            self._notifier.status(f"config reload failed, kept the running one: {problems[0]}")
            return
        old = {t.name: t for t in self._cfg.targets if t.enabled}
        self._http.close()
        self._cfg = cfg
        self._http = httpx.Client(timeout=cfg.readwise.timeout)
        self._client = make_client(self._http, cfg, token)
        self._writeback = make_writeback(self._http, cfg, token, self._network)
        self._targets = self._runtimes(cfg)
        for name in old.keys() - {r.policy.name for r in self._targets}:
            self._watcher.unwatch(name)
        for runtime in self._targets:
            name = runtime.policy.name
            if name not in old or old[name] != self._target_config(name):
                self._watcher.watch(name, runtime.policy.vault)
                self._scan(runtime, reason="config reloaded")
        if self._failures == 0:
            self._next_pull = min(
                self._next_pull, time.monotonic() + jittered(cfg.daemon.poll_interval, self._rng)
            )
        log.info(
            "config.reloaded",
            path=str(path),
            targets=[r.policy.name for r in self._targets],
            poll_interval_s=cfg.daemon.poll_interval,
            full_reconcile_interval_s=cfg.daemon.full_reconcile_interval,
        )

    # --- what the user did in the vault ----------------------------------------------------------

    def _scan(self, runtime: TargetRuntime, *, reason: str) -> None:
        try:
            self._scan_target(runtime, reason=reason)
        except OSError as exc:
            # The vault is half there (unmounting): the pass checks it again before writing.
            log.warning("scan.failed", target=runtime.policy.name, reason=reason, error=str(exc))

    def _scan_target(self, runtime: TargetRuntime, *, reason: str) -> None:
        """Compare every page file with what the state last saw; read only what changed."""
        target = runtime.policy.name
        root = runtime.policy.vault
        store = self._store
        if not root.is_dir():
            log.warning("scan.skipped", target=target, vault=str(root), reason="vault missing")
            return
        unfinished = {intended.book_id for _, intended in store.pending_intents(target)}
        pages = [
            p
            for p in store.pages(target)
            if p.status == PAGE_LIVE and p.path and p.book_id not in unfinished
        ]
        if pages and not any(root.iterdir()):
            log.warning("scan.skipped", target=target, vault=str(root), reason="vault empty")
            return
        read = edited = 0
        gone: list[PageRow] = []
        for page in pages:
            if self._stop_requested:
                return
            path = root / page.path
            try:
                stat = path.stat()
                seen_mtime, seen_size, _ = store.observation(target, page.book_id)
                if (stat.st_mtime_ns, stat.st_size) == (seen_mtime, seen_size):
                    continue
                observed = observe_file(path)
            except (FileNotFoundError, NotADirectoryError):
                observed = None
            except OSError as exc:
                log.warning("page.unreadable", target=target, path=page.path, error=str(exc))
                continue
            if observed is None:
                gone.append(page)
                continue
            read += 1
            edited += self._record_observation(page, observed)
        moved, deleted = self._resolve_vanished(target, gone)
        log.info(
            "scan.done",
            target=target,
            reason=reason,
            pages=len(pages),
            read=read,
            edited=edited,
            moved=moved,
            deleted_by_user=deleted,
        )

    def _apply_changes(self, target: str, events: Sequence[PathChanged]) -> None:
        runtime = self._runtime(target)
        if runtime is None:
            return
        root = runtime.policy.vault
        store = self._store
        gone: list[PageRow] = []
        for event in events:
            if self._stop_requested:
                return  # what is left is found by the start-up scan of the next run
            if event.is_dir:
                prefix = event.path + "/"
                gone.extend(
                    p
                    for p in store.pages(target)
                    if p.status == PAGE_LIVE
                    and p.path.startswith(prefix)
                    and not (root / p.path).exists()
                )
                continue
            if event.moved_from is not None:
                self._follow_move(target, root, event.moved_from, event.path)
            page = store.page_by_path(target, event.path)
            if page is None or page.status != PAGE_LIVE:
                continue  # not a page syncd keeps
            try:
                observed = observe_file(root / event.path)
            except OSError as exc:
                log.warning("page.unreadable", target=target, path=event.path, error=str(exc))
                continue
            if observed is None:
                gone.append(page)
            else:
                self._record_observation(page, observed)
        self._resolve_vanished(target, gone)

    def _follow_move(self, target: str, root: Path, old_path: str, new_path: str) -> None:
        page = self._store.page_by_path(target, old_path)
        if page is None or page.status != PAGE_LIVE or (root / old_path).exists():
            return
        if self._store.page_by_path(target, new_path) is not None:
            return  # moved over another page: leave both rows; the next pass sorts it out
        self._store.move_page(target, page.book_id, new_path)
        log.info("page.moved", target=target, book_id=page.book_id, path=new_path, was=old_path)

    def _record_observation(self, page: PageRow, observed: Observed) -> int:
        """Store what the file looks like now; 1 if that is a user edit seen for the first time."""
        target = page.target
        echo = self._own_writes.is_echo(target, page.path, observed.content_hash)
        if echo and observed.content_hash != page.written_hash:
            return 0  # our write, not yet recorded as written: never the user's
        previous = self._store.observation(target, page.book_id)[2]
        differs = self._store.observe(
            target,
            page.book_id,
            mtime_ns=observed.mtime_ns,
            size=observed.size,
            seen_hash=observed.content_hash,
        )
        if differs and previous != observed.content_hash:
            log.info("page.edited", target=target, book_id=page.book_id, path=page.path)
            return 1
        return 0

    def _resolve_vanished(self, target: str, gone: Sequence[PageRow]) -> tuple[int, int]:
        """Pages whose file vanished: moved if a file with the same content turns up elsewhere
        in the target's folder, else deleted by the user (never recreated). (moved, deleted)"""
        if not gone:
            return 0, 0
        cfg = self._target_config(target)
        runtime = self._runtime(target)
        if cfg is None or runtime is None:
            return 0, 0
        vault = runtime.policy.vault
        if not vault.is_dir() or not any(vault.iterdir()):
            return 0, 0  # unmounted, not deleted: the pass refuses such a vault anyway
        wanted: dict[int, list[tuple[str, PageRow]]] = {}
        for page in gone:
            _mtime, size, seen_hash = self._store.observation(target, page.book_id)
            if size is None or seen_hash is None:
                if page.written_text is None or page.written_hash is None:
                    continue
                size, seen_hash = len(page.written_text.encode("utf-8")), page.written_hash
            wanted.setdefault(size, []).append((seen_hash, page))
        known = set(self._store.page_paths(target))
        found: dict[int, str] = {}
        for path, size in _files_under(vault, cfg.root):
            if size not in wanted or path in known:
                continue
            try:
                observed = observe_file(vault / path)
            except OSError:
                continue  # unreadable: not the moved page as far as we can tell
            if observed is None:
                continue
            for content_hash, page in wanted[size]:
                if page.book_id not in found and content_hash == observed.content_hash:
                    found[page.book_id] = path
                    known.add(path)
                    break
        deleted = 0
        for page in gone:
            new_path = found.get(page.book_id)
            if new_path is not None:
                self._store.move_page(target, page.book_id, new_path)
                log.info(
                    "page.moved", target=target, book_id=page.book_id, path=new_path, was=page.path
                )
                continue
            self._store.mark_deleted_by_user(target, page.book_id)
            deleted += 1
            log.info(
                "page.deleted_by_user",
                target=target,
                book_id=page.book_id,
                path=page.path,
                message="the file is gone; syncd will not recreate it",
            )
        return len(found), deleted


def _files_under(vault: Path, folder: Path) -> Iterator[tuple[str, int]]:
    """(path relative to the vault, size) of every file under `folder`, ignored ones skipped."""
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        relative_dir = PurePosixPath(here.relative_to(vault).as_posix())
        dirnames[:] = [d for d in dirnames if not is_ignored(relative_dir / d)]
        for name in filenames:
            relative = relative_dir / name
            if is_ignored(relative):
                continue
            try:
                size = (here / name).stat().st_size
            except OSError:
                continue
            yield relative.as_posix(), size


class _Interruptible:
    """The Readwise client, marking the time spent waiting on it so SIGTERM can end the pull."""

    def __init__(
        self, inner: ExportSource, network: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._inner = inner
        self._network = network
        self._pages: list[Generator[ExportPageLike, None, None]] = []

    def check_token(self) -> None:
        with self._network():
            self._inner.check_token()

    def export_pages(
        self,
        *,
        updated_after: datetime | None,
        include_deleted: bool = True,
        ids: Sequence[int] | None = None,
    ) -> Iterator[ExportPageLike]:
        pages = self._pages_of(
            updated_after=updated_after, include_deleted=include_deleted, ids=ids
        )
        self._pages.append(pages)
        return pages

    def _pages_of(
        self, *, updated_after: datetime | None, include_deleted: bool, ids: Sequence[int] | None
    ) -> Generator[ExportPageLike, None, None]:
        with self._network():
            yield from self._inner.export_pages(
                updated_after=updated_after, include_deleted=include_deleted, ids=ids
            )

    def close(self) -> None:
        """End any pull an error left unfinished now (not when it is garbage-collected), so
        the time waiting on Readwise is over when the pass is."""
        for pages in self._pages:
            pages.close()
        self._pages.clear()


def _summary_text(summary: PassSummary) -> str:
    parts = [
        f"{t.name}: {t.created} created, {t.updated} updated"
        + (f", {t.failed} failed" if t.failed else "")
        for t in summary.targets
    ]
    stamp = format_timestamp(datetime.now(UTC))
    return f"last pass {stamp} ({summary.elapsed:.1f} s): " + "; ".join(parts)
