"""Book <-> compact JSON for the state store's library cache.

The cache keeps the whole merged book (the export only sends what changed), so pages can be
re-rendered from current data. A book is stored as rows of field values in the dataclasses'
order (version 2): a first pass encodes and decodes every highlight, and positional rows are
several times faster than a dict per highlight. Version 1 (a dict per highlight, keyed by field
name) is still read, so a cache written by an older syncd needs no migration.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from syncd.model import Book, Highlight

_HIGHLIGHT_FIELDS = tuple(f.name for f in fields(Highlight) if f.init)
_BOOK_FIELDS = tuple(f.name for f in fields(Book) if f.init and f.name != "highlights")
_STAMPS = ("highlighted_at", "created_at", "updated_at")
_STAMP_INDEXES = tuple(_HIGHLIGHT_FIELDS.index(name) for name in _STAMPS)
_TAGS_INDEX = _HIGHLIGHT_FIELDS.index("tags")
_BOOK_TAGS_INDEX = _BOOK_FIELDS.index("tags")
_highlight_values = attrgetter(*_HIGHLIGHT_FIELDS)
_book_values = attrgetter(*_BOOK_FIELDS)
_VERSION = 2


def book_field_index(name: str) -> int:
    """Where a book field sits in a stored row (`$.book[i]`), for SQL that reads one field."""
    return _BOOK_FIELDS.index(name)


def _highlight_row(highlight: Highlight) -> list[Any]:
    row = list(_highlight_values(highlight))
    for index in _STAMP_INDEXES:
        stamp = row[index]
        if stamp is not None:
            row[index] = stamp.isoformat()
    return row  # tags: a tuple, which json writes as a list


def _highlight_from_row(row: list[Any]) -> Highlight:
    for index in _STAMP_INDEXES:
        raw = row[index]
        row[index] = datetime.fromisoformat(raw) if raw else None
    row[_TAGS_INDEX] = tuple(row[_TAGS_INDEX] or ())
    return Highlight(*row)


def book_to_json(book: Book) -> str:
    data = {
        "v": _VERSION,
        "book": _book_values(book),
        "highlights": [_highlight_row(h) for h in book.highlights],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def book_from_json(text: str) -> Book:
    data = json.loads(text)
    if data.get("v") != _VERSION:
        return _book_from_v1(data)
    values = data["book"]
    values[_BOOK_TAGS_INDEX] = tuple(values[_BOOK_TAGS_INDEX] or ())
    highlights = tuple(_highlight_from_row(row) for row in data["highlights"])
    return Book(**dict(zip(_BOOK_FIELDS, values, strict=True)), highlights=highlights)


def _book_from_v1(data: dict[str, Any]) -> Book:
    highlights = tuple(_highlight_from_v1(h) for h in data.pop("highlights", []))
    data["tags"] = tuple(data.get("tags") or ())
    return Book(**{k: v for k, v in data.items() if k in _BOOK_FIELDS}, highlights=highlights)


def _highlight_from_v1(data: dict[str, Any]) -> Highlight:
    values = dict(data)
    for name in _STAMPS:
        raw = values.get(name)
        values[name] = datetime.fromisoformat(raw) if raw else None
    values["tags"] = tuple(values.get("tags") or ())
    return Highlight(**{k: v for k, v in values.items() if k in _HIGHLIGHT_FIELDS})
