"""Watch vault folders: watchdog events in, debounced `PathChanged` items out (to one callback).

- One observer per target: inotify, or a polling observer (with a clear warning) when the kernel
  runs out of inotify watches or instances.
- A path is handed on once its events have been quiet for `debounce` seconds, so a burst of
  saves (an editor's write + rename, syncd's own temp file + rename) is one item.
- What editors and sync tools write beside notes is ignored (see `is_ignored`).
- The vault folder vanishing (unmounted, deleted by a sync tool) is logged once; when it comes
  back the watch is re-armed and `VaultRearmed` asks the daemon to rescan it.
- `OwnWrites` remembers the hash of every file syncd writes, so its echo is not a user edit.
"""

from __future__ import annotations

import errno
import heapq
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

log = structlog.get_logger("syncd.watch")

DEBOUNCE_S = 0.3  # well under the 1 s from a save to the state record
HEALTH_CHECK_S = 2.0  # how often a missing vault folder is looked for
POLLING_S = 5.0  # the fallback observer's scan interval: a stat of every file each time

# Only what changes file contents or names; opens and reads (Obsidian opens many) stay quiet.
_EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirMovedEvent,
    DirDeletedEvent,
    # A folder's watch is added only once it exists: a note renamed in it before then is seen
    # by looking, when the folder is reported, for pages under it whose file is missing.
    DirCreatedEvent,
]
# Folders (relative to the vault) whose contents are never notes.
_IGNORED_PREFIXES: tuple[tuple[str, ...], ...] = (("logseq", "bak"), ("logseq", ".recycle"))


def is_ignored(relative: PurePosixPath) -> bool:
    """True for what editors and sync tools keep beside notes: dot files and folders
    (.obsidian/, .trash/, .stfolder, our own .syncd-*.tmp), *.tmp, *~, Syncthing's
    *.sync-conflict-*, and Logseq's logseq/bak/."""
    parts = relative.parts
    if not parts:
        return True
    if any(part.startswith(".") for part in parts):
        return True
    name = parts[-1]
    if name.endswith((".tmp", "~")) or ".sync-conflict-" in name:
        return True
    return any(parts[: len(prefix)] == prefix for prefix in _IGNORED_PREFIXES)


@dataclass(frozen=True, slots=True)
class PathChanged:
    """Something happened at `path` (relative POSIX); look at it now. `moved_from` is set when
    it arrived by a rename inside the vault; `is_dir` when a whole folder went away or appeared
    (the pages under it whose file is missing are looked for: moved, or deleted)."""

    target: str
    path: str
    moved_from: str | None = None
    is_dir: bool = False


@dataclass(frozen=True, slots=True)
class VaultRearmed:
    """The vault folder is back (or is watched anew): changes may have been missed, rescan it."""

    target: str


WatchEvent = PathChanged | VaultRearmed
WatchMode = Literal["inotify", "polling", "missing"]


class OwnWrites:
    """Hashes of the files syncd wrote, per (target, path), until their watcher echo is seen.

    Thread-safe: writes happen on the engine's writer threads.
    """

    def __init__(self, *, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._expected: dict[tuple[str, str], tuple[str, float]] = {}

    def expect(self, target: str, path: str, content_hash: str) -> None:
        now = self._clock()
        with self._lock:
            self._expected[(target, path)] = (content_hash, now)
            if len(self._expected) > 4096:  # echoes never seen (watcher down): forget old ones
                cutoff = now - self._ttl
                self._expected = {k: v for k, v in self._expected.items() if v[1] >= cutoff}

    def is_echo(self, target: str, path: str, content_hash: str) -> bool:
        """True (once) if the file now holds exactly what syncd wrote there."""
        with self._lock:
            entry = self._expected.get((target, path))
            if entry is None or entry[0] != content_hash:
                return False
            del self._expected[(target, path)]
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._expected)


class Observer(Protocol):
    """The part of a watchdog observer the watcher uses."""

    def schedule(
        self,
        event_handler: FileSystemEventHandler,
        path: str | Path,
        *,
        recursive: bool = False,
        event_filter: list[type[FileSystemEvent]] | None = None,
        follow_symlink: bool = False,
    ) -> object: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...

    @property
    def emitters(self) -> Iterable[_Emitter]: ...


class _Emitter(Protocol):
    def is_alive(self) -> bool: ...


ObserverFactory = Callable[[], Observer]


def _inotify() -> Observer:
    return InotifyObserver()


def _polling() -> Observer:
    return PollingObserver(timeout=POLLING_S)


@dataclass(slots=True)
class _Pending:
    deadline: float
    moved_from: str | None
    is_dir: bool


@dataclass(slots=True)
class _Watch:
    target: str
    root: Path
    observer: Observer | None = None
    mode: WatchMode = "missing"
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the root when armed
    missing_logged: bool = False


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: VaultWatcher, watch: _Watch) -> None:
        self._watcher = watcher
        self._watch = watch

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._watcher._on_event(self._watch, event)


class VaultWatcher:
    """Watches each target's vault and calls `emit` (from its own thread) with `WatchEvent`s."""

    def __init__(
        self,
        emit: Callable[[WatchEvent], None],
        *,
        debounce: float = DEBOUNCE_S,
        health_interval: float = HEALTH_CHECK_S,
        observer_factory: ObserverFactory = _inotify,
        fallback_factory: ObserverFactory = _polling,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._debounce = debounce
        self._health_interval = health_interval
        self._observer_factory = observer_factory
        self._fallback_factory = fallback_factory
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._deadlines: list[tuple[float, tuple[str, str]]] = []  # a heap over _pending
        self._watches: dict[str, _Watch] = {}
        self._check_now = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Serialises arming and disarming: the main thread (watch, unwatch) and the dispatch
        # thread (check_health) both do it.
        self._arming = threading.Lock()
        # Once inotify ran out, every later watch polls: the kernel limit is per user.
        self._inotify_exhausted = False

    # --- set-up ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="syncd-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._arming, self._cond:
            watches = list(self._watches.values())
            self._watches.clear()
            self._pending.clear()
            self._deadlines.clear()
        for watch in watches:
            self._disarm(watch)

    def watch(self, target: str, root: Path) -> WatchMode:
        """Start watching `root` for `target` (a missing folder is watched for its return)."""
        with self._arming:
            with self._cond:
                old = self._watches.pop(target, None)
            if old is not None:
                self._disarm(old)
            watch = _Watch(target, root)
            self._arm(watch)
            with self._cond:
                self._watches[target] = watch
            return watch.mode

    def unwatch(self, target: str) -> None:
        with self._arming:
            with self._cond:
                watch = self._watches.pop(target, None)
                self._pending = {k: v for k, v in self._pending.items() if k[0] != target}
            if watch is not None:
                self._disarm(watch)

    def mode(self, target: str) -> WatchMode | None:
        with self._cond:
            watch = self._watches.get(target)
            return None if watch is None else watch.mode

    def _arm(self, watch: _Watch) -> None:
        """Schedule an observer on the root; fall back to polling when inotify runs out.
        On failure the watch stays "missing" and the health check tries again."""
        try:
            stat = watch.root.stat()
        except OSError:
            stat = None
        if stat is None or not watch.root.is_dir():
            watch.mode = "missing"
            self._log_missing(watch)
            return
        handler = _Handler(self, watch)
        mode: WatchMode = "inotify"
        try:
            if self._inotify_exhausted:
                raise OSError(errno.ENOSPC, "inotify watches ran out earlier")
            observer = self._start_observer(self._observer_factory, handler, watch.root)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                return self._arm_failed(watch, exc)
            if not self._inotify_exhausted:
                log.warning(
                    "watch.polling",
                    target=watch.target,
                    vault=str(watch.root),
                    reason=str(exc),
                    message=(
                        "inotify watches ran out (raise fs.inotify.max_user_watches / "
                        f"max_user_instances); scanning the vaults every {POLLING_S:g} s instead"
                    ),
                )
                self._inotify_exhausted = True
            mode = "polling"
            try:
                observer = self._start_observer(self._fallback_factory, handler, watch.root)
            except OSError as fallback_exc:
                return self._arm_failed(watch, fallback_exc)
        watch.observer = observer
        watch.mode = mode
        watch.identity = (stat.st_dev, stat.st_ino)
        watch.missing_logged = False

    def _arm_failed(self, watch: _Watch, exc: OSError) -> None:
        watch.mode = "missing"
        if not watch.missing_logged:
            log.error("watch.failed", target=watch.target, vault=str(watch.root), error=str(exc))
            watch.missing_logged = True

    @staticmethod
    def _start_observer(factory: ObserverFactory, handler: _Handler, root: Path) -> Observer:
        observer = factory()
        observer.start()
        try:
            observer.schedule(handler, str(root), recursive=True, event_filter=_EVENT_FILTER)
        except BaseException:
            observer.stop()
            observer.join(timeout=5)
            raise
        return observer

    @staticmethod
    def _disarm(watch: _Watch) -> None:
        observer, watch.observer = watch.observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)

    def _log_missing(self, watch: _Watch) -> None:
        if not watch.missing_logged:
            log.warning(
                "vault.missing",
                target=watch.target,
                vault=str(watch.root),
                message="the vault folder is gone (unmounted?); watching for it to come back",
            )
            watch.missing_logged = True

    # --- events (observer threads) ---------------------------------------------------------------

    def _relative(self, watch: _Watch, raw: bytes | str) -> PurePosixPath | None:
        path = os.fsdecode(raw)
        if not path:
            return None
        try:
            return PurePosixPath(Path(path).relative_to(watch.root).as_posix())
        except ValueError:
            return None  # outside the vault: a move out shows up as its source vanishing

    def _on_event(self, watch: _Watch, event: FileSystemEvent) -> None:
        src = self._relative(watch, event.src_path)
        if isinstance(event, DirDeletedEvent | DirMovedEvent) and src == PurePosixPath("."):
            with self._cond:  # the root itself: let the health check re-arm it
                self._check_now = True
                self._cond.notify_all()
            return
        if isinstance(event, FileMovedEvent):
            dest = self._relative(watch, event.dest_path)
            origin = None if src is None or is_ignored(src) else src.as_posix()
            if dest is not None and not is_ignored(dest):
                # From an ignored name (a temp file renamed over a note) it is a plain change.
                self._touch(watch.target, dest.as_posix(), origin)
            elif origin is not None:
                self._touch(watch.target, origin, None)  # moved to .trash/ or out of the vault
            return
        if isinstance(event, DirMovedEvent):
            return  # its files arrive as their own moves
        if src is None or is_ignored(src):
            return
        is_dir = isinstance(event, DirDeletedEvent | DirCreatedEvent)
        self._touch(watch.target, src.as_posix(), None, is_dir=is_dir)

    def _touch(
        self, target: str, path: str, moved_from: str | None, *, is_dir: bool = False
    ) -> None:
        deadline = self._clock() + self._debounce
        with self._cond:
            if target not in self._watches:
                return
            key = (target, path)
            earlier = self._pending.get(key)
            if earlier is not None:
                moved_from = moved_from or earlier.moved_from
                is_dir = is_dir or earlier.is_dir
            self._pending[key] = _Pending(deadline, moved_from, is_dir)
            # The earlier entry, if any, stays in the heap and is skipped when it comes up.
            heapq.heappush(self._deadlines, (deadline, key))
            if len(self._deadlines) == 1:
                # Only the first pending path can need an earlier wake-up: later deadlines are
                # never before the ones the thread already waits for.
                self._cond.notify_all()

    # --- the dispatch thread ---------------------------------------------------------------------

    def _run(self) -> None:
        next_health = self._clock() + self._health_interval
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = self._clock()
                wake = min(next_health, self._deadlines[0][0]) if self._deadlines else next_health
                if wake > now and not self._check_now:
                    self._cond.wait(timeout=wake - now)
                    if self._stopping:
                        return
                    now = self._clock()
                due = self._pop_due(now)
                check = self._check_now or now >= next_health
                self._check_now = False
            for (target, path), pending in due:
                self._emit(PathChanged(target, path, pending.moved_from, pending.is_dir))
            if check:
                self.check_health()
                next_health = self._clock() + self._health_interval

    def _pop_due(self, now: float) -> list[tuple[tuple[str, str], _Pending]]:
        """Pending paths quiet since their deadline, oldest first. Caller holds the lock."""
        due = []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, key = heapq.heappop(self._deadlines)
            pending = self._pending.get(key)
            if pending is None or pending.deadline != deadline:
                continue  # touched again later (a newer heap entry) or unwatched
            del self._pending[key]
            due.append((key, pending))
        return due

    def check_health(self) -> None:
        """Disarm watches whose folder vanished or was replaced; re-arm those that came back."""
        rearmed: list[str] = []
        with self._arming:
            with self._cond:
                watches = list(self._watches.values())
            for watch in watches:
                if watch.mode != "missing":
                    if self._still_there(watch):
                        continue
                    self._disarm(watch)
                    watch.mode = "missing"
                    self._log_missing(watch)
                self._arm(watch)
                if watch.mode != "missing":
                    log.info(
                        "vault.rearmed", target=watch.target, vault=str(watch.root), mode=watch.mode
                    )
                    rearmed.append(watch.target)
        for target in rearmed:
            self._emit(VaultRearmed(target))

    @staticmethod
    def _still_there(watch: _Watch) -> bool:
        try:
            stat = watch.root.stat()
        except OSError:
            return False
        if (stat.st_dev, stat.st_ino) != watch.identity:
            return False  # deleted and recreated, or a drive mounted over it: watch the new one
        observer = watch.observer
        if observer is None or not observer.is_alive():
            return False
        return all(emitter.is_alive() for emitter in observer.emitters)
