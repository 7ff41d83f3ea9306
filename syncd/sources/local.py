"""What the e-reader parsers produce, and the ids that keep it apart from Readwise's.

A parser (kindle_clippings, koreader) turns a device file into `LocalBook`s of
`LocalHighlight`s: plain data with a stable `key` per highlight. `to_book` turns them into the
normalized model (syncd.model.Book/Highlight) the engine renders, with ids from `local_id`.

Id range: Readwise's book and highlight ids are sequential database ids (today below 2**32;
JavaScript clients need them below 2**53). A local id is LOCAL_ID_BASE (2**60) plus 59 bits of a
BLAKE2b hash of what identifies the item, so it stays below 2**63 (an SQLite INTEGER) and can
never meet a Readwise id. Two local items collide only if 59-bit hashes do (about one chance in
10**6 for a million highlights).
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from syncd.errors import LocalSourceError
from syncd.model import LOCAL_ID_BASE, Book, Highlight, is_local_id

__all__ = [
    "LOCAL_ID_BASE",
    "LocalSourceError",
    "is_local_id",
]  # defined in syncd.model, which state.py reads
_HASH_MASK = (1 << 59) - 1
# Marks a highlight's origin in Highlight.external_id: "syncd-local:<source name>:<kind>".
# Readwise never sends an external_id with this prefix.
ORIGIN_PREFIX = "syncd-local:"
READWISE_ORIGIN = "readwise"

LocalKind = Literal["kindle_clippings", "koreader"]
# Book.source as Readwise names the import it came from.
BOOK_SOURCE: dict[str, str] = {"kindle_clippings": "kindle", "koreader": "koreader"}


def local_id(*parts: str) -> int:
    """A stable id in the local range from the parts that identify an item."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return LOCAL_ID_BASE + (int.from_bytes(digest, "big") & _HASH_MASK)


def normalize_text(text: str) -> str:
    """Text as compared across sources: NFC, whitespace runs as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).casefold().replace("&", " and ")
    return "".join(c if c.isalnum() else " " for c in text).split()


def match_key(title: str, author: str) -> str:
    """How a book is matched across sources: case-folded title, whitespace and punctuation
    ignored (`The Rise & Fall` = `the rise and fall`), and the author's words in any order
    (Kindle's `Herbert, Frank` = Readwise's `Frank Herbert`)."""
    return " ".join(_words(title)) + "\x1f" + " ".join(sorted(_words(author)))


@dataclass(frozen=True, slots=True)
class LocalHighlight:
    key: str  # stable within its book: what the highlight id is made from
    text: str
    note: str = ""
    location: int | None = None
    location_type: str = ""  # "location" (Kindle), "page", or "" (none known)
    highlighted_at: datetime | None = None
    color: str = ""
    chapter: str = ""


@dataclass(frozen=True, slots=True)
class LocalBook:
    title: str
    author: str
    highlights: tuple[LocalHighlight, ...] = field(default=())
    # False when the file may lack highlights it had before (Kindle's log is cut or reset by
    # people): nothing missing from it is a deletion. KOReader sidecars are whole: True.
    complete: bool = False


@dataclass(frozen=True, slots=True)
class ParseResult:
    books: tuple[LocalBook, ...]
    entries: int = 0  # entries read (highlights, notes, bookmarks)
    skipped: int = 0  # bookmarks, clipping-limit placeholders, empty entries
    incomplete_tail: bool = False  # the file ended mid-entry (device unplugged while writing)


def origin(source_name: str) -> str:
    return f"{ORIGIN_PREFIX}{source_name}"


def origin_of(highlight: Highlight) -> str:
    """The source a cached highlight came from: a local source's name, or "readwise"."""
    if is_local_id(highlight.id) and highlight.external_id.startswith(ORIGIN_PREFIX):
        return highlight.external_id[len(ORIGIN_PREFIX) :]
    return READWISE_ORIGIN


def book_id_for(title: str, author: str) -> int:
    """A local-only book's id: the same book from two local sources is one book."""
    return local_id("book", match_key(title, author))


def to_highlight(
    local: LocalHighlight, *, book_id: int, source_name: str, in_book: int | None = None
) -> Highlight:
    """The normalized highlight. Its id comes from the source, the device book's own id and
    the key; `in_book` is the book it now belongs to (a Readwise book that adopted it)."""
    return Highlight(
        id=local_id("highlight", source_name, str(book_id), local.key),
        book_id=book_id if in_book is None else in_book,
        text=local.text,
        note=local.note,
        location=local.location,
        location_type=local.location_type,
        color=local.color,
        # Devices write local time without a zone: read it as this machine's.
        highlighted_at=local.highlighted_at.astimezone(UTC) if local.highlighted_at else None,
        external_id=origin(source_name),
    )


def to_book(local: LocalBook, *, kind: LocalKind, source_name: str) -> Book:
    """A local-only book in the normalized model (category "books", as Readwise files them)."""
    book_id = book_id_for(local.title, local.author)
    return Book(
        id=book_id,
        title=local.title,
        author=local.author,
        category="books",
        source=BOOK_SOURCE[kind],
        highlights=tuple(
            to_highlight(h, book_id=book_id, source_name=source_name) for h in local.highlights
        ),
    )
