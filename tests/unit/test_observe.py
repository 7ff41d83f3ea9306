"""VaultObserver on its own (no daemon, no watcher): what the user did to the pages syncd keeps
is recorded in the state store, and syncd's own writes are never taken for the user's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.adapters.base import Section
from syncd.observe import TargetPlace, VaultObserver
from syncd.sync.state import PAGE_DELETED_BY_USER, PAGE_LIVE, PageRow, StateStore, text_hash
from syncd.watch import OwnWrites, PathChanged

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _row(book_id: int, path: str, text: str) -> PageRow:
    return PageRow(
        "t", book_id, path, f"B{book_id}", PAGE_LIVE, False,
        (Section("first", NOW, (book_id,)),), text, text_hash(text), 1,
    )  # fmt: skip


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    (root / "Readwise").mkdir(parents=True)
    for book_id in (1, 2, 3):
        (root / "Readwise" / f"b{book_id}.md").write_text(f"- page {book_id}\n", encoding="utf-8")
    return root


@pytest.fixture
def store(tmp_path: Path, vault: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state")
    opened.save_pages(
        _row(book_id, f"Readwise/b{book_id}.md", f"- page {book_id}\n") for book_id in (1, 2, 3)
    )
    yield opened
    opened.close()


def _observer(store: StateStore, vault: Path, own: OwnWrites | None = None) -> VaultObserver:
    place = TargetPlace(vault=vault, notes=vault)
    return VaultObserver(
        store,
        own if own is not None else OwnWrites(),
        lambda name: place if name == "t" else None,
        should_stop=lambda: False,
    )


def test_scan_records_an_edit_a_move_and_a_deletion(store: StateStore, vault: Path) -> None:
    (vault / "Readwise" / "b1.md").write_text("- page 1\n- mine\n", encoding="utf-8")
    (vault / "Moved").mkdir()
    (vault / "Readwise" / "b2.md").rename(vault / "Moved" / "b2.md")
    (vault / "Readwise" / "b3.md").unlink()

    _observer(store, vault).scan("t", reason="start-up")

    edited, moved, deleted = store.page("t", 1), store.page("t", 2), store.page("t", 3)
    assert edited is not None and edited.user_modified
    assert moved is not None and moved.path == "Moved/b2.md" and moved.status == PAGE_LIVE
    assert deleted is not None and deleted.status == PAGE_DELETED_BY_USER


def test_a_watcher_event_for_syncd_s_own_write_is_no_user_edit(
    store: StateStore, vault: Path
) -> None:
    own = OwnWrites()
    new_text = "- page 1\n- new from Readwise\n"
    own.expect("t", "Readwise/b1.md", text_hash(new_text))
    (vault / "Readwise" / "b1.md").write_text(new_text, encoding="utf-8")

    _observer(store, vault, own).apply_changes("t", [PathChanged("t", "Readwise/b1.md")])

    page = store.page("t", 1)
    assert page is not None and not page.user_modified


def test_an_unknown_target_is_left_alone(store: StateStore, vault: Path) -> None:
    (vault / "Readwise" / "b3.md").unlink()
    _observer(store, vault).scan("other", reason="start-up")
    page = store.page("t", 3)
    assert page is not None and page.status == PAGE_LIVE


def test_a_scan_parses_the_rows_of_changed_files_only(
    store: StateStore, vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up compares stats with the state; no whole page row (written text, blocks) is
    parsed for a file that is there, changed or not (issue 14: a lean, quick start-up)."""
    _observer(store, vault).scan("t", reason="start-up")  # records what each file looks like now
    (vault / "Readwise" / "b2.md").write_text("- page 2\n- mine\n", encoding="utf-8")
    parsed: list[int] = []
    page_of = store.page

    def counting_page(target: str, book_id: int) -> PageRow | None:
        parsed.append(book_id)
        return page_of(target, book_id)

    monkeypatch.setattr(store, "page", counting_page)
    monkeypatch.setattr(store, "pages", lambda target: pytest.fail("every row parsed"))

    _observer(store, vault).scan("t", reason="start-up")

    assert parsed == []
    edited = page_of("t", 2)
    assert edited is not None and edited.user_modified


def test_a_scan_records_every_changed_file_in_one_transaction(
    store: StateStore, vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first start after `syncd --once` finds every page unseen: one commit (one fsync)
    for all of them, not one each; syncd's own write is still no user edit."""
    own = OwnWrites()
    ours = "- page 1\n- new from Readwise\n"
    own.expect("t", "Readwise/b1.md", text_hash(ours))
    (vault / "Readwise" / "b1.md").write_text(ours, encoding="utf-8")
    (vault / "Readwise" / "b2.md").write_text("- page 2\n- mine\n", encoding="utf-8")
    transactions = 0
    transaction = store.transaction

    def counting_transaction() -> object:
        nonlocal transactions
        transactions += 1
        return transaction()

    monkeypatch.setattr(store, "transaction", counting_transaction)

    _observer(store, vault, own).scan("t", reason="start-up")

    assert transactions == 1
    ours_row, edited, untouched = store.page("t", 1), store.page("t", 2), store.page("t", 3)
    assert ours_row is not None and not ours_row.user_modified
    assert edited is not None and edited.user_modified
    assert untouched is not None and not untouched.user_modified
    assert store.observation("t", 3)[1] == len("- page 3\n")  # unseen before: recorded too


def test_a_folder_event_finds_a_page_renamed_before_its_watch_was_there(
    store: StateStore, vault: Path
) -> None:
    """The watcher reports a new folder (is_dir) after adding its watch; a page renamed in it
    before then had no event of its own: it is found by its content and followed."""
    _observer(store, vault).scan("t", reason="start-up")
    renamed = vault / "Readwise" / "Renamed in Obsidian.md"
    (vault / "Readwise" / "b1.md").rename(renamed)

    _observer(store, vault).apply_changes("t", [PathChanged("t", "Readwise", is_dir=True)])

    page = store.page("t", 1)
    assert page is not None and page.path == "Readwise/Renamed in Obsidian.md"
    assert page.status == PAGE_LIVE
    others = [store.page("t", book_id) for book_id in (2, 3)]
    assert all(p is not None and p.status == PAGE_LIVE for p in others)  # there: untouched
