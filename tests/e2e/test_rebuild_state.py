"""`syncd rebuild-state` through the real CLI and the stand-in server: the state store is lost
(deleted, or damaged so that `--once` refuses it), rebuilt from the vaults, and nothing in them is
duplicated, rewritten or lost; later Readwise changes still flow in."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.lock import StateLock
from syncd.model import Book
from syncd.rebuild import KEPT_MARK, set_aside_state
from syncd.sync.state import STATE_FILE, StateStore
from tests.e2e.conftest import TOKEN, Setup
from tests.e2e.test_merge_e2e import _pick_book
from tests.e2e.test_once import _books

T1 = "2024-03-05T09:15:00+00:00"
T2 = "2024-03-07T18:40:00+00:00"
T3 = "2024-04-01T08:00:00+00:00"
T4 = "2024-04-02T08:00:00+00:00"


def _roots(setup: Setup) -> dict[str, Path]:
    return {"obs": setup.obsidian, "lsq": setup.logseq}


def _snapshot(setup: Setup) -> dict[Path, bytes]:
    """Every note in both vaults (Logseq's own `logseq/` folder aside), byte for byte."""
    out: dict[Path, bytes] = {}
    for root in _roots(setup).values():
        for path in root.rglob("*"):
            if path.is_file() and path.relative_to(root).parts[0] != "logseq":
                out[path] = path.read_bytes()
    return out


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    return result.stdout


def _assert_no_duplicates(setup: Setup, books: dict[int, Book]) -> None:
    """Each live highlight's location link appears at most once in its page (zero: deleted)."""
    checked = 0
    for target, root in _roots(setup).items():
        for book_id, (path, _title, status) in setup.pages(target).items():
            if status != "live":
                continue
            text = (root / path).read_text(encoding="utf-8")
            for highlight in books[book_id].live_highlights():
                if highlight.url:
                    assert text.count(f"({highlight.url})") <= 1, (path, highlight.id)
                    checked += 1
    assert checked > 100  # the check looked at the library, not at nothing


def _edit_notes(setup: Setup, book: Book) -> dict[str, str]:
    """The user rewords one highlight and adds a line of their own, in both targets; returns
    the words that must survive, per target."""
    reworded = book.live_highlights()[0].text.strip()
    kept: dict[str, str] = {}
    for target, root in _roots(setup).items():
        path = root / setup.pages(target)[book.id][0]
        text = path.read_text(encoding="utf-8")
        assert reworded in text
        own = "My own paragraph, keep it." if target == "obs" else "- my own block, keep it"
        text = text.replace(reworded, reworded + " (my rewording)")
        path.write_text(text.rstrip("\n") + "\n\n" + own + "\n", encoding="utf-8")
        kept[target] = own
    return kept


@pytest.mark.parametrize("loss", ["deleted", "damaged"])
def test_rebuild_adopts_every_page_without_duplicates(setup: Setup, loss: str) -> None:
    _ok(setup.run("--once", now=T1))
    books = _books(setup)
    edited = _pick_book(books)
    grown = next(
        b
        for b in sorted(books.values(), key=lambda b: b.id)
        if b.id != edited.id and b.live_highlights()
    )
    # A page with a second section ("New highlights added"), so not every page is a first render.
    second_day = setup.library.add_highlight(
        grown.id, text="Added upstream on the second day", location=900_001
    )
    _ok(setup.run("--once", now=T2))
    own_lines = _edit_notes(setup, edited)
    before = _snapshot(setup)
    state_file = setup.state / STATE_FILE

    if loss == "deleted":
        shutil.rmtree(setup.state)
    else:
        damage = os.urandom(4096) * 4
        state_file.write_bytes(damage)
        refused = setup.run("--once", now=T3)
        assert refused.returncode == 7, refused.stderr
        assert str(state_file) in refused.stderr and "syncd rebuild-state" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert _snapshot(setup) == before

    out = _ok(setup.run("rebuild-state", now=T3))
    if loss == "deleted":
        assert f"no state store at {state_file}" in out
    else:
        # The old database is kept untouched (with the empty WAL and SHM files the refused
        # open left beside it, under the same new name).
        kept = [p for p in setup.state.iterdir() if p.name.startswith(STATE_FILE + KEPT_MARK)]
        main = [p for p in kept if not p.name.endswith(("-wal", "-shm"))]
        assert [p.read_bytes() for p in main] == [damage]
        assert {p.name.removeprefix(main[0].name) for p in kept} <= {"", "-wal", "-shm"}
        assert not [p for p in setup.state.iterdir() if p.name.startswith(STATE_FILE + "-")]
        assert f"moved aside to {main[0]}" in out
    for target in ("obs", "lsq"):
        assert f"syncd: {target}: {len(setup.pages(target))} pages recognised" in out
        assert "0 created, 0 updated, 0 highlights added" in out.split(f"syncd: {target}:")[1]
    assert _snapshot(setup) == before  # no file written: every page was recognised as it is

    # The rebuilt state knows every page: the next pass has nothing to do.
    again = _ok(setup.run("--once", now=T3))
    assert "obs: 0 created, 0 updated" in again and "lsq: 0 created, 0 updated" in again
    assert _snapshot(setup) == before

    # Readwise changes after the rebuild still arrive, beside the user's edits.
    setup.library.add_highlight(edited.id, text="Arrived after the rebuild", location=900_002)
    setup.library.edit_highlight(second_day, text="Corrected after the rebuild")
    _ok(setup.run("--once", now=T4))
    books = _books(setup)
    for target, root in _roots(setup).items():
        pages = setup.pages(target)
        mine = (root / pages[edited.id][0]).read_text(encoding="utf-8")
        assert mine.count("(my rewording)") == 1 and mine.count(own_lines[target]) == 1
        assert mine.count("Arrived after the rebuild") == 1
        theirs = (root / pages[grown.id][0]).read_text(encoding="utf-8")
        assert theirs.count("Corrected after the rebuild") == 1
        assert "Added upstream on the second day" not in theirs
    _assert_no_duplicates(setup, books)
    settled = _ok(setup.run("--once", now=T4))
    assert "obs: 0 created, 0 updated" in settled and "lsq: 0 created, 0 updated" in settled


def test_rebuild_refuses_while_another_syncd_runs(setup: Setup) -> None:
    _ok(setup.run("--once", now=T1))
    state_file = setup.state / STATE_FILE
    original = state_file.read_bytes()
    with StateLock(setup.state):
        result = setup.run("rebuild-state", now=T3)
    assert result.returncode == 6
    assert f"PID {os.getpid()}" in result.stderr
    assert state_file.read_bytes() == original
    assert not [p for p in setup.state.iterdir() if KEPT_MARK in p.name]


# --- setting the old store aside (in process) ----------------------------------------------------

NOW = datetime(2024, 4, 1, 8, 0, tzinfo=UTC)


def test_set_aside_moves_the_wal_along_so_the_kept_copy_is_whole(tmp_path: Path) -> None:
    live = StateStore.open(tmp_path)
    with live.transaction():
        live.set_source("only_in_the_wal", "yes")  # committed, not yet checkpointed
    assert (tmp_path / f"{STATE_FILE}-wal").stat().st_size > 0
    # As a killed syncd leaves it: the WAL is never checkpointed into the database file.
    names = [p.name for p in tmp_path.iterdir() if p.name.startswith(STATE_FILE)]
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in names:
        shutil.copy(tmp_path / name, copy / name)
    live.close()

    aside = set_aside_state(copy, now=NOW)
    kept = copy / f"{STATE_FILE}{KEPT_MARK}20240401T080000Z"
    assert aside.kept_as == kept
    assert {new.name for _old, new in aside.moved} == {
        kept.name + suffix for suffix in ("", "-wal", "-shm") if STATE_FILE + suffix in names
    }
    assert not [p for p in copy.iterdir() if p.name.startswith(STATE_FILE + "-")]
    db = sqlite3.connect(kept)
    try:
        assert db.execute("SELECT value FROM source WHERE key='only_in_the_wal'").fetchone() == (
            "yes",
        )
    finally:
        db.close()
    fresh = StateStore.open(copy)  # a new, empty store: nothing of the old WAL replayed into it
    assert fresh.get_source("only_in_the_wal") is None
    fresh.close()


def test_set_aside_twice_in_a_second_keeps_both(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    first = set_aside_state(tmp_path, now=NOW)
    StateStore.open(tmp_path).close()
    second = set_aside_state(tmp_path, now=NOW)
    assert first.kept_as is not None and second.kept_as is not None
    assert second.kept_as.name == first.kept_as.name + "-2"
    assert first.kept_as.exists() and second.kept_as.exists()
    nothing = set_aside_state(tmp_path, now=NOW)
    assert nothing.moved == () and "no state store" in nothing.describe()
