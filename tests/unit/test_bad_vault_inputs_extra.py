"""Odd vault files, file-system side: a note that cannot be read (mode 000), a named pipe or a
folder where a note should be, a folder of pages that is a symlink out of the vault, and bad
files the user keeps beside syncd's pages. Each is reported (naming the book or file and the
problem) and left exactly as it was, or simply left alone when it is not syncd's; the rest of the
pass goes on, and nothing is ever written outside the vault.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import stat
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest

from syncd.standin import generate_library
from tests.e2e.conftest import make_setup
from tests.harness import Harness
from tests.unit.test_bad_vault_files import watchdog

Format = Literal["obsidian", "logseq"]
FORMATS = ["obsidian", "logseq"]


def _two_books(tmp_path: Path, fmt: Format, *, second_category: str = "articles") -> Harness:
    """Two synced books, then one new highlight upstream for each (not yet synced)."""
    h = Harness(tmp_path, fmt)
    h.source.add_book(1, "Broken Book", ["Alpha text of book one"])
    h.source.add_book(2, "Fine Book", ["Bravo text of book two"], category=second_category)
    h.sync()
    h.source.add_highlight(1, "New in the broken book")
    h.source.add_highlight(2, "New in the fine book")
    return h


def _messages(errors: list[tuple[str, str]]) -> str:
    return "\n".join(f"{kind}: {message}" for kind, message in errors)


# --- a note that cannot be read ----------------------------------------------------------------


def _deny_opening(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """What the kernel does for any user but root when a file's mode is 000: every open(2) of it
    fails with EACCES. Root bypasses permission bits, so under root (CI containers) the tests
    put that check back in Python's open functions, for this one path only."""
    target = os.path.realpath(denied)

    def is_denied(file: object) -> bool:
        return isinstance(file, str | os.PathLike) and os.path.realpath(file) == target

    def guard(real: Callable[..., Any]) -> Callable[..., Any]:
        def opener(file: Any, *args: Any, **kwargs: Any) -> Any:
            if is_denied(file):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
            return real(file, *args, **kwargs)

        return opener

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(io, "open", guard(io.open))
    monkeypatch.setattr(os, "open", guard(os.open))


@pytest.mark.parametrize("fmt", FORMATS)
def test_note_without_read_permission_is_reported_and_left_alone(
    tmp_path: Path, fmt: Format, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    content = note.read_bytes()
    inode = note.stat().st_ino
    note.chmod(0)
    if os.geteuid() == 0:
        _deny_opening(monkeypatch, note)

    summary = h.sync()

    monkeypatch.undo()
    assert stat.S_IMODE(note.stat().st_mode) == 0
    assert note.stat().st_ino == inode  # not replaced by a new file
    assert summary.failed == 1
    assert "New in the fine book" in h.read(2)
    assert any(
        "book 1" in message and note.name in message and "Permission denied" in message
        for _kind, message in summary.errors
    ), _messages(summary.errors)
    note.chmod(0o644)
    assert note.read_bytes() == content
    # The user gives the permission back: the next pass brings the highlight, once.
    again = h.sync()
    assert again.failed == 0
    assert h.read(1).count("New in the broken book") == 1


# --- not a file at all -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_named_pipe_at_the_note_path_does_not_block_the_pass(tmp_path: Path, fmt: Format) -> None:
    """Opening a FIFO for reading waits for a writer, forever: syncd must not open one."""
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    note.unlink()
    os.mkfifo(note)

    with watchdog(3, "a pass with a FIFO at a note's path"):
        summary = h.sync()

    assert stat.S_ISFIFO(os.lstat(note).st_mode)
    assert summary.failed == 1
    assert "New in the fine book" in h.read(2)
    assert any(
        kind == "VaultError" and "book 1" in message and note.name in message
        for kind, message in summary.errors
    ), _messages(summary.errors)


@pytest.mark.parametrize("fmt", FORMATS)
def test_folder_at_the_note_path_is_a_vault_error_not_a_crash(tmp_path: Path, fmt: Format) -> None:
    """A folder where the note was (the user made one of that name): reported as a vault problem
    (exit code 5 under --once), not as a bug in syncd (exit code 1, with a traceback), and the
    folder and what is in it are left alone."""
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    note.unlink()
    note.mkdir()
    (note / "inside.md").write_text("the user's\n", encoding="utf-8")

    summary = h.sync()

    assert note.is_dir() and (note / "inside.md").read_text(encoding="utf-8") == "the user's\n"
    assert summary.failed == 1
    assert "New in the fine book" in h.read(2)
    assert any(
        kind == "VaultError" and "book 1" in message and note.name in message
        for kind, message in summary.errors
    ), _messages(summary.errors)


# --- a folder of pages that leads out of the vault ---------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")}


@pytest.mark.parametrize("fmt", FORMATS)
def test_symlinked_page_folder_out_of_the_vault_is_never_written(
    tmp_path: Path, fmt: Format
) -> None:
    """The user moved the folder holding book 1's page out of the vault and left a symlink to it
    (Obsidian: Readwise/Articles; Logseq: pages/). Nothing is written through it: neither the
    pages there nor a page for a new book. Obsidian's book 2, in Readwise/Books, gets its
    highlight; every book whose page would go through the link is reported."""
    h = _two_books(tmp_path, fmt, second_category="books")
    folder = h.path(1).parent
    outside = tmp_path / "outside"
    shutil.copytree(folder, outside)
    shutil.rmtree(folder)
    os.symlink(outside, folder, target_is_directory=True)
    before = _snapshot(outside)
    h.source.add_book(3, "Brand New Book", ["Charlie text of book three"])

    summary = h.sync()

    assert _snapshot(outside) == before
    assert folder.is_symlink()
    through_link = {1, 3} if fmt == "obsidian" else {1, 2, 3}
    assert summary.failed == len(through_link), _messages(summary.errors)
    assert all("outside the vault" in message for _kind, message in summary.errors)
    if fmt == "obsidian":
        assert "New in the fine book" in h.read(2)
    assert not any("Brand New" in p.name for p in h.files_on_disk())


# --- bad files beside syncd's pages ------------------------------------------------------------


def _bad_neighbour(vault: Path, fmt: Format, kind: str, tmp_path: Path) -> Path:
    folder = vault / ("pages" if fmt == "logseq" else "")
    path = folder / "Old Journal.md"
    if kind == "latin-1":
        path.write_bytes("Caf\u00e9 notes from 2009\n".encode("latin-1"))
    else:
        (tmp_path / "elsewhere.md").write_text("someone else's\n", encoding="utf-8")
        os.symlink(tmp_path / "elsewhere.md", path)
    return path


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["latin-1", "symlink-out"])
def test_a_bad_note_of_the_users_does_not_stop_new_books(
    tmp_path: Path, fmt: Format, kind: str
) -> None:
    """Before creating a page for a new book, syncd looks through the notes it does not own for
    a page Readwise's plugin already wrote for it. A note of the user's it cannot read (an old
    Latin-1 file, a symlink out of the vault) cannot be such a page: it is passed over, and the
    new book gets its page, in this pass and the next."""
    h = _two_books(tmp_path, fmt)
    bad = _bad_neighbour(h.vault, fmt, kind, tmp_path)
    before = os.readlink(bad) if bad.is_symlink() else bad.read_bytes()
    h.source.add_book(3, "Brand New Book", ["Charlie text of book three"])

    summary = h.sync()

    assert (summary.failed, summary.errors) == (0, []), _messages(summary.errors)
    assert "Charlie text of book three" in h.read(3)
    assert "New in the broken book" in h.read(1)
    h.source.add_book(4, "Another New Book", ["Delta text of book four"])
    again = h.sync()
    assert (again.failed, again.errors) == (0, []), _messages(again.errors)
    assert "Delta text of book four" in h.read(4)
    assert (os.readlink(bad) if bad.is_symlink() else bad.read_bytes()) == before


# --- through the real command line -------------------------------------------------------------


def test_cli_names_the_bad_file_and_exits_5(tmp_path: Path) -> None:
    """`syncd --once` as a subprocess: a page that became invalid UTF-8 is named, with its path,
    in what the user sees; the other pages still get their new highlights; exit code 5."""
    library = generate_library(books=3, highlights=9, seed=11)
    with contextmanager(make_setup)(tmp_path, library) as setup:
        first = setup.run("--once", now="2024-03-05T09:15:00+00:00")
        assert first.returncode == 0, first.stderr
        pages = {book: row for book, row in setup.pages("obs").items() if row[0]}
        broken_id, fine_id = sorted(pages)[:2]
        broken = setup.obsidian / pages[broken_id][0]
        broken.write_bytes(b"\xff\xfe my notes in UTF-16\n")
        library.add_highlight(broken_id, text="Fresh for the broken page")
        library.add_highlight(fine_id, text="Fresh for the fine page")

        second = setup.run("--once", now="2024-03-06T09:15:00+00:00")

        assert second.returncode == 5, second.stdout + second.stderr
        output = second.stdout + second.stderr
        assert pages[broken_id][0] in output or str(broken) in output, output
        assert "UTF-8" in output
        assert broken.read_bytes() == b"\xff\xfe my notes in UTF-16\n"
        fine = (setup.obsidian / pages[fine_id][0]).read_text(encoding="utf-8")
        assert "Fresh for the fine page" in fine
