"""What a small pass and the watcher read (issue 14): a pass of edits to existing pages never
lists every page path, and a file event reads no whole page row, so neither leaves
library-sized garbage behind in a daemon that has just given its memory back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from syncd.observe import TargetPlace, VaultObserver
from syncd.sync.state import PAGE_PENDING, StateStore, text_hash
from syncd.watch import OwnWrites, PathChanged
from tests.harness import Harness
from tests.unit.test_observe import _row


def _library(h: Harness) -> list[int]:
    highlight_ids = []
    for book_id in (1, 2, 3):
        h.source.add_book(book_id, f"Book {book_id}", [f"Passage {book_id}.{n}" for n in range(3)])
        highlight_ids.append(h.source.books[book_id].highlights[0].id)
    return highlight_ids


@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_a_pass_of_edits_to_existing_pages_never_lists_every_page(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(tmp_path, fmt)  # type: ignore[arg-type]
    first_ids = _library(h)
    assert h.sync().created == 3
    h.source.edit(first_ids[1], text="Passage 2.0, corrected upstream")
    monkeypatch.setattr(
        h.store, "page_paths", lambda *a, **k: pytest.fail("every page path listed")
    )

    summary = h.sync()

    assert summary.updated == 1
    page = next(p for p in h.store.pages("t") if p.book_id == 2)
    assert "Passage 2.0, corrected upstream" in (h.vault / page.path).read_text("utf-8")


@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_a_new_book_still_gets_a_name_no_other_page_has(tmp_path: Path, fmt: str) -> None:
    """The page paths are read when a page must be named: a book whose title only differs
    in case from an existing page's still gets a file of its own."""
    h = Harness(tmp_path, fmt)  # type: ignore[arg-type]
    h.source.add_book(1, "Same Title", ["One"])
    h.sync()
    h.source.add_book(2, "SAME TITLE", ["Two"])

    assert h.sync().created == 1

    paths = sorted(p.path.lower() for p in h.store.pages("t"))
    assert len(set(paths)) == 2


def test_page_folders_and_has_pages(tmp_path: Path) -> None:
    h = Harness(tmp_path, "obsidian")
    assert h.store.has_pages("t") is False
    assert h.store.page_folders("t") == []
    _library(h)
    h.sync()
    assert h.store.has_pages("t") is True
    folders = {p.path.rpartition("/")[0] for p in h.store.pages("t")}
    assert h.store.page_folders("t") == sorted(folders)
    assert h.store.has_pages("other") is False


def test_page_folders_of_root_and_nested_paths(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state")
    try:
        store.save_pages(
            [
                _row(1, "top.md", "a"),
                _row(2, "Readwise/Books/b.md", "b"),
                _row(3, "Readwise/Books/c.md", "c"),
                _row(4, "Readwise/Articles.d/x.md", "d"),
            ]
        )
        assert store.page_folders("t") == ["", "Readwise/Articles.d", "Readwise/Books"]
    finally:
        store.close()


def test_live_page_at_and_path_taken(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state")
    try:
        store.save_pages(
            [
                _row(1, "a.md", "text a"),
                replace(_row(2, "b.md", "text b"), status=PAGE_PENDING),
                replace(_row(3, "c.md", "text c"), status="deleted_by_user"),
            ]
        )
        live = store.live_page_at("t", "a.md")
        assert live is not None
        assert (live.book_id, live.path, live.written_hash) == (1, "a.md", text_hash("text a"))
        assert store.live_page_at("t", "b.md") is None  # a placeholder is no live page
        assert store.live_page_at("t", "c.md") is None
        assert store.live_page_at("t", "nowhere.md") is None
        assert store.live_page_at("other", "a.md") is None
        assert store.path_taken("t", "a.md") and store.path_taken("t", "c.md")
        assert not store.path_taken("t", "b.md")  # a killed pass's placeholder takes nothing
        assert not store.path_taken("t", "nowhere.md")
    finally:
        store.close()


def test_a_file_event_reads_no_whole_page_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "a.md").write_text("- page a\n", encoding="utf-8")
    (vault / "b.md").write_text("- page b\n", encoding="utf-8")
    store = StateStore.open(tmp_path / "state")
    try:
        store.save_pages([_row(1, "a.md", "- page a\n"), _row(2, "b.md", "- page b\n")])
        place = TargetPlace(vault=vault, notes=vault)
        observer = VaultObserver(store, OwnWrites(), lambda name: place, should_stop=lambda: False)
        (vault / "a.md").write_text("- page a\n- mine\n", encoding="utf-8")
        (vault / "b.md").rename(vault / "moved.md")
        for name in ("page", "pages"):
            monkeypatch.setattr(store, name, lambda *a, n=name: pytest.fail(f"{n} parsed"))

        observer.apply_changes(
            "t", [PathChanged("t", "a.md"), PathChanged("t", "moved.md", moved_from="b.md")]
        )

        monkeypatch.undo()
        edited, moved = store.page("t", 1), store.page("t", 2)
        assert edited is not None and edited.user_modified
        assert moved is not None and moved.path == "moved.md"
    finally:
        store.close()
