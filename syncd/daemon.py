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

The watcher (watch.py) reports paths and the observer (observe.py) only records what the user
did; merging the user's version is the next pass's job (plan.py), so a save in an editor never
causes a write back into that file.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from syncd.advice import log_setup_warnings
from syncd.config import Config, TargetConfig, load_config
from syncd.errors import ConfigError, StateError, SyncdError, TemplateError
from syncd.log import get_logger, redact_text
from syncd.memory import map_big_blocks_apart, release_memory, resident_mb
from syncd.model import format_timestamp, parse_timestamp
from syncd.notes.template_set import FileStamp, folder_stamp
from syncd.observe import TargetPlace, VaultObserver
from syncd.passes import (
    configured_pass,
    devices_alone_possible,
    locked_store,
    readwise_http,
    readwise_source,
    readwise_token,
)
from syncd.runs import record_error, record_pass
from syncd.runtime import build_targets, make_writeback
from syncd.sources.local_pass import LocalSources
from syncd.sources.source_watch import SourceChanged, SourceWatcher
from syncd.sync.engine import PassStopped, PassSummary, TargetRuntime
from syncd.sync.pull import ExportPageLike, ExportSource
from syncd.sync.state import StateStore, text_hash
from syncd.systemd import Notifier, watchdog_interval
from syncd.watch import OwnWrites, PathChanged, VaultRearmed, VaultWatcher, WatchEvent

log = get_logger("syncd.daemon")

BACKOFF_CAP_S = 3600.0
JITTER = 0.10
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class _Signal:
    signum: int


_Item = WatchEvent | _Signal | SourceChanged


def run_daemon(config_path: Path, *, full_first: bool = False) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop. Start-up errors raise (cli maps exit codes)."""
    environ = dict(os.environ)
    cfg = load_config(config_path, environ=environ, check_vaults=False)
    token = readwise_token(cfg, environ)
    notifier = Notifier.from_environ(environ)
    map_big_blocks_apart()  # a pass's big strings go back to the OS when freed (issue 14)
    try:
        with locked_store(cfg.state.dir, verify=True) as store:
            log_setup_warnings(cfg, new_targets=lambda name: store.count_live_pages(name) == 0)
            return Daemon(cfg, token, store, notifier, environ=environ).run(full_first=full_first)
    finally:
        notifier.close()


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
        self._observer = VaultObserver(
            store, self._own_writes, self._place, should_stop=lambda: self._stop_requested
        )
        self._rng = random.Random()
        self._http = readwise_http(cfg)
        self._client: ExportSource = readwise_source(self._http, cfg, token)
        self._writeback = make_writeback(self._http, cfg, token, self._network)
        self._local = LocalSources.from_config(cfg)  # device files: watched, read each pass
        self._source_watcher = SourceWatcher(self._queue.put)
        self._targets: list[TargetRuntime] = self._runtimes(cfg)
        self._stop_requested = False
        self._in_network = False
        self._failures = 0
        self._next_pull = time.monotonic()
        self._devices_due = False  # a device saved while Readwise is in back-off
        self._templates_seen = self._templates_stamp(cfg)  # the template files loaded
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

    def _place(self, name: str) -> TargetPlace | None:
        """Where a target of the running config lives, for the observer."""
        cfg, runtime = self._target_config(name), self._runtime(name)
        if cfg is None or runtime is None:
            return None
        return TargetPlace(vault=runtime.policy.vault, notes=cfg.root)

    # --- the loop --------------------------------------------------------------------------------

    def run(self, *, full_first: bool = False) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (*_STOP_SIGNALS, signal.SIGHUP)
        }
        try:
            self._watcher.start()
            self._source_watcher.start(self._local.sources)
            for runtime in self._targets:
                self._watcher.watch(runtime.policy.name, runtime.policy.vault)
            for runtime in self._targets:
                self._observer.scan(runtime.policy.name, reason="start-up")
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
                if self._devices_due:
                    self._devices_due = False
                    self._pass(full=False, readwise=False)
                else:
                    self._pass(full=full)
                    full = False
                self._release_memory()
        finally:
            self._notifier.stopping("stopping")
            self._watcher.stop()
            self._source_watcher.stop()
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
        while not self._stop_requested and not self._devices_due:
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
            elif isinstance(item, SourceChanged):  # a device saved
                if self._failures and devices_alone_possible(self._store, self._cfg, self._local):
                    # Readwise failed the last pass and waits out its back-off: the device's
                    # change goes into the vaults now, without asking Readwise again.
                    self._devices_due = True
                else:
                    self._next_pull = min(self._next_pull, time.monotonic())
            elif isinstance(item, VaultRearmed):
                runtime = self._runtime(item.target)
                if runtime is not None:
                    self._observer.scan(runtime.policy.name, reason="vault came back")
            else:
                changes.setdefault(item.target, []).append(item)
        for target, events in changes.items():
            if self._stop_requested:
                return
            try:
                self._observer.apply_changes(target, events)
            except OSError as exc:
                # The vault is half there (unmounting, permissions changed): the next event or
                # the re-arm scan looks again; the pass checks the vault before writing.
                log.warning("watch.event_failed", target=target, error=str(exc))
        if changes:
            self._release_memory(after="watch")

    # --- passes ----------------------------------------------------------------------------------

    def _full_reconcile_due(self) -> bool:
        last = self._store.get_source("last_full_pull")
        moment = parse_timestamp(last, where="state last_full_pull") if last else None
        if moment is None:
            return False  # no watermark yet either: the pull is a full one by itself
        age = datetime.now(UTC) - moment
        return age >= timedelta(seconds=self._cfg.daemon.full_reconcile_interval)

    def _templates_stamp(self, cfg: Config) -> tuple[tuple[FileStamp, ...], ...]:
        return tuple(folder_stamp(t.templates) for t in cfg.targets if t.enabled)

    def _follow_template_edits(self) -> None:
        """A template file edited, added or removed since the templates were loaded: load them
        again before the pass, as SIGHUP would (a broken one keeps those running; it is said
        once, and tried again when the files change again)."""
        stamp = self._templates_stamp(self._cfg)
        if stamp == self._templates_seen:
            return
        self._templates_seen = stamp
        try:
            targets = self._runtimes(self._cfg)
        except (ConfigError, TemplateError) as exc:
            problems = _problems(exc)
            log.error("templates.reload_failed", problems=problems, kept="the running templates")
            self._notifier.status(f"template reload failed, kept the running ones: {problems[0]}")
            return
        self._targets = targets
        log.info("templates.reloaded", targets=[r.policy.name for r in targets])

    def _pass(self, *, full: bool, readwise: bool = True) -> None:
        """`readwise=False`: only the device sources, while Readwise is in back-off after a
        failed pass (a device saved); the back-off stays as it was."""
        self._follow_template_edits()
        full = readwise and (full or self._full_reconcile_due())
        started_at = datetime.now(UTC).isoformat()
        if readwise:
            self._notifier.status("pass running" + (" (full reconcile)" if full else ""))
        else:
            log.info("pass.devices_only", reason="Readwise is in back-off after a failed pass")
        source = _Interruptible(self._client, self._network)
        try:
            summary = configured_pass(
                self._store,
                source,
                self._targets,
                self._cfg,
                full=full,
                progress=lambda _target, _done, _total: self._ping_watchdog(),
                pull_progress=lambda _books, _highlights: self._ping_watchdog(),
                should_stop=lambda: self._stop_requested,
                local=self._local,
                writeback=self._writeback,
                readwise=readwise,
            )
        except PassStopped as exc:
            log.info("pass.stopped", reason=str(exc))
            return
        except StateError:
            raise  # a damaged state store does not heal by waiting
        except SyncdError as exc:
            self._failed(exc, started_at, back_off=readwise)
            return
        finally:
            source.close()
        self._record(summary, started_at)
        if not readwise:
            return
        if summary.readwise_failure is not None:
            self._failed(summary.readwise_failure, started_at)  # the device sources were synced
            return
        self._failures = 0
        delay = jittered(self._cfg.daemon.poll_interval, self._rng)
        self._next_pull = time.monotonic() + delay
        self._notifier.status(f"{_summary_text(summary)}; next pull in {delay:.0f} s")

    def _release_memory(self, *, after: str = "pass") -> None:
        """What the pass parsed goes back to the OS before the daemon sleeps (issue 14). Also
        after file events (`after="watch"`): a pass's own writes come back as events once it
        has released its memory, and recording them fills SQLite's cache again (an update
        rewrites the page row, text and all); there the cycle collection (milliseconds) is
        left to the next pass and only the cache and the trim (well under one) run."""
        self._store.release_memory()
        trimmed = release_memory(collect=after == "pass")
        if after == "pass":
            log.info("memory.released", trimmed=trimmed, rss_mb=resident_mb())
        else:
            log.debug("memory.released", after=after, trimmed=trimmed, rss_mb=resident_mb())

    @contextmanager
    def _network(self) -> Iterator[None]:
        if self._stop_requested:  # the signal came just before: its handler could not raise
            raise PassStopped("stopped before asking Readwise")
        self._in_network = True
        try:
            yield
        finally:
            self._in_network = False

    def _failed(self, exc: SyncdError, started_at: str, *, back_off: bool = True) -> None:
        """`back_off` False: a devices-only pass failed; Readwise's back-off stays as it was."""
        if back_off:
            self._failures += 1
            delay = backoff_delay(self._cfg.daemon.poll_interval, self._failures)
            self._next_pull = time.monotonic() + delay
        delay = max(0.0, self._next_pull - time.monotonic())
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
            token = readwise_token(cfg, environ)
            targets = self._runtimes(cfg)  # loads each target's templates: may fail too
        except (ConfigError, TemplateError) as exc:
            problems = _problems(exc)
            log.error("config.reload_failed", problems=problems, kept=str(path))
            self._notifier.status(f"config reload failed, kept the running one: {problems[0]}")
            return
        old = {t.name: t for t in self._cfg.targets if t.enabled}
        self._http.close()
        self._cfg = cfg
        self._http = readwise_http(cfg)
        self._client = readwise_source(self._http, cfg, token)
        self._writeback = make_writeback(self._http, cfg, token, self._network)
        self._local = LocalSources.from_config(cfg)
        self._source_watcher.start(self._local.sources)
        self._targets = targets
        self._templates_seen = self._templates_stamp(cfg)
        for name in old.keys() - {r.policy.name for r in self._targets}:
            self._watcher.unwatch(name)
        for runtime in self._targets:
            name = runtime.policy.name
            if name not in old or old[name] != self._target_config(name):
                self._watcher.watch(name, runtime.policy.vault)
                self._observer.scan(runtime.policy.name, reason="config reloaded")
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


def _problems(exc: ConfigError | TemplateError) -> list[str]:
    """What a failed reload says, each problem redacted (a config may hold the token)."""
    found = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
    return [redact_text(p) for p in found]


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
