"""Local ids: stable, and in a range Readwise's ids never reach."""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.sources.local import (
    LOCAL_ID_BASE,
    LocalBook,
    LocalHighlight,
    book_id_for,
    is_local_id,
    local_id,
    match_key,
    origin_of,
    to_book,
)


def test_ids_are_stable_and_above_every_readwise_id() -> None:
    assert local_id("a", "b") == local_id("a", "b") != local_id("a", "c")
    ids = [local_id("highlight", str(n)) for n in range(2000)]
    assert len(set(ids)) == 2000
    assert all(LOCAL_ID_BASE <= i < 2**63 for i in ids)  # an SQLite INTEGER
    assert not is_local_id(2**53)  # the largest id a JavaScript client of Readwise can hold


def test_book_matching_ignores_case_spaces_and_punctuation() -> None:
    assert match_key("The Rise & Fall", "Smith,  John") == match_key(
        "the rise and fall", "smith john"
    )
    assert book_id_for("Dune", "Frank Herbert") == book_id_for("DUNE ", "frank herbert")
    assert book_id_for("Dune", "Frank Herbert") != book_id_for("Dune", "Brian Herbert")


def test_to_book_marks_origin_and_source() -> None:
    local = LocalBook(
        "Dune",
        "Frank Herbert",
        (LocalHighlight("k1", "Fear is the mind-killer.", location=14, location_type="page"),),
    )
    book = to_book(local, kind="koreader", source_name="kobo")
    assert (book.category, book.source) == ("books", "koreader")
    [highlight] = book.highlights
    assert origin_of(highlight) == "kobo" and highlight.book_id == book.id
    assert to_book(local, kind="koreader", source_name="kobo") == book


def test_naive_device_times_become_utc() -> None:
    stamp = datetime(2024, 1, 5, 21, 14, 40)
    local = LocalBook("Dune", "", (LocalHighlight("k", "t", highlighted_at=stamp),))
    [highlight] = to_book(local, kind="koreader", source_name="kobo").highlights
    assert highlight.highlighted_at == stamp.astimezone(UTC)


def test_author_word_order_does_not_matter() -> None:
    assert match_key("Dune", "Herbert, Frank") == match_key("Dune", "Frank Herbert")
