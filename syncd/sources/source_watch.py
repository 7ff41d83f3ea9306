"""Watch device sources for the daemon: a change that has settled asks for a pass.

Polling, not inotify: a Kindle's file lives on a USB mass-storage mount that appears and
disappears, and an inotify watch on a folder does not follow a file system mounted over it, nor
survive it being unmounted. A `stat` of one file four times a second costs nothing, and sees the
file appear (plugged in), change (a save while mounted), or vanish (unplugged) whatever the mount
does. A KOReader folder is walked less often (its sidecars' sizes and mtimes).

A change is handed on only once the source's signature has stayed the same for one more poll
(the file settled); the pass then reads it with `device_files.read_settled`, which retries a
read torn by a later write. Vanishing is handed on too (status "missing"), never a deletion.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from syncd.config import SourceConfig
from syncd.log import get_logger
from syncd.sources.device_files import find_sidecars

log = get_logger("syncd.sources.watch")

FILE_POLL_S = 0.25
FOLDER_POLL_S = 2.0

Signature = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class SourceChanged:
    """Source `name` changed and settled: run a pass."""

    name: str


def signature(source: SourceConfig) -> Signature:
    """What changes when the source's content may have: (path, size, mtime, inode) of each file;
    () when nothing is there."""
    paths = [source.path] if source.kind == "kindle_clippings" else []
    if source.kind == "koreader":
        try:
            paths = list(find_sidecars(source.path)) if source.path.exists() else []
        except OSError:
            paths = []
    found = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        found.append((str(path), info.st_size, info.st_mtime_ns, info.st_ino))
    return tuple(found)


class SourceWatcher:
    """One thread polling every source; `on_change(SourceChanged)` when one settled."""

    def __init__(
        self,
        on_change: Callable[[SourceChanged], None],
        *,
        file_poll: float = FILE_POLL_S,
        folder_poll: float = FOLDER_POLL_S,
    ) -> None:
        self._on_change = on_change
        self._file_poll = file_poll
        self._folder_poll = folder_poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sources: Sequence[SourceConfig] = ()

    def start(self, sources: Sequence[SourceConfig]) -> None:
        """Watch `sources` (replacing any earlier set). Their current state is the baseline:
        the daemon's first pass reads them anyway."""
        self.stop()
        self._sources = list(sources)
        if not self._sources:
            return
        self._stop = threading.Event()
        # The baseline is taken before start() returns: a change made right after is seen.
        baseline = {s.name: signature(s) for s in self._sources}
        self._thread = threading.Thread(
            target=self._run, args=(baseline,), name="syncd-sources", daemon=True
        )
        self._thread.start()
        log.info("sources.watching", sources=[s.name for s in self._sources])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, seen: dict[str, Signature]) -> None:
        pending: dict[str, Signature] = {}  # changed, waiting to settle
        due = dict.fromkeys(seen, 0.0)
        while not self._stop.is_set():
            now = time.monotonic()
            for source in self._sources:
                if now < due[source.name]:
                    continue
                folder = source.kind == "koreader"
                due[source.name] = now + (self._folder_poll if folder else self._file_poll)
                current = signature(source)
                if source.name in pending:
                    if current == pending[source.name]:  # unchanged for a whole poll: settled
                        del pending[source.name]
                        seen[source.name] = current
                        log.info("source.changed", source=source.name, files=len(current))
                        self._on_change(SourceChanged(source.name))
                    else:
                        pending[source.name] = current  # still being written
                elif current != seen[source.name]:
                    pending[source.name] = current
            next_due = min(due.values())
            self._stop.wait(max(0.0, min(next_due - time.monotonic(), self._file_poll)))
