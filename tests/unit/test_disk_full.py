"""A full disk during a pass: the pass stops with a clear VaultError (exit 5), no file is torn,
emptied or left as a temp file, and once there is room again the next pass ends exactly where a
pass without the fault would have, with nothing duplicated.

Two ways to fill the disk: ENOSPC injected at the write layer (the temp file's data really goes
to /dev/full, so the kernel raises it through Python's own file objects; a rename is made to fail
with ENOSPC in Python), and a real, tiny tmpfs (needs root; skipped only when the mount is
refused). A full disk under the state store is exit 7.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from syncd import cli
from syncd.adapters import _fs
from syncd.errors import StateError, VaultError
from syncd.lock import StateLock
from syncd.standin import StandinServer, generate_library
from syncd.sync import engine
from syncd.sync.state import MIGRATIONS
from tests.e2e.conftest import write_config
from tests.harness import Harness

Fmt = Literal["obsidian", "logseq"]
BOOKS = 40


class _FullDiskOs:
    """Stands in for the `os` module inside syncd.adapters._fs: after `room` more files, the
    data of each temp file goes to /dev/full (mode "write"), or each rename into place fails
    (mode "rename"), with ENOSPC. Everything else is the real `os`."""

    def __init__(self, mode: Literal["write", "rename"], room: int) -> None:
        self.mode = mode
        self.room = room
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def _take_room(self) -> bool:
        if self.room > 0:
            self.room -= 1
            return True
        self.refused += 1
        return False

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "write" and not self._take_room():
            full = os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, fd)  # the temp file exists (and must be cleaned up); its data cannot
            os.close(full)
        return os.fdopen(fd, *args, **kwargs)

    def fchmod(self, fd: int, mode: int) -> None:
        if stat.S_ISCHR(os.fstat(fd).st_mode):
            return  # never change /dev/full's own mode
        os.fchmod(fd, mode)

    def replace(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if self.mode == "rename" and not self._take_room():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        os.replace(src, dst)


def _library(h: Harness) -> None:
    for book_id in range(1, BOOKS + 1):
        h.source.add_book(
            book_id,
            f"Book {book_id:02d}",
            [f"Highlight {n} of book {book_id}, long enough to matter. " * 3 for n in range(5)],
        )


def _edit_and_grow(h: Harness) -> None:
    """The user adds a line to every other note; Readwise adds a highlight to every book."""
    for book_id in range(1, BOOKS + 1, 2):
        h.write(book_id, h.read(book_id).rstrip("\n") + "\n\nMy own words, keep them.\n")
    for book_id in range(1, BOOKS + 1):
        h.source.add_highlight(book_id, f"Second-day highlight of book {book_id}")


def _notes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "lost+found"
    }


def _assert_nothing_damaged(
    h: Harness, before: dict[str, bytes], after: dict[str, bytes]
) -> dict[str, bytes]:
    """Every note is as it was before the pass or as a fault-free pass leaves it; no temp file,
    no empty file."""
    now = _notes(h.vault)
    temps = [name for name in now if name.rpartition("/")[2].startswith(_fs.TEMP_PREFIX)]
    assert temps == []
    for name, data in now.items():
        assert data, f"{name} is empty"
        assert data in (before.get(name), after[name]), f"{name} is torn or unknown"
    return now


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several batches per pass, so "stops" is visible: later batches are never started.
    monkeypatch.setattr(engine, "BATCH_BOOKS", 10)


def _reference(
    tmp_path: Path, fmt: Fmt, *steps: Callable[[Harness], None]
) -> list[dict[str, bytes]]:
    """The vault after each step's pass, with no fault."""
    h = Harness(tmp_path / "reference", fmt)
    _library(h)
    out = []
    for step in steps:
        step(h)
        h.sync()
        out.append(_notes(h.vault))
    h.store.close()
    return out


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("mode", ["write", "rename"])
@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_disk_full_on_the_first_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: Fmt, mode: Literal["write", "rename"]
) -> None:
    (expected,) = _reference(tmp_path, fmt, lambda h: None)
    h = Harness(tmp_path / "faulty", fmt)
    _library(h)
    disk = _FullDiskOs(mode, room=13)
    monkeypatch.setattr(_fs, "os", disk)

    with pytest.raises(VaultError) as info:
        h.sync()
    assert info.value.exit_code == 5
    assert "target 't': cannot write (No space left on device); the pass stopped" in str(info.value)
    written = _assert_nothing_damaged(h, {}, expected)
    assert len(written) == 13  # batch 1 whole, 3 of batch 2, nothing of batches 3 and 4
    assert disk.refused == 7  # the rest of batch 2 was tried (each refused), then it stopped

    disk.room = 10**6  # room again
    summary = h.sync()
    assert summary.failed == 0 and summary.created == BOOKS - 13
    assert _notes(h.vault) == expected  # exactly a fault-free pass: none missing, none twice
    assert h.store.integrity_check() == "ok" and h.store.pending_intents("t") == []


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("mode", ["write", "rename"])
@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_disk_full_while_merging_into_edited_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: Fmt, mode: Literal["write", "rename"]
) -> None:
    _first, expected = _reference(tmp_path, fmt, lambda h: None, _edit_and_grow)
    h = Harness(tmp_path / "faulty", fmt)
    _library(h)
    h.sync()
    _edit_and_grow(h)
    before = _notes(h.vault)
    disk = _FullDiskOs(mode, room=13)
    monkeypatch.setattr(_fs, "os", disk)

    with pytest.raises(VaultError, match="No space left on device"):
        h.sync()
    now = _assert_nothing_damaged(h, before, expected)
    assert sum(now[n] != before[n] for n in now) == 13

    disk.room = 10**6
    summary = h.sync()
    assert summary.failed == 0
    assert _notes(h.vault) == expected
    for book_id in range(1, BOOKS + 1):
        text = h.read(book_id)
        assert text.count(f"Second-day highlight of book {book_id}") == 1
        assert text.count("My own words, keep them.") == (book_id % 2)


# --- a real full file system ---------------------------------------------------------------------


def _mount_tmpfs_or_skip(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip()})")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[Path, str], None]]:
    mounted: list[Path] = []

    def mount(where: Path, size: str) -> None:
        _mount_tmpfs_or_skip(where, size)
        mounted.append(where)

    yield mount
    gc.collect()  # a store left open by a failed pass (run_once does not close it) pins the mount
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=True)


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_real_full_tmpfs_vault(
    tmp_path: Path, tmpfs: Callable[[Path, str], None], fmt: Fmt
) -> None:
    (expected,) = _reference(tmp_path, fmt, lambda h: None)
    # tmpfs counts whole 4 KiB pages per file: room for about 16 of the 40 notes.
    pages_needed = sum(-(-len(data) // 4096) for data in expected.values())
    assert pages_needed >= 2 * 16
    tmpfs(tmp_path / "faulty" / "vault", "64k")
    h = Harness(tmp_path / "faulty", fmt)
    _library(h)

    with pytest.raises(VaultError, match="No space left on device") as info:
        h.sync()
    assert info.value.exit_code == 5
    written = _assert_nothing_damaged(h, {}, expected)
    assert 0 < len(written) < len(expected)

    subprocess.run(
        ["mount", "-o", "remount,size=4m", str(tmp_path / "faulty" / "vault")], check=True
    )
    summary = h.sync()
    assert summary.failed == 0
    assert _notes(h.vault) == expected
    h.store.close()


def test_real_full_tmpfs_under_the_state_store_is_exit_7(
    tmp_path: Path,
    tmpfs: Callable[[Path, str], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # see test_state_robustness.cli_setup
    for name in list(os.environ):
        if name.startswith(("SYNCD_", "READWISE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("READWISE_TOKEN", "tok-disk-full-0123456789abcdef")
    library = generate_library(books=120, highlights=4000, seed=5)
    with StandinServer(library, token="tok-disk-full-0123456789abcdef") as server:
        config, vault, _graph, state = write_config(tmp_path, server.base_url)
        tmpfs(state, "1m")  # room to open the store (16 KB pages), not for the library's cache
        code = cli.main(["--config", str(config), "--once"])
    err = capsys.readouterr().err
    assert code == 7, err
    assert "Traceback" not in err and "internal error" not in err
    assert f"state store {state / 'state.sqlite3'}" in err
    assert "is full; free some space and run syncd again" in err
    assert list(vault.iterdir()) == []  # the pull failed before any note was written
    # The store had opened (every migration in place): the disk filled up mid-pass.
    db = sqlite3.connect(f"file:{state / 'state.sqlite3'}?mode=ro", uri=True)
    try:
        applied = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
        assert applied == {name for name, _ in MIGRATIONS}
        assert db.execute("SELECT count(*) FROM books").fetchone()[0] == 0  # rolled back
    finally:
        db.close()


def test_full_disk_when_taking_the_state_lock_is_a_state_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", no_space)
    lock = StateLock(tmp_path / "state")
    with pytest.raises(StateError, match="No space left on device"):
        lock.acquire()
