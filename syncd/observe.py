"""What the user did in a vault, as the daemon sees it: edits, moves and deletions of the pages
syncd keeps, recorded in the state store (never a write into the vault).

- `VaultObserver.scan` compares every page file with what the state last saw (start-up, a
  vault that came back, a reloaded config) and reads only the files whose mtime or size moved.
- `VaultObserver.apply_changes` does the same for the paths the watcher reported.
- A page whose file vanished is looked for elsewhere in the target's folder (same size, same
  content hash): found, it moved; not found, the user deleted it and syncd will not recreate it.
- A file syncd wrote itself (its hash is in `OwnWrites`) is never taken for a user edit.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from syncd.adapters._fs import read_regular
from syncd.errors import VaultError
from syncd.log import get_logger
from syncd.sync.state import PageStat, StateStore, text_hash
from syncd.watch import OwnWrites, PathChanged, is_ignored

log = get_logger("syncd.daemon")

# Files a scan records per transaction: one commit for thousands of pages, bounded.
_SCAN_BATCH = 1000


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


@dataclass(frozen=True, slots=True)
class TargetPlace:
    """Where a target lives: the vault (or graph) root, and the folder its notes may be moved
    around in (a moved page is looked for there)."""

    vault: Path
    notes: Path


class VaultObserver:
    def __init__(
        self,
        store: StateStore,
        own_writes: OwnWrites,
        places: Callable[[str], TargetPlace | None],
        *,
        should_stop: Callable[[], bool],
    ) -> None:
        """`places` maps a target name to where it lives (None: not a target any more);
        `should_stop` is asked between files, so a stop request ends a long scan early."""
        self._store = store
        self._own_writes = own_writes
        self._places = places
        self._should_stop = should_stop

    def scan(self, target: str, *, reason: str) -> None:
        """Compare every page file with what the state last saw; read only what changed."""
        try:
            self._scan_target(target, reason=reason)
        except OSError as exc:
            # The vault is half there (unmounting): the pass checks it again before writing.
            log.warning("scan.failed", target=target, reason=reason, error=str(exc))

    def _scan_target(self, target: str, *, reason: str) -> None:
        place = self._places(target)
        if place is None:
            return
        root = place.vault
        store = self._store
        if not root.is_dir():
            log.warning("scan.skipped", target=target, vault=str(root), reason="vault missing")
            return
        unfinished = {intended.book_id for _, intended in store.pending_intents(target)}
        # Only what a stat is compared with: no page row is parsed for a file that is there.
        stats = [
            row for row in store.page_stats(target) if row.path and row.book_id not in unfinished
        ]
        if stats and not any(root.iterdir()):
            log.warning("scan.skipped", target=target, vault=str(root), reason="vault empty")
            return
        read = edited = 0
        gone: list[PageStat] = []
        changed: list[tuple[PageStat, Observed]] = []
        for row in stats:
            if self._should_stop():
                break  # what was read is recorded; the rest is found by the next scan
            path = root / row.path
            try:
                stat = path.stat()
                if (stat.st_mtime_ns, stat.st_size) == (row.seen_mtime_ns, row.seen_size):
                    continue
                observed = observe_file(path)
            except (FileNotFoundError, NotADirectoryError):
                observed = None
            except OSError as exc:
                log.warning("page.unreadable", target=target, path=row.path, error=str(exc))
                continue
            if observed is None:
                gone.append(row)
                continue
            read += 1
            changed.append((row, observed))
            if len(changed) >= _SCAN_BATCH:
                edited += self._record_scanned(target, changed)
                changed = []
        edited += self._record_scanned(target, changed)
        if self._should_stop():
            return
        moved, deleted = self._resolve_vanished(target, gone)
        log.info(
            "scan.done",
            target=target,
            reason=reason,
            pages=len(stats),
            read=read,
            edited=edited,
            moved=moved,
            deleted_by_user=deleted,
        )

    def _record_scanned(self, target: str, changed: Sequence[tuple[PageStat, Observed]]) -> int:
        """`_record_observation` for files a scan found changed, in one transaction (the first
        start after `syncd --once` reads every page: one fsync, not thousands). Edits seen."""
        kept = [
            (row, observed)
            for row, observed in changed
            if not (
                self._own_writes.is_echo(target, row.path, observed.content_hash)
                and observed.content_hash != row.written_hash
            )  # our write, not yet recorded as written: never the user's
        ]
        differs = self._store.observe_many(
            target,
            [(row.book_id, o.mtime_ns, o.size, o.content_hash) for row, o in kept],
        )
        edited = 0
        for (row, observed), differ in zip(kept, differs, strict=True):
            if differ and row.seen_hash != observed.content_hash:
                log.info("page.edited", target=target, book_id=row.book_id, path=row.path)
                edited += 1
        return edited

    def apply_changes(self, target: str, events: Sequence[PathChanged]) -> None:
        """Record what the user did to the files these watcher events name. OSError: the
        vault is half there; the next event or scan looks again."""
        place = self._places(target)
        if place is None:
            return
        root = place.vault
        store = self._store
        # Rows as a scan sees them (no page text, no blocks): a pass's own writes come back
        # as events, and each would otherwise parse a whole page row after the pass.
        gone: list[PageStat] = []
        for event in events:
            if self._should_stop():
                return  # what is left is found by the start-up scan of the next run
            if event.is_dir:
                prefix = event.path + "/"
                gone.extend(
                    p
                    for p in store.page_stats(target)
                    if p.path.startswith(prefix) and not (root / p.path).exists()
                )
                continue
            if event.moved_from is not None:
                self._follow_move(target, root, event.moved_from, event.path)
            page = store.live_page_at(target, event.path)
            if page is None:
                continue  # not a page syncd keeps
            try:
                observed = observe_file(root / event.path)
            except OSError as exc:
                log.warning("page.unreadable", target=target, path=event.path, error=str(exc))
                continue
            if observed is None:
                gone.append(page)
            else:
                self._record_observation(target, page, observed)
        self._resolve_vanished(target, gone)

    def _follow_move(self, target: str, root: Path, old_path: str, new_path: str) -> None:
        page = self._store.live_page_at(target, old_path)
        if page is None or (root / old_path).exists():
            return
        if self._store.path_taken(target, new_path):
            return  # moved over another page: leave both rows; the next pass sorts it out
        self._store.move_page(target, page.book_id, new_path)
        log.info("page.moved", target=target, book_id=page.book_id, path=new_path, was=old_path)

    def _record_observation(self, target: str, page: PageStat, observed: Observed) -> int:
        """Store what the file looks like now; 1 if that is a user edit seen for the first time."""
        echo = self._own_writes.is_echo(target, page.path, observed.content_hash)
        if echo and observed.content_hash != page.written_hash:
            return 0  # our write, not yet recorded as written: never the user's
        previous = page.seen_hash
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

    def _resolve_vanished(self, target: str, gone: Sequence[PageStat]) -> tuple[int, int]:
        """Pages whose file vanished: moved if a file with the same content turns up elsewhere
        in the target's folder, else deleted by the user (never recreated). (moved, deleted)"""
        if not gone:
            return 0, 0
        place = self._places(target)
        if place is None:
            return 0, 0
        vault = place.vault
        if not vault.is_dir() or not any(vault.iterdir()):
            return 0, 0  # unmounted, not deleted: the pass refuses such a vault anyway
        wanted: dict[int, list[tuple[str, PageStat]]] = {}
        for page in gone:
            size, seen_hash = page.seen_size, page.seen_hash
            if size is None or seen_hash is None:
                # Never seen by a scan or the watcher: what syncd wrote is what to look for.
                row = self._store.page(target, page.book_id)
                if row is None or row.written_text is None or row.written_hash is None:
                    continue
                size, seen_hash = len(row.written_text.encode("utf-8")), row.written_hash
            wanted.setdefault(size, []).append((seen_hash, page))
        known = set(self._store.page_paths(target))
        found: dict[int, str] = {}
        for path, size in _files_under(vault, place.notes):
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
