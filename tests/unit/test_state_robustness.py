"""The state store when it is damaged, foreign or out of reach, and what it keeps private.

Each failure must be a StateError (exit 7) whose message names the file or folder and says what
to do, never a traceback, and must leave the vault and the damaged file as they were. Runs as
root in CI: where root would bypass a permission, the test says how the condition is produced
(a read-only bind mount, a child process as `nobody`, an injected SQLite error).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncd import cli
from syncd.errors import StateError
from syncd.standin import StandinServer, generate_library
from syncd.sync.state import STATE_FILE, StateStore
from tests.e2e.conftest import write_config
from tests.harness import Harness

TOKEN = "tok-3f9a7c21d84e4b6f9e0a5d7c"


# --- helpers -------------------------------------------------------------------------------------


def _synced_state(tmp_path: Path, *, books: int = 30) -> Harness:
    """A harness after one pass over `books` books of six highlights (store still open)."""
    harness = Harness(tmp_path, "obsidian")
    for book_id in range(1, books + 1):
        harness.source.add_book(
            book_id, f"Book {book_id}", [f"Highlight {book_id}.{n} " * 8 for n in range(6)]
        )
    harness.sync()
    return harness


def _open_error(state_dir: Path) -> StateError:
    with pytest.raises(StateError) as info:
        StateStore.open(state_dir)
    assert info.value.exit_code == 7
    return info.value


@dataclass
class CliSetup:
    config: Path
    state: Path
    vault: Path
    graph: Path


@pytest.fixture
def cli_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliSetup]:
    """A stand-in server and a config whose [readwise] table holds the token itself."""
    # A handler left on a closed stream by another test must not print logging's own "Logging
    # error" traceback into the output these tests search for syncd's.
    monkeypatch.setattr(logging, "raiseExceptions", False)
    for name in list(os.environ):
        if name.startswith(("SYNCD_", "READWISE_")):
            monkeypatch.delenv(name)
    library = generate_library(books=12, highlights=90, seed=3)
    with StandinServer(library, token=TOKEN) as server:
        config, vault, graph, state = write_config(tmp_path, server.base_url)
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[readwise]\n", f'[readwise]\ntoken = "{TOKEN}"\n', 1))
        yield CliSetup(config, state, vault, graph)


def _main(setup: CliSetup, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """cli.main in this process; (exit code, stdout + stderr)."""
    code = cli.main(["--config", str(setup.config), *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _assert_clear(output: str, *names: object) -> None:
    assert "Traceback" not in output and "internal error" not in output, output
    for name in names:
        assert str(name) in output, (name, output)


# --- a damaged or foreign database ---------------------------------------------------------------


def test_random_bytes_exit_7_naming_the_file_and_the_fix(
    cli_setup: CliSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(cli_setup, capsys, "--once")[0] == 0
    vault = _files(cli_setup.vault)
    state_file = cli_setup.state / STATE_FILE
    garbage = os.urandom(3 * 4096 + 17)
    state_file.write_bytes(garbage)

    code, output = _main(cli_setup, capsys, "--once")
    assert code == 7
    _assert_clear(output, state_file, "is damaged", "syncd rebuild-state")
    assert state_file.read_bytes() == garbage  # kept for the user (and rebuild-state) as it was
    assert _files(cli_setup.vault) == vault


@pytest.mark.parametrize("keep", ["half", "first page", "100 bytes"])
def test_truncated_database_is_refused_untouched(tmp_path: Path, keep: str) -> None:
    harness = _synced_state(tmp_path)
    harness.store.close()
    state_file = tmp_path / "state" / STATE_FILE
    data = state_file.read_bytes()
    assert len(data) >= 8 * 4096  # a real store, many pages long
    cut = {"half": len(data) // 2, "first page": 4096, "100 bytes": 100}[keep]
    state_file.write_bytes(data[:cut])

    error = _open_error(tmp_path / "state")
    assert str(state_file) in str(error) and "is damaged" in str(error)
    assert "syncd rebuild-state" in str(error)
    assert state_file.read_bytes() == data[:cut]


def test_empty_file_is_a_new_store_and_the_pass_adopts_without_writing(tmp_path: Path) -> None:
    # SQLite reads a 0-byte file as a new database (it is also what a first run killed between
    # creating the file and its first commit leaves): the pass then adopts every page as is.
    harness = _synced_state(tmp_path, books=5)
    harness.store.close()
    before = _files(harness.vault)
    (tmp_path / "state" / STATE_FILE).write_bytes(b"")
    harness.store = StateStore.open(tmp_path / "state")
    summary = harness.sync()
    assert (summary.adopted, summary.created, summary.updated) == (5, 0, 0)
    assert _files(harness.vault) == before


def test_newer_schema_exit_7_and_nothing_touched(
    cli_setup: CliSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(cli_setup, capsys, "--once")[0] == 0
    state_file = cli_setup.state / STATE_FILE
    db = sqlite3.connect(state_file)
    db.execute("INSERT INTO schema_migrations VALUES ('900_from_the_future', 'now')")
    db.commit()
    db.close()
    before = _files(cli_setup.vault), state_file.read_bytes()

    code, output = _main(cli_setup, capsys, "--once")
    assert code == 7
    _assert_clear(output, state_file, "newer syncd", "900_from_the_future")
    assert (_files(cli_setup.vault), state_file.read_bytes()) == before
    assert _main(cli_setup, capsys, "status")[0] == 7  # every command refuses it


# --- a WAL file that is garbage: SQLite checks each frame's checksum and ignores bad ones -------


def test_garbage_wal_beside_a_closed_store_is_ignored(tmp_path: Path) -> None:
    harness = _synced_state(tmp_path, books=5)
    pages = harness.store.pages("t")
    harness.store.close()
    state_dir = tmp_path / "state"
    (state_dir / f"{STATE_FILE}-wal").write_bytes(os.urandom(64 * 1024))

    store = StateStore.open(state_dir)
    assert store.integrity_check() == "ok"
    assert store.pages("t") == pages
    store.close()


def test_wal_with_a_damaged_last_frame_loses_only_that_commit(tmp_path: Path) -> None:
    """A copy of a live store (as a crash leaves it, WAL not yet checkpointed) whose WAL's last
    frame is damaged: it opens at the commit before, and the next pass completes with no
    duplicate (the pages whose record was lost are recognised as syncd's own)."""
    harness = _synced_state(tmp_path, books=8)
    copy = tmp_path / "crashed"
    copy.mkdir()
    for name in (STATE_FILE, f"{STATE_FILE}-wal"):
        shutil.copy(tmp_path / "state" / name, copy / name)
    harness.store.close()
    wal = bytearray((copy / f"{STATE_FILE}-wal").read_bytes())
    assert len(wal) > 32 + 2 * (4096 + 24)  # a header and several frames
    wal[-200:-100] = os.urandom(100)
    (copy / f"{STATE_FILE}-wal").write_bytes(bytes(wal))
    before = _files(harness.vault)

    harness.store = StateStore.open(copy)
    assert harness.store.integrity_check() == "ok"
    summary = harness.sync()
    assert summary.created == 0 and summary.failed == 0
    assert _files(harness.vault) == before
    assert len(harness.store.pages("t")) == 8


# --- a state dir syncd cannot write --------------------------------------------------------------


def test_state_dir_that_is_a_file(cli_setup: CliSetup, capsys: pytest.CaptureFixture[str]) -> None:
    cli_setup.state.write_text("not a folder", encoding="utf-8")
    error = _open_error(cli_setup.state)
    assert f"state dir {cli_setup.state} is not a folder" in str(error)
    assert "[state] dir" in str(error)
    code, output = _main(cli_setup, capsys, "--once")
    assert code == 7
    _assert_clear(output, cli_setup.state)


def _mount_or_skip(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} was refused here: {result.stderr.strip()}")


@pytest.fixture
def read_only_state(cli_setup: CliSetup) -> Iterator[Path]:
    """The state dir of a finished pass, made read-only by a real read-only bind mount."""
    StateStore.open(cli_setup.state).close()
    _mount_or_skip("--bind", str(cli_setup.state), str(cli_setup.state))
    try:
        _mount_or_skip("-o", "remount,bind,ro", str(cli_setup.state))
        yield cli_setup.state
    finally:
        subprocess.run(["umount", str(cli_setup.state)], check=True)


def test_state_dir_on_a_read_only_mount(
    read_only_state: Path, cli_setup: CliSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    error = _open_error(read_only_state)
    assert str(read_only_state) in str(error) and "Read-only file system" in str(error)
    assert "set [state] dir" in str(error)
    code, output = _main(cli_setup, capsys, "--once")
    assert code == 7
    _assert_clear(output, read_only_state, "Read-only file system")
    assert list(cli_setup.vault.iterdir()) == []  # nothing written before the state was usable


NOBODY = 65534


@contextmanager
def _as_nobody() -> Iterator[None]:
    """Root ignores permission bits: switch the effective ids to `nobody` for a real check (root
    stays the saved id, so they are switched back)."""
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder `nobody` can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="syncd-perm-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _open_as_other_user(state_dir: Path) -> StateError:
    if os.geteuid() == 0:
        with _as_nobody():
            return _open_error(state_dir)
    return _open_error(state_dir)


def test_state_dir_of_another_user(shared_dir: Path) -> None:
    # As root: root's 0755 folder, opened as `nobody`. As any other user: a folder under `/`,
    # which only root may create.
    theirs = shared_dir / "state" if os.geteuid() == 0 else Path("/") / shared_dir.name
    if os.geteuid() == 0:
        StateStore.open(theirs).close()
        os.chmod(theirs, 0o755)
    error = _open_as_other_user(theirs)
    assert f"state dir {theirs} cannot be created or made private" in str(error)
    assert "Operation not permitted" in str(error) or "Permission denied" in str(error)
    assert "set [state] dir" in str(error)


def test_database_file_read_only_or_of_another_user(shared_dir: Path) -> None:
    """SQLite opens a file it may not write read-only, without a word: syncd makes it writable
    first (its own file, mode 0400) or refuses it at once (another user's)."""
    state_dir = shared_dir / "state"
    StateStore.open(state_dir).close()
    state_file = state_dir / STATE_FILE
    os.chmod(state_file, 0o400)
    if os.geteuid() == 0:
        os.chown(state_dir, NOBODY, NOBODY)
        os.chown(state_file, NOBODY, NOBODY)
        with _as_nobody():
            store = StateStore.open(state_dir)  # nobody's own 0400 file: made 0600, writable
            with store.transaction():
                store.set_source("probe", "written")
            store.close()
        os.chown(state_file, 0, 0)  # now root's file in nobody's folder
        error = _open_as_other_user(state_dir)
        assert f"state store {state_file} cannot be made private" in str(error)
        assert "must belong to the user syncd runs as" in str(error)
    else:
        store = StateStore.open(state_dir)
        with store.transaction():
            store.set_source("probe", "written")
        store.close()
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600


# --- SQLite failing in the middle of a pass ------------------------------------------------------


def _sqlite_error(kind: type[sqlite3.Error], message: str, code: int) -> sqlite3.Error:
    """The exception SQLite raises, with its result code (as _sqlite sets it)."""
    error = kind(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (
            _sqlite_error(sqlite3.OperationalError, "database or disk is full", 13),
            "is full; free some space",
        ),
        (
            _sqlite_error(sqlite3.DatabaseError, "database disk image is malformed", 11),
            "is damaged; run `syncd rebuild-state`",
        ),
        (
            _sqlite_error(sqlite3.OperationalError, "attempt to write a readonly database", 8),
            "cannot be written",
        ),
        (
            _sqlite_error(sqlite3.OperationalError, "disk I/O error", 10 | (3 << 8)),
            "I/O error",
        ),
    ],
    ids=["full", "corrupt", "readonly", "ioerr-write"],
)
def test_sqlite_failure_mid_pass_is_exit_7_not_a_traceback(
    cli_setup: CliSetup,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: sqlite3.Error,
    says: str,
) -> None:
    # Injected where a pass records a batch of written pages (after the first files are on disk).
    def failing_save(self: StateStore, pages: object) -> None:
        raise error

    monkeypatch.setattr(StateStore, "save_pages", failing_save)
    code, output = _main(cli_setup, capsys, "--once")
    assert code == 7
    _assert_clear(output, cli_setup.state / STATE_FILE, says)
    assert TOKEN not in output


def test_programming_error_mid_pass_stays_an_internal_error(
    cli_setup: CliSetup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def misuse(self: StateStore, pages: object) -> None:
        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")

    monkeypatch.setattr(StateStore, "save_pages", misuse)
    code, output = _main(cli_setup, capsys, "--once")
    assert code == 1 and "internal error (please report)" in output  # a bug, not the user's store


# --- privacy -------------------------------------------------------------------------------------


def test_state_files_private_whatever_the_umask(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o755)
    os.chmod(state_dir, 0o755)  # made by someone else, world-readable
    old = os.umask(0)
    try:
        harness = _synced_state(tmp_path, books=3)
        files = sorted(state_dir.iterdir())
        assert {p.name for p in files} >= {STATE_FILE, f"{STATE_FILE}-wal", f"{STATE_FILE}-shm"}
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        harness.store.close()
    finally:
        os.umask(old)


def test_token_never_stored_nor_printed(
    cli_setup: CliSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = [
        _main(cli_setup, capsys, "--once", "--dry-run", "-vv"),  # the plan, before any pass
        _main(cli_setup, capsys, "--once", "-vv"),
        _main(cli_setup, capsys, "--once", "--full", "--dry-run", "-vv"),
        _main(cli_setup, capsys, "status"),
        _main(cli_setup, capsys, "status", "--json"),
        _main(cli_setup, capsys, "check"),
    ]
    for code, output in outputs:
        assert code == 0, output
        assert TOKEN not in output
    assert "create   obs:" in outputs[0][1]  # the outputs searched hold what they should
    assert "file.written" in outputs[1][1] and "pages" in outputs[3][1]
    # Every byte syncd keeps: the database (read raw, plus WAL/SHM if any), the lock file.
    kept = b"".join(p.read_bytes() for p in cli_setup.state.rglob("*") if p.is_file())
    assert len(kept) > 50_000
    assert TOKEN.encode() not in kept
    assert TOKEN[4:].encode() not in kept  # nor the key without its prefix
