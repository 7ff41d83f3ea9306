"""Fold one device source's books into the state store's library cache, beside Readwise's.

The cache is what every target renders from, so a device highlight goes through the same merge
table as a Readwise one: a changed text or note is an upstream edit, a highlight gone from a
complete file (a KOReader sidecar) an upstream delete (`is_deleted`, as the export says it).

One page per book: a device book whose title and author match a cached Readwise book (see
`local.match_key`; the Readwise title or its tidied `readable_title`) is folded into that book
(a passage both have is shown once by syncd.sources.target_view). Otherwise the book is a
device-only book with a local id; if Readwise gets it later, it is adopted (page included).
Each highlight remembers its source (`local.origin`), so a source only ever changes or deletes
its own highlights, and a target can leave a source out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from syncd.log import get_logger
from syncd.model import Book, Highlight, is_local_id
from syncd.sources.local import (
    BOOK_SOURCE,
    LocalBook,
    LocalKind,
    book_id_for,
    match_key,
    origin_of,
    to_highlight,
)
from syncd.sync.state import StateStore

log = get_logger("syncd.sources")


@dataclass(frozen=True, slots=True)
class FoldResult:
    books: int
    highlights: int
    books_changed: int


@dataclass(slots=True)
class CacheIndex:
    """What a fold needs to know of the cache without decoding any book."""

    readwise: dict[str, int]  # match key -> cached Readwise book id (title or readable title)
    revs: dict[int, int]  # book id -> rev


def cache_index(store: StateStore) -> CacheIndex:
    readwise: dict[str, int] = {}
    revs: dict[int, int] = {}
    for book_id, title, readable_title, author, rev in store.book_identities():
        revs[book_id] = rev
        if is_local_id(book_id):
            continue
        for name in (title, readable_title):
            if name:
                readwise.setdefault(match_key(name, author), book_id)
    return CacheIndex(readwise, revs)


def fingerprint(parts: Sequence[tuple[int, LocalBook]], complete: bool) -> str:
    """What a source said about a book (its files, each with its device book id), in a few
    bytes: equal means nothing to fold. Taken before any highlight is converted."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(complete).encode())
    for own_id, local in parts:
        digest.update(repr(own_id).encode())
        for h in local.highlights:
            digest.update(
                repr(
                    (h.key, h.text, h.note, h.location, h.location_type, h.color, h.highlighted_at)
                ).encode()
            )
    return digest.hexdigest()


def _fold_highlights(
    cached: Sequence[Highlight],
    incoming: Iterable[Highlight],
    *,
    source_name: str,
    complete: bool,
) -> list[Highlight]:
    """What to upsert for this source: its highlights and, when the file is the whole truth,
    its earlier highlights now gone, marked deleted. A passage another origin has too is kept
    here: each target shows one copy (syncd.sources.target_view)."""
    mine_before = {h.id: h for h in cached if origin_of(h) == source_name}
    upsert: list[Highlight] = []
    seen: set[int] = set()
    for highlight in incoming:
        seen.add(highlight.id)
        before = mine_before.get(highlight.id)
        if before is not None:
            # Fields a device does not know (tags, a favourite, Readwise's own) stay as cached.
            highlight = _with_device_fields(before, highlight)
        upsert.append(highlight)
    for highlight_id, before in mine_before.items():
        if complete and highlight_id not in seen and not before.is_deleted:
            upsert.append(replace(before, is_deleted=True))
    return upsert


def _with_device_fields(before: Highlight, read: Highlight) -> Highlight:
    return replace(
        before,
        text=read.text,
        note=read.note,
        location=read.location,
        location_type=read.location_type,
        color=read.color,
        highlighted_at=read.highlighted_at,
        is_deleted=False,
    )


def _adopt_device_book(
    store: StateStore, own_id: int, readwise_id: int, *, rev: int, index: CacheIndex
) -> None:
    """The device book `own_id` is in Readwise now: its highlights (from every device) join
    Readwise's book, its pages become that book's, and the device book is gone."""
    device_book = store.load_book(own_id)
    readwise_book = store.load_book(readwise_id)
    if device_book is None or readwise_book is None:
        return
    moved = [replace(h, book_id=readwise_id) for h in device_book.highlights]
    store.merge_book(readwise_book.with_highlights(moved), rev=rev, full=False)
    pages = store.rekey_book(own_id, readwise_id)
    index.revs.pop(own_id, None)
    index.revs[readwise_id] = rev
    log.info("source.book_found_in_readwise", book_id=readwise_id, pages_moved=pages)


def fold_source(
    store: StateStore,
    books: Sequence[LocalBook],
    *,
    source_name: str,
    kind: LocalKind,
    rev: int,
    index: CacheIndex,
    folded: dict[str, list[Any]],
) -> FoldResult:
    """Merge one source's books into the cache (the caller owns the transaction).

    `folded` (book id -> [fingerprint, rev]) is what this source folded before: a book whose
    fingerprint and cached rev are both as recorded is skipped without decoding it (a re-read of
    a 20,000-entry file changes one book). It is updated in place."""
    changed = highlights = 0
    # Two files of one book (an EPUB and a PDF of it, say) are one book: fold them together.
    grouped: dict[int, list[tuple[int, LocalBook]]] = {}
    for local in books:
        own_id = book_id_for(local.title, local.author)
        target_id = index.readwise.get(match_key(local.title, local.author), own_id)
        grouped.setdefault(target_id, []).append((own_id, local))
    for target_id, parts in grouped.items():
        complete = all(local.complete for _own, local in parts)
        highlights += sum(len(local.highlights) for _own, local in parts)
        print_ = fingerprint(parts, complete)
        before = folded.get(str(target_id))
        if before == [print_, index.revs.get(target_id)]:
            continue  # the same as last time, and nothing else changed the book since
        own_id, local = parts[0]
        incoming = [
            to_highlight(h, book_id=own, source_name=source_name, in_book=target_id)
            for own, part in parts
            for h in part.highlights
        ]
        if own_id != target_id and own_id in index.revs:
            _adopt_device_book(store, own_id, target_id, rev=rev, index=index)
        cached = store.load_book(target_id)
        upsert = _fold_highlights(
            cached.highlights if cached is not None else (),
            incoming,
            source_name=source_name,
            complete=complete,
        )
        if cached is None:
            book = Book(
                id=target_id,
                title=local.title,
                author=local.author,
                category="books",
                source=BOOK_SOURCE[kind],
                highlights=tuple(upsert),
            )
        else:
            book = cached.with_highlights(upsert)
        if store.merge_book(book, rev=rev, full=False):
            changed += 1
            index.revs[target_id] = rev
        folded[str(target_id)] = [print_, index.revs.get(target_id)]
    return FoldResult(books=len(grouped), highlights=highlights, books_changed=changed)
