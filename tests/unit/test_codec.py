"""The library cache's book encoding: lossless, and the older form is still read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from syncd.model import Book, Highlight
from syncd.sync.codec import book_from_json, book_to_json

_BOOK = Book(
    id=7,
    title="Title",
    author="Ann",
    readable_title="Tidy",
    category="podcasts",
    tags=("a", "b c"),
    asin="B00X",
    is_deleted=False,
    highlights=(
        Highlight(
            id=1,
            book_id=7,
            text="one\nline two",
            note="n",
            location=12,
            location_type="time_offset",
            highlighted_at=datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            created_at=None,
            updated_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            tags=("x",),
            is_discard=True,
        ),
        Highlight(id=2, book_id=7, text="é 🙂", is_deleted=True),
    ),
)


def test_a_book_survives_the_round_trip() -> None:
    again = book_from_json(book_to_json(_BOOK))
    assert again == _BOOK
    assert again.highlights[0].updated_at == _BOOK.highlights[0].updated_at
    assert again.live_highlights() == []  # both highlights are gone upstream


def test_the_round_trip_does_not_depend_on_a_cached_reading_order() -> None:
    assert [h.id for h in _BOOK.live_highlights()] == []
    assert book_from_json(book_to_json(_BOOK)) == _BOOK


def test_the_version_1_form_is_still_read() -> None:
    # What syncd 0.1 wrote: one dict per highlight, keyed by field name.
    v1 = {
        "id": 7, "title": "Title", "author": "Ann", "readable_title": "Tidy",
        "category": "podcasts", "source": "", "cover_image_url": "", "unique_url": "",
        "source_url": "", "readwise_url": "", "document_note": "", "summary": "",
        "external_id": "", "asin": "B00X", "tags": ["a", "b c"], "is_deleted": False,
        "highlights": [
            {
                "id": 1, "book_id": 7, "text": "one\nline two", "note": "n", "location": 12,
                "location_type": "time_offset", "color": "", "url": "",
                "highlighted_at": "2024-01-02T03:04:05.678000+00:00", "created_at": None,
                "updated_at": "2024-01-02T03:04:05+02:00", "tags": ["x"],
                "is_favorite": False, "is_discard": True, "is_deleted": False,
                "external_id": "", "readwise_url": "",
            },
            {"id": 2, "book_id": 7, "text": "é 🙂", "is_deleted": True},
        ],
    }  # fmt: skip
    assert book_from_json(json.dumps(v1)) == _BOOK
