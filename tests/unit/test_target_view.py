"""What a target sees of a cached book: its sources, and a passage two sources share once."""

from __future__ import annotations

from dataclasses import replace

from syncd.model import Book, Highlight
from syncd.sources.local import local_id, origin
from syncd.sources.target_view import target_view
from syncd.sync.merge import BlockRecord
from syncd.sync.state import PageRow

KINDLE_ID = local_id("highlight", "kindle", "1", "k")
READWISE = Highlight(id=7, book_id=42, text="Fear is  the mind-killer.")
KINDLE = Highlight(
    id=KINDLE_ID, book_id=42, text="Fear is the mind-killer.", external_id=origin("kindle")
)
OTHER = Highlight(id=8, book_id=42, text="Only in Readwise.")
BOOK = Book(id=42, title="Dune", highlights=(READWISE, KINDLE, OTHER))


def _page(blocks: tuple[int, ...] = (), tombstones: frozenset[int] = frozenset()) -> PageRow:
    return PageRow(
        "obs",
        42,
        "Dune.md",
        "Dune",
        "live",
        False,
        (),
        "",
        "",
        1,
        {hid: BlockRecord("- x\n", "r") for hid in blocks},
        tombstones,
    )


def _ids(book: Book) -> list[int]:
    return sorted(h.id for h in book.live_highlights())


def test_a_new_page_shows_readwise_s_copy() -> None:
    assert _ids(target_view(BOOK, None, None)) == [7, 8]


def test_the_copy_already_on_the_page_stays() -> None:
    assert _ids(target_view(BOOK, None, _page(blocks=(KINDLE_ID, 8)))) == [8, KINDLE_ID]


def test_a_passage_the_user_deleted_stays_deleted_whoever_brings_it() -> None:
    view = target_view(BOOK, None, _page(blocks=(8,), tombstones=frozenset({KINDLE_ID})))
    assert _ids(view) == [8, KINDLE_ID]  # the deleted copy stays the one; the merge hides it


def test_a_copy_deleted_upstream_gives_way_to_the_other() -> None:
    gone = replace(KINDLE, is_deleted=True)
    book = BOOK.with_highlights((READWISE, gone, OTHER))
    assert _ids(target_view(book, None, _page(blocks=(KINDLE_ID, 8)))) == [7, 8]


def test_one_origin_s_own_duplicates_are_all_kept() -> None:
    twice = BOOK.with_highlights((READWISE, replace(READWISE, id=9), OTHER))
    assert _ids(target_view(twice, None, None)) == [7, 8, 9]


def test_a_target_sees_only_its_sources() -> None:
    assert _ids(target_view(BOOK, frozenset({"kindle"}), None)) == [KINDLE_ID]
    assert _ids(target_view(BOOK, frozenset({"readwise"}), None)) == [7, 8]
    assert target_view(BOOK, frozenset({"readwise", "kindle"}), None).highlights != ()
