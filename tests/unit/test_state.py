from __future__ import annotations

import json
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.adapters.base import Section
from syncd.errors import StateError
from syncd.model import Book, Highlight
from syncd.sync.apply import recover_intents
from syncd.sync.merge import BlockRecord
from syncd.sync.state import (
    MIGRATIONS,
    PAGE_LIVE,
    PageRow,
    StateStore,
    blocks_from_json,
    blocks_to_json,
    text_hash,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _book(book_id: int, *highlights: Highlight, title: str = "T") -> Book:
    return Book(id=book_id, title=title, highlights=tuple(highlights))


def _hl(hid: int, text: str = "x", **kw: object) -> Highlight:
    return Highlight(id=hid, book_id=1, text=text, **kw)  # type: ignore[arg-type]


def test_files_are_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    StateStore.open(state_dir).close()
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "state.sqlite3").stat().st_mode) == 0o600


def test_migrations_recorded_once(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    store = StateStore.open(tmp_path)
    names = [r[0] for r in store._db.execute("SELECT name FROM schema_migrations")]
    assert names == [name for name, _ in MIGRATIONS]  # each once, in order
    store.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    db.execute("INSERT INTO schema_migrations VALUES ('999_future', 'now')")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer syncd") as info:
        StateStore.open(tmp_path)
    assert info.value.exit_code == 7


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.sqlite3").write_bytes(b"this is not a database" * 200)
    with pytest.raises(StateError, match="damaged"):
        StateStore.open(tmp_path)


def test_incremental_merge_upserts_highlights(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    with store.transaction():
        assert store.merge_book(_book(1, _hl(1, "a"), _hl(2, "b")), rev=1, full=True)
    with store.transaction():
        changed = store.merge_book(_book(1, _hl(2, "b2"), _hl(3, "c")), rev=2, full=False)
    assert changed
    book = store.load_book(1)
    assert book is not None
    assert {h.id: h.text for h in book.highlights} == {1: "a", 2: "b2", 3: "c"}
    with store.transaction():
        assert not store.merge_book(_book(1, _hl(3, "c")), rev=3, full=False)
    assert store.books_to_render("t") == [(1, 2)]


def test_full_merge_marks_missing_highlights_deleted(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    with store.transaction():
        store.merge_book(_book(1, _hl(1), _hl(2)), rev=1, full=True)
        store.merge_book(_book(1, _hl(2)), rev=2, full=True)
    book = store.load_book(1)
    assert book is not None
    assert {h.id: h.is_deleted for h in book.highlights} == {1: True, 2: False}


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    with pytest.raises(RuntimeError), store.transaction():
        store.merge_book(_book(1, _hl(1)), rev=1, full=True)
        raise RuntimeError("boom")
    assert store.load_book(1) is None


def _row(text: str, path: str = "a.md") -> PageRow:
    return PageRow(
        "t",
        1,
        path,
        "A",
        PAGE_LIVE,
        False,
        (Section("first", NOW, (1,)),),
        text,
        text_hash(text),
        5,
    )


def test_intent_finalized_when_file_holds_it(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    store.record_intents([_row("new text")])
    files = {"a.md": "new text"}
    assert recover_intents(store, "t", files.get) == (1, 0)
    page = store.page("t", 1)
    assert page is not None and page.written_text == "new text" and page.rendered_rev == 5
    assert store.pending_intents("t") == []


def test_intent_dropped_when_file_never_written(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    store.save_pages([_row("old")])
    store.record_intents([_row("new")])
    assert recover_intents(store, "t", {"a.md": "old"}.get) == (0, 1)
    page = store.page("t", 1)
    assert page is not None and page.written_text == "old"
    # A placeholder for a page that was never written disappears entirely.
    store.record_intents(
        [PageRow("t", 2, "b.md", "B", PAGE_LIVE, False, (), "b", text_hash("b"), 1)]
    )
    assert recover_intents(store, "t", {}.get) == (0, 1)
    assert store.page("t", 2) is None


def test_observe_flags_user_edits_but_not_our_own_text(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    store.save_pages([_row("ours")])
    assert not store.observe("t", 1, mtime_ns=1, size=4, seen_hash=text_hash("ours"))
    page = store.page("t", 1)
    assert page is not None and not page.user_modified
    assert store.observe("t", 1, mtime_ns=2, size=6, seen_hash=text_hash("theirs"))
    page = store.page("t", 1)
    assert page is not None and page.user_modified
    assert store.observation("t", 1) == (2, 6, text_hash("theirs"))
    store.move_page("t", 1, "moved/a.md")
    assert store.live_page_at("t", "moved/a.md") is not None


def test_block_records_stored_as_slices_of_the_written_text_round_trip() -> None:
    written = "head\n- one\n- two\n- one\n- last"
    blocks = {
        1: BlockRecord("- one\n", "r1"),
        2: BlockRecord("- two\n", "r2"),
        3: BlockRecord("- one\n", "r3"),  # the same text again: found after the first
        4: BlockRecord("- last\n", "r4"),  # not in the text as is (no final newline)
        5: BlockRecord("- moved\n", "r5"),  # the user's text, kept as a record of its own
    }
    encoded = blocks_to_json(blocks, written)
    stored = json.loads(encoded)
    assert stored["1"] == [5, 11, "r1"] and stored["3"] == [17, 23, "r3"]
    assert stored["4"] == ["- last\n", "r4"] and stored["5"] == ["- moved\n", "r5"]
    assert blocks_from_json(encoded, written) == blocks
    # Rows written before the slices (text inline) still read, with or without a text.
    old = '{"7": ["- seven\\n", "r7"]}'
    assert blocks_from_json(old, None) == {7: BlockRecord("- seven\n", "r7")}
    assert blocks_to_json(blocks, None) == json.dumps(
        {str(k): [v.text, v.render] for k, v in blocks.items()}, ensure_ascii=False
    )
    with pytest.raises(ValueError, match="block 1"):
        blocks_from_json(encoded, None)


def test_block_records_out_of_order_still_round_trip() -> None:
    written = "".join(f"- block {n}\n" for n in range(40))
    blocks = {n: BlockRecord(f"- block {n}\n", f"r{n}") for n in reversed(range(40))}
    assert blocks_from_json(blocks_to_json(blocks, written), written) == blocks


def test_a_new_store_uses_big_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    StateStore.open(tmp_path / "new").close()
    with sqlite3.connect(tmp_path / "new" / "state.sqlite3") as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 16384
    old = tmp_path / "old"
    old.mkdir(mode=0o700)
    with sqlite3.connect(old / "state.sqlite3") as db:  # a store an earlier syncd made
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    (old / "state.sqlite3").chmod(0o600)
    store = StateStore.open(old)
    try:
        store.merge_book(_book(1, _hl(1, "kept")), rev=1, full=True)
        assert store.load_book(1) == _book(1, _hl(1, "kept"))
    finally:
        store.close()
    with sqlite3.connect(old / "state.sqlite3") as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
