"""Book <-> compact JSON for the state store's library cache.

The cache keeps the whole merged book (the export only sends what changed), so pages can be
re-rendered from current data. Field names follow the dataclasses, not the API.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Any

from syncd.model import Book, Highlight

_HIGHLIGHT_FIELDS = tuple(f.name for f in fields(Highlight))
_BOOK_FIELDS = tuple(f.name for f in fields(Book) if f.name != "highlights")
_STAMPS = ("highlighted_at", "created_at", "updated_at")


def _highlight_to_dict(highlight: Highlight) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _HIGHLIGHT_FIELDS:
        value = getattr(highlight, name)
        if name in _STAMPS:
            value = value.isoformat() if value is not None else None
        elif name == "tags":
            value = list(value)
        out[name] = value
    return out


def _highlight_from_dict(data: dict[str, Any]) -> Highlight:
    values = dict(data)
    for name in _STAMPS:
        raw = values.get(name)
        values[name] = datetime.fromisoformat(raw) if raw else None
    values["tags"] = tuple(values.get("tags") or ())
    return Highlight(**{k: v for k, v in values.items() if k in _HIGHLIGHT_FIELDS})


def book_to_json(book: Book) -> str:
    data: dict[str, Any] = {name: getattr(book, name) for name in _BOOK_FIELDS}
    data["tags"] = list(book.tags)
    data["highlights"] = [_highlight_to_dict(h) for h in book.highlights]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def book_from_json(text: str) -> Book:
    data = json.loads(text)
    highlights = tuple(_highlight_from_dict(h) for h in data.pop("highlights", []))
    data["tags"] = tuple(data.get("tags") or ())
    return Book(**{k: v for k, v in data.items() if k in _BOOK_FIELDS}, highlights=highlights)
