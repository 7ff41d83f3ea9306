"""The vault watcher on real folders with real inotify (and the polling fallback): debounce,
moves, ignore rules, a vanishing vault, and own-write echoes. Waits on events, never on sleeps."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import NoReturn

import pytest
import structlog
from structlog.testing import LogCapture, capture_logs
from structlog.typing import EventDict
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import ObservedWatch
from watchdog.observers.polling import PollingObserver

from syncd.watch import (
    Observer,
    OwnWrites,
    PathChanged,
    VaultRearmed,
    VaultWatcher,
    WatchEvent,
    is_ignored,
)

TIMEOUT = 10.0


class Collector:
    """Every event the watcher emitted, in order; waits with a timeout for one to match."""

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: WatchEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, match: Callable[[WatchEvent], bool], *, since: int = 0) -> int:
        """Index of the first matching event at or after `since`."""
        found: list[int] = []

        def ready() -> bool:
            found[:] = [i for i in range(since, len(self.events)) if match(self.events[i])]
            return bool(found)

        with self._cond:
            assert self._cond.wait_for(ready, timeout=TIMEOUT), f"no match in {self.events}"
        return found[0]

    def paths(self, *, since: int = 0, until: int | None = None) -> list[str]:
        with self._cond:
            chosen = self.events[since:until]
        return [e.path for e in chosen if isinstance(e, PathChanged)]


def changed(path: str) -> Callable[[WatchEvent], bool]:
    return lambda e: isinstance(e, PathChanged) and e.path == path


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    for folder in ("Readwise/Books", "Notes", ".obsidian", ".trash", "logseq/bak"):
        (root / folder).mkdir(parents=True)
    return root


@pytest.fixture
def watching(vault: Path) -> Iterator[tuple[VaultWatcher, Collector]]:
    collector = Collector()
    watcher = VaultWatcher(collector, debounce=0.1, health_interval=0.05)
    watcher.start()
    assert watcher.watch("obs", vault) == "inotify"
    try:
        yield watcher, collector
    finally:
        watcher.stop()


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("Readwise/Books/Title.md", False),
        ("pages/Title (highlights).md", False),
        (".obsidian/workspace.json", True),
        (".trash/Title.md", True),
        (".stfolder", True),
        ("Readwise/Books/.syncd-0123456789abcdef.tmp", True),
        ("Readwise/Books/.Title.md.swp", True),
        ("Readwise/Books/Title.md.tmp", True),
        ("Readwise/Books/Title.md~", True),
        ("Readwise/Books/Title.sync-conflict-20240101-120000-ABCDEFG.md", True),
        ("logseq/bak/pages/Title/2024-01-01T12_00_00.000Z.Desktop.md", True),
        ("logseq/config.edn", False),
        ("pages/bak/Title.md", False),
    ],
)
def test_ignore_rules(path: str, ignored: bool) -> None:
    assert is_ignored(PurePosixPath(path)) is ignored


def test_a_burst_of_saves_is_one_event(
    watching: tuple[VaultWatcher, Collector], vault: Path
) -> None:
    _watcher, events = watching
    note = vault / "Readwise" / "Books" / "Title.md"
    for round_ in range(30):
        note.write_text(f"version {round_}\n", encoding="utf-8")
    first = events.wait_for(changed("Readwise/Books/Title.md"))
    # A later change elsewhere: once it is out, every event of the burst is out too.
    (vault / "Readwise" / "Books" / "Other.md").write_text("x", encoding="utf-8")
    sentinel = events.wait_for(changed("Readwise/Books/Other.md"), since=first)
    assert events.paths(until=sentinel) == ["Readwise/Books/Title.md"]


def test_an_atomic_save_through_a_temp_file_is_a_plain_change(
    watching: tuple[VaultWatcher, Collector], vault: Path
) -> None:
    _watcher, events = watching
    folder = vault / "Readwise" / "Books"
    temp = folder / ".syncd-00112233445566ff.tmp"
    temp.write_text("new text\n", encoding="utf-8")
    os.replace(temp, folder / "Title.md")
    index = events.wait_for(changed("Readwise/Books/Title.md"))
    event = events.events[index]
    assert isinstance(event, PathChanged) and event.moved_from is None


def test_a_rename_carries_where_the_file_came_from(
    watching: tuple[VaultWatcher, Collector], vault: Path
) -> None:
    _watcher, events = watching
    old = vault / "Readwise" / "Books" / "Old name.md"
    old.write_text("text\n", encoding="utf-8")
    seen = events.wait_for(changed("Readwise/Books/Old name.md"))
    # Into a folder that is already watched: a folder made just before the move may not be
    # watched yet, and then the move is a deletion plus a new file (the daemon matches those
    # by content hash).
    os.rename(old, vault / "Notes" / "New name.md")
    index = events.wait_for(changed("Notes/New name.md"), since=seen + 1)
    assert events.events[index] == PathChanged(
        "obs", "Notes/New name.md", "Readwise/Books/Old name.md"
    )


def test_moving_to_the_trash_or_deleting_reports_the_old_path(
    watching: tuple[VaultWatcher, Collector], vault: Path
) -> None:
    _watcher, events = watching
    a = vault / "Readwise" / "Books" / "A.md"
    b = vault / "Readwise" / "Books" / "B.md"
    a.write_text("a", encoding="utf-8")
    b.write_text("b", encoding="utf-8")
    seen = events.wait_for(changed("Readwise/Books/B.md"))
    os.rename(a, vault / ".trash" / "A.md")
    b.unlink()
    trashed = events.wait_for(changed("Readwise/Books/A.md"), since=seen + 1)
    deleted = events.wait_for(changed("Readwise/Books/B.md"), since=seen + 1)
    for index in (trashed, deleted):
        event = events.events[index]
        assert isinstance(event, PathChanged) and event.moved_from is None


def test_a_deleted_folder_is_reported_as_a_folder(
    watching: tuple[VaultWatcher, Collector], vault: Path
) -> None:
    _watcher, events = watching
    shutil.rmtree(vault / "Readwise")
    index = events.wait_for(changed("Readwise"))
    event = events.events[index]
    assert isinstance(event, PathChanged) and event.is_dir


def test_a_new_folder_is_reported_as_a_folder(
    watching: tuple[VaultWatcher, Collector], vault: Path
) -> None:
    """Its watch comes after it exists: a note renamed in it before then has no event of its
    own, so the folder's own is the observer's cue to look for the pages under it."""
    _watcher, events = watching
    (vault / "Readwise" / "Articles").mkdir()
    index = events.wait_for(changed("Readwise/Articles"))
    event = events.events[index]
    assert isinstance(event, PathChanged) and event.is_dir


def test_what_editors_and_sync_tools_write_is_ignored(
    watching: tuple[VaultWatcher, Collector], vault: Path
) -> None:
    _watcher, events = watching
    (vault / ".obsidian" / "workspace.json").write_text("{}", encoding="utf-8")
    (vault / "logseq" / "bak" / "Title.md").write_text("x", encoding="utf-8")
    (vault / "Readwise" / "Books" / "Title.md~").write_text("x", encoding="utf-8")
    (vault / "Readwise" / "Books" / "x.tmp").write_text("x", encoding="utf-8")
    (vault / "Readwise" / "Books" / "T.sync-conflict-20240101-1-A.md").write_text("x")
    (vault / "Readwise" / "Books" / "Real.md").write_text("x", encoding="utf-8")
    sentinel = events.wait_for(changed("Readwise/Books/Real.md"))
    assert events.paths(until=sentinel + 1) == ["Readwise/Books/Real.md"]


class WaitableLogs(LogCapture):
    """structlog's LogCapture that can be waited on for an event."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()

    def __call__(self, logger: object, method_name: str, event_dict: EventDict) -> NoReturn:
        with self._cond:
            try:
                super().__call__(logger, method_name, event_dict)
            finally:
                self._cond.notify_all()

    def wait_for(self, event: str) -> None:
        with self._cond:
            assert self._cond.wait_for(
                lambda: any(e["event"] == event for e in self.entries), timeout=TIMEOUT
            ), f"no {event} in {self.entries}"


@contextmanager
def waitable_logs() -> Iterator[WaitableLogs]:
    capture = WaitableLogs()
    old = structlog.get_config()["processors"]
    structlog.configure(processors=[capture])
    try:
        yield capture
    finally:
        structlog.configure(processors=old)


def test_the_vault_vanishing_and_returning_is_logged_once_and_rearmed(
    watching: tuple[VaultWatcher, Collector], vault: Path
) -> None:
    watcher, events = watching
    aside = vault.with_name("vault-aside")
    with waitable_logs() as logs:
        os.rename(vault, aside)
        logs.wait_for("vault.missing")
        assert watcher.mode("obs") == "missing"
        os.rename(aside, vault)
        rearmed = events.wait_for(lambda e: e == VaultRearmed("obs"))
    assert [entry["event"] for entry in logs.entries].count("vault.missing") == 1
    assert any(entry["event"] == "vault.rearmed" for entry in logs.entries)
    # Watching again: a change after the return is seen.
    (vault / "Readwise" / "Books" / "After.md").write_text("x", encoding="utf-8")
    events.wait_for(changed("Readwise/Books/After.md"), since=rearmed)


class _ExhaustedInotify(PollingObserver):
    """An observer that fails to schedule the way inotify does when its watches run out."""

    def schedule(
        self,
        event_handler: FileSystemEventHandler,
        path: str | Path,
        *,
        recursive: bool = False,
        event_filter: list[type[FileSystemEvent]] | None = None,
        follow_symlink: bool = False,
    ) -> ObservedWatch:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_falls_back_to_polling_with_a_warning_when_inotify_runs_out(vault: Path) -> None:
    events = Collector()

    def exhausted() -> Observer:
        return _ExhaustedInotify()

    def fast_polling() -> Observer:
        return PollingObserver(timeout=0.05)

    watcher = VaultWatcher(
        events, debounce=0.05, observer_factory=exhausted, fallback_factory=fast_polling
    )
    watcher.start()
    try:
        with capture_logs() as logs:
            assert watcher.watch("obs", vault) == "polling"
        warning = next(entry for entry in logs if entry["event"] == "watch.polling")
        assert warning["log_level"] == "warning"
        assert "max_user_watches" in warning["message"]
        (vault / "Readwise" / "Books" / "Polled.md").write_text("x", encoding="utf-8")
        events.wait_for(changed("Readwise/Books/Polled.md"))
    finally:
        watcher.stop()


def test_a_missing_vault_at_start_is_watched_for(tmp_path: Path) -> None:
    events = Collector()
    watcher = VaultWatcher(events, debounce=0.05, health_interval=0.05)
    watcher.start()
    try:
        assert watcher.watch("obs", tmp_path / "later") == "missing"
        (tmp_path / "later").mkdir()
        events.wait_for(lambda e: e == VaultRearmed("obs"))
        assert watcher.mode("obs") == "inotify"
    finally:
        watcher.stop()


def test_own_writes_are_recognised_once_by_content_hash() -> None:
    own = OwnWrites()
    own.expect("obs", "a.md", "h1")
    assert not own.is_echo("obs", "a.md", "h2")  # the user typed after our write
    assert not own.is_echo("lsq", "a.md", "h1")
    assert own.is_echo("obs", "a.md", "h1")
    assert not own.is_echo("obs", "a.md", "h1")  # consumed: a later identical save is the user's
    own.expect("obs", "a.md", "h1")
    own.expect("obs", "a.md", "h3")  # written twice before the echo: the last text counts
    assert own.is_echo("obs", "a.md", "h3")


def test_own_writes_forget_old_entries_when_echoes_never_come() -> None:
    now = [0.0]
    own = OwnWrites(ttl=10.0, clock=lambda: now[0])
    for i in range(4096):
        own.expect("obs", f"{i}.md", "h")
    now[0] = 100.0
    own.expect("obs", "fresh.md", "h")
    assert len(own) == 1 and own.is_echo("obs", "fresh.md", "h")
