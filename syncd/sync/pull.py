"""Pull the export into the state store's library cache, and advance the watermark.

The whole pull runs in one transaction: either every page is folded into the cache together with
the new watermark, or (on any failure, or a kill -9) nothing is, and the next pass repeats it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from syncd.model import Book, format_timestamp, parse_timestamp
from syncd.sync.state import StateStore


class ExportPageLike(Protocol):
    @property
    def books(self) -> Sequence[Book]: ...


class ExportSource(Protocol):
    """What the engine needs of a Readwise client (sources/readwise.py implements it)."""

    def check_token(self) -> None: ...

    def export_pages(
        self,
        *,
        updated_after: datetime | None,
        include_deleted: bool = True,
        ids: Sequence[int] | None = None,
    ) -> Iterator[ExportPageLike]: ...


@dataclass(frozen=True, slots=True)
class PullResult:
    pages: int
    books_seen: int
    books_changed: int
    highlights_seen: int
    full: bool
    rev: int


def pulls_everything(store: StateStore, *, base_url: str, full: bool = False) -> bool:
    """Whether the next pull is a full export (asked for, the first, or another account's)."""
    if full or store.get_source("watermark") is None:
        return True
    return store.get_source("base_url") != base_url  # the cache says nothing about this one


def pull(
    store: StateStore,
    source: ExportSource,
    *,
    base_url: str,
    overlap: timedelta,
    now: Callable[[], datetime],
    full: bool = False,
    on_page: Callable[[int, int], None] | None = None,
) -> PullResult:
    """Fold every export page since the watermark into the cache. Caller owns the transaction."""
    started = now()
    full = pulls_everything(store, base_url=base_url, full=full)
    watermark_text = store.get_source("watermark")
    watermark = None if full or watermark_text is None else parse_timestamp(watermark_text)
    rev = store.next_rev()
    pages = books_seen = books_changed = highlights_seen = 0
    # A book may be split across pages: only its first part replaces the cached copy.
    replaced: set[int] = set()
    for page in source.export_pages(
        updated_after=None if full else watermark - overlap if watermark else None,
        include_deleted=True,
    ):
        pages += 1
        for book in page.books:
            books_seen += 1
            highlights_seen += len(book.highlights)
            first_part = full and book.id not in replaced
            replaced.add(book.id)
            if store.merge_book(book, rev=rev, full=first_part):
                books_changed += 1
        if on_page is not None:
            on_page(books_seen, highlights_seen)
    store.set_source("watermark", format_timestamp(started))
    store.set_source("base_url", base_url)
    if full:
        store.set_source("last_full_pull", format_timestamp(started))
    return PullResult(
        pages=pages,
        books_seen=books_seen,
        books_changed=books_changed,
        highlights_seen=highlights_seen,
        full=full,
        rev=rev,
    )
