"""In-memory Readwise library behind the stand-in server: books, highlights, mutations, JSON.

Records are frozen dataclasses; a mutation replaces the record, bumps its timestamps from the
library's clock and drops the cached JSON fragments of what it touched. All access goes through
`Library.lock`, so the HTTP threads and a test thread can use one library at the same time.

Export JSON follows shared/readwise/api.md §3.2: every book and highlight key in the
documented order, compact UTF-8 JSON as Django REST Framework renders it, UTC timestamps ending in
"Z" with millisecond (default) or microsecond precision.

Highlights carry two update times: `updated_at` (bumped by every change) and
`content_updated_at` (bumped by every change except a tag-only edit). The server exports one or the
other depending on the quirk `tag_change_bumps_updated`, so the same library can model both cases.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal

TimestampStyle = Literal["ms", "us"]
Clock = Callable[[], datetime]

_ONE_MICROSECOND = timedelta(microseconds=1)
_COMPACT = (",", ":")


class UnknownIdError(LookupError):
    """A mutation named a book or highlight id the library does not hold."""


class _Unset(Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET
"""Default of optional mutation arguments: "leave this field as it is" (None is a real value)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; pass it as `Library(clock=...)` in tests."""

    def __init__(self, start: datetime) -> None:
        self._now = _as_utc(start)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, *, seconds: float = 0.0, microseconds: int = 0) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds, microseconds=microseconds)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def format_timestamp(moment: datetime | None, style: TimestampStyle = "ms") -> str | None:
    """UTC with a "Z": `2022-09-13T16:41:53.186Z` (ms, export) or `….186123Z` (us)."""
    if moment is None:
        return None
    spec = "milliseconds" if style == "ms" else "microseconds"
    return moment.isoformat(timespec=spec).removesuffix("+00:00") + "Z"


def tidy_title(title: str) -> str:
    """Readwise's `readable_title`: whitespace collapsed, each word capitalised."""
    return " ".join(word[:1].upper() + word[1:] for word in title.split())


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag assignment; ids are per assignment, so one name on two items has two ids."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class HighlightState:
    id: int
    book_id: int
    text: str
    note: str | None
    location: int | None
    location_type: str | None
    color: str
    highlighted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    content_updated_at: datetime
    external_id: str | None = None
    url: str | None = None
    tags: tuple[Tag, ...] = ()
    is_favorite: bool = False
    is_discard: bool = False
    is_deleted: bool = False
    end_location: int | None = None

    def exported_updated_at(self, *, tag_change_bumps: bool) -> datetime:
        return self.updated_at if tag_change_bumps else self.content_updated_at


@dataclass(frozen=True, slots=True)
class BookState:
    id: int
    title: str
    author: str | None
    category: str
    source: str | None
    readable_title: str
    updated_at: datetime  # metadata changes only; not exported (the API has no such key)
    cover_image_url: str | None = None
    unique_url: str | None = None
    book_tags: tuple[Tag, ...] = ()
    document_note: str | None = None
    summary: str | None = None
    source_url: str | None = None
    external_id: str | None = None
    asin: str | None = None
    is_deleted: bool = False


def highlight_json(
    highlight: HighlightState, *, style: TimestampStyle = "ms", tag_change_bumps: bool = True
) -> dict[str, Any]:
    """The export representation of one highlight, keys in the documented order."""
    updated = highlight.exported_updated_at(tag_change_bumps=tag_change_bumps)
    return {
        "id": highlight.id,
        "is_deleted": highlight.is_deleted,
        "text": highlight.text,
        "location": highlight.location,
        "location_type": highlight.location_type,
        "note": highlight.note,
        "color": highlight.color,
        "highlighted_at": format_timestamp(highlight.highlighted_at, style),
        "created_at": format_timestamp(highlight.created_at, style),
        "updated_at": format_timestamp(updated, style),
        "external_id": highlight.external_id,
        "end_location": highlight.end_location,
        "url": highlight.url,
        "book_id": highlight.book_id,
        "tags": [{"id": tag.id, "name": tag.name} for tag in highlight.tags],
        "is_favorite": highlight.is_favorite,
        "is_discard": highlight.is_discard,
        "readwise_url": f"https://readwise.io/open/{highlight.id}",
    }


def book_json(book: BookState) -> dict[str, Any]:
    """The export representation of a book without its `highlights` key (added last)."""
    return {
        "user_book_id": book.id,
        "is_deleted": book.is_deleted,
        "title": book.title,
        "author": book.author,
        "readable_title": book.readable_title,
        "source": book.source,
        "cover_image_url": book.cover_image_url,
        "unique_url": book.unique_url,
        "book_tags": [{"id": tag.id, "name": tag.name} for tag in book.book_tags],
        "category": book.category,
        "document_note": book.document_note,
        "summary": book.summary,
        "readwise_url": f"https://readwise.io/bookreview/{book.id}",
        "source_url": book.source_url,
        "external_id": book.external_id,
        "asin": book.asin,
    }


def dump_json(value: object) -> str:
    """DRF's renderer output: compact separators, non-ASCII kept as UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=_COMPACT)


@dataclass(frozen=True, slots=True)
class BookSummary:
    """Newest exported `updated_at` among a book's highlights, per filter combination.

    None means the book has no highlight in that set, so it cannot appear in an export.
    """

    newest_all: datetime | None
    newest_live: datetime | None
    newest_content_all: datetime | None
    newest_content_live: datetime | None

    def newest(self, *, tag_change_bumps: bool, include_deleted: bool) -> datetime | None:
        if tag_change_bumps:
            return self.newest_all if include_deleted else self.newest_live
        return self.newest_content_all if include_deleted else self.newest_content_live


def _summarise(highlights: Sequence[HighlightState]) -> BookSummary:
    live = [h for h in highlights if not h.is_deleted]
    return BookSummary(
        newest_all=max((h.updated_at for h in highlights), default=None),
        newest_live=max((h.updated_at for h in live), default=None),
        newest_content_all=max((h.content_updated_at for h in highlights), default=None),
        newest_content_live=max((h.content_updated_at for h in live), default=None),
    )


@dataclass(frozen=True, slots=True)
class LibrarySnapshot:
    """An immutable copy of the library for assertions."""

    books: MappingProxyType[int, BookState]
    highlights: MappingProxyType[int, HighlightState]
    highlight_ids_by_book: MappingProxyType[int, tuple[int, ...]]

    def highlights_of(self, book_id: int, *, include_deleted: bool = False) -> list[HighlightState]:
        """A book's highlights in export order."""
        found = (self.highlights[hid] for hid in self.highlight_ids_by_book.get(book_id, ()))
        return [h for h in found if include_deleted or not h.is_deleted]

    def exported_book_ids(self, *, include_deleted: bool = False) -> list[int]:
        """Ids a full export returns, in export order (descending)."""
        return [
            book_id
            for book_id in sorted(self.books, reverse=True)
            if (include_deleted or not self.books[book_id].is_deleted)
            and self.highlights_of(book_id, include_deleted=include_deleted)
        ]

    def live_highlights(self) -> list[HighlightState]:
        """Highlights a full export without includeDeleted returns."""
        return [
            h
            for book_id in self.exported_book_ids()
            for h in self.highlights_of(book_id, include_deleted=False)
        ]


class Library:
    """Books and highlights with thread-safe mutations and cached export JSON fragments.

    The clock defaults to real UTC now; whatever it returns, every timestamp the library hands
    out is strictly later than every timestamp it already holds.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.lock = threading.RLock()
        self._clock: Clock = clock or utc_now
        self._last_tick = datetime.min.replace(tzinfo=UTC)
        self._books: dict[int, BookState] = {}
        self._highlights: dict[int, HighlightState] = {}
        self._highlight_ids_by_book: dict[int, list[int]] = {}
        self._book_ids_ascending: list[int] = []
        self._highest_highlight_id = 0
        self._next_tag_id = 1_000_000
        self._fragments: dict[tuple[int, TimestampStyle, bool], str] = {}
        self._book_prefixes: dict[int, str] = {}
        self._summaries: dict[int, BookSummary] = {}

    # ---- time ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The next timestamp: the clock's reading, pushed past everything handed out so far."""
        with self.lock:
            moment = _as_utc(self._clock())
            if moment <= self._last_tick:
                moment = self._last_tick + _ONE_MICROSECOND
            self._last_tick = moment
            return moment

    def clock_reading(self) -> datetime:
        """What the clock says now, without handing out a timestamp (for `Date` headers)."""
        return _as_utc(self._clock())

    def _see(self, *moments: datetime | None) -> None:
        for moment in moments:
            if moment is not None and moment > self._last_tick:
                self._last_tick = moment

    # ---- loading records as they are ----------------------------------------------------------

    def put_book(self, book: BookState) -> None:
        """Insert or replace a book record as given (timestamps kept)."""
        with self.lock:
            if book.id not in self._books:
                insort(self._book_ids_ascending, book.id)
                self._highlight_ids_by_book[book.id] = []
            self._books[book.id] = book
            self._see(book.updated_at)
            self._book_prefixes.pop(book.id, None)

    def put_highlight(self, highlight: HighlightState) -> None:
        """Insert or replace a highlight record as given; its book must exist."""
        with self.lock:
            if highlight.book_id not in self._books:
                raise UnknownIdError(
                    f"highlight {highlight.id}: no book with id {highlight.book_id}"
                )
            previous = self._highlights.get(highlight.id)
            if previous is None:
                self._highlight_ids_by_book[highlight.book_id].append(highlight.id)
                self._highest_highlight_id = max(self._highest_highlight_id, highlight.id)
            elif previous.book_id != highlight.book_id:
                raise ValueError(f"highlight {highlight.id} cannot move between books")
            self._highlights[highlight.id] = highlight
            self._see(highlight.highlighted_at, highlight.created_at, highlight.updated_at)
            self._forget_highlight(highlight)

    def new_tags(self, names: Sequence[str], keep: Sequence[Tag] = ()) -> tuple[Tag, ...]:
        """Tag assignments for `names`, reusing the ids of names already in `keep`."""
        with self.lock:
            existing = {tag.name: tag for tag in keep}
            tags: list[Tag] = []
            for name in names:
                if not name:
                    raise ValueError("tag names must not be empty")
                tag = existing.get(name)
                if tag is None:
                    tag = Tag(self._next_tag_id, name)
                    self._next_tag_id += 1
                tags.append(tag)
            return tuple(tags)

    def _forget_highlight(self, highlight: HighlightState) -> None:
        for style in ("ms", "us"):
            for bumps in (True, False):
                self._fragments.pop((highlight.id, style, bumps), None)
        self._summaries.pop(highlight.book_id, None)

    # ---- mutations ----------------------------------------------------------------------------

    def add_book(
        self,
        *,
        title: str,
        author: str | None = None,
        category: str = "articles",
        source: str | None = "api_article",
        tags: Sequence[str] = (),
        cover_image_url: str | None = None,
        unique_url: str | None = None,
        source_url: str | None = None,
        document_note: str | None = None,
        summary: str | None = None,
        external_id: str | None = None,
        asin: str | None = None,
    ) -> int:
        """A new book with the next free id (the highest so far, so it sorts first)."""
        with self.lock:
            book_id = (self._book_ids_ascending[-1] + 1) if self._book_ids_ascending else 1
            self.put_book(
                BookState(
                    id=book_id,
                    title=title,
                    author=author,
                    category=category,
                    source=source,
                    readable_title=tidy_title(title),
                    updated_at=self.now(),
                    cover_image_url=cover_image_url,
                    unique_url=unique_url,
                    book_tags=self.new_tags(tags),
                    document_note=document_note,
                    summary=summary,
                    source_url=source_url,
                    external_id=external_id,
                    asin=asin,
                )
            )
            return book_id

    def add_highlight(
        self,
        book_id: int,
        *,
        text: str,
        note: str | None = None,
        location: int | None = None,
        location_type: str | None = "order",
        color: str = "yellow",
        tags: Sequence[str] = (),
        url: str | None = None,
        external_id: str | None = None,
        is_favorite: bool = False,
        highlighted_at: datetime | _Unset | None = UNSET,
    ) -> int:
        """A new highlight in `book_id`, created and updated "now"; returns its id."""
        with self.lock:
            book = self._book(book_id)
            if book.is_deleted:
                raise ValueError(f"book {book_id} is deleted; cannot add a highlight to it")
            now = self.now()
            highlight_id = self._highest_highlight_id + 1
            self.put_highlight(
                HighlightState(
                    id=highlight_id,
                    book_id=book_id,
                    text=text,
                    note=note,
                    location=location,
                    location_type=location_type,
                    color=color,
                    highlighted_at=now if highlighted_at is UNSET else highlighted_at,
                    created_at=now,
                    updated_at=now,
                    content_updated_at=now,
                    external_id=external_id,
                    url=url,
                    tags=self.new_tags(tags),
                    is_favorite=is_favorite,
                )
            )
            return highlight_id

    def edit_highlight(
        self,
        highlight_id: int,
        *,
        text: str | _Unset = UNSET,
        note: str | _Unset | None = UNSET,
        tags: Sequence[str] | _Unset = UNSET,
        color: str | _Unset = UNSET,
        location: int | _Unset | None = UNSET,
        is_favorite: bool | _Unset = UNSET,
    ) -> None:
        """Change the given fields; a tag-only edit leaves `content_updated_at` alone."""
        with self.lock:
            current = self._live_highlight(highlight_id)
            changes: dict[str, Any] = {}
            if not isinstance(text, _Unset):
                changes["text"] = text
            if not isinstance(note, _Unset):
                changes["note"] = note
            if not isinstance(color, _Unset):
                changes["color"] = color
            if not isinstance(location, _Unset):
                changes["location"] = location
            if not isinstance(is_favorite, _Unset):
                changes["is_favorite"] = is_favorite
            if isinstance(tags, _Unset) and not changes:
                raise ValueError(f"edit_highlight({highlight_id}): no field to change was given")
            now = self.now()
            if not isinstance(tags, _Unset):
                changes["tags"] = self.new_tags(tags, keep=current.tags)
            changes["updated_at"] = now
            if set(changes) != {"tags", "updated_at"}:
                changes["content_updated_at"] = now
            self.put_highlight(replace(current, **changes))

    def add_highlight_tag(self, highlight_id: int, name: str) -> Tag:
        """A new tag assignment (POST .../tags/): always a new id, even for a name the highlight
        has already (the real API's answer to a repeat is unknown; a duplicate makes a client
        that sends a tag twice visible). Bumps `updated_at` only."""
        with self.lock:
            current = self._live_highlight(highlight_id)
            (tag,) = self.new_tags([name])
            self.put_highlight(replace(current, tags=(*current.tags, tag), updated_at=self.now()))
            return tag

    def remove_highlight_tag(self, highlight_id: int, tag_id: int) -> bool:
        """Remove one tag assignment (DELETE .../tags/<id>); False if it has no such tag."""
        with self.lock:
            current = self._live_highlight(highlight_id)
            kept = tuple(tag for tag in current.tags if tag.id != tag_id)
            if len(kept) == len(current.tags):
                return False
            self.put_highlight(replace(current, tags=kept, updated_at=self.now()))
            return True

    def delete_highlight(self, highlight_id: int) -> None:
        """Mark deleted (kept for includeDeleted) and bump both update times."""
        with self.lock:
            current = self._live_highlight(highlight_id)
            now = self.now()
            self.put_highlight(
                replace(current, is_deleted=True, updated_at=now, content_updated_at=now)
            )

    def discard_highlight(self, highlight_id: int) -> None:
        """Mark discarded (still exported as live) and bump both update times."""
        with self.lock:
            current = self._live_highlight(highlight_id)
            now = self.now()
            self.put_highlight(
                replace(current, is_discard=True, updated_at=now, content_updated_at=now)
            )

    def delete_book(self, book_id: int) -> None:
        """Mark the book and every live highlight of it deleted, all at one new timestamp."""
        with self.lock:
            book = self._book(book_id)
            if book.is_deleted:
                raise ValueError(f"book {book_id} is already deleted")
            now = self.now()
            self.put_book(replace(book, is_deleted=True, updated_at=now))
            for hid in self._highlight_ids_by_book[book_id]:
                highlight = self._highlights[hid]
                if not highlight.is_deleted:
                    self.put_highlight(
                        replace(highlight, is_deleted=True, updated_at=now, content_updated_at=now)
                    )

    def edit_book_metadata(
        self,
        book_id: int,
        *,
        title: str | _Unset = UNSET,
        author: str | _Unset | None = UNSET,
        category: str | _Unset = UNSET,
        source: str | _Unset | None = UNSET,
        tags: Sequence[str] | _Unset = UNSET,
        cover_image_url: str | _Unset | None = UNSET,
        document_note: str | _Unset | None = UNSET,
        summary: str | _Unset | None = UNSET,
        source_url: str | _Unset | None = UNSET,
        unique_url: str | _Unset | None = UNSET,
    ) -> None:
        """Change book fields. Highlights are not touched, so an incremental export only shows
        this with the quirk `book_meta_in_incremental` (which looks at the book's own time)."""
        with self.lock:
            book = self._book(book_id)
            given: dict[str, object] = {
                "title": title,
                "author": author,
                "category": category,
                "source": source,
                "cover_image_url": cover_image_url,
                "document_note": document_note,
                "summary": summary,
                "source_url": source_url,
                "unique_url": unique_url,
            }
            changes: dict[str, Any] = {
                key: value for key, value in given.items() if not isinstance(value, _Unset)
            }
            if not isinstance(tags, _Unset):
                changes["book_tags"] = self.new_tags(tags, keep=book.book_tags)
            if not changes:
                raise ValueError(f"edit_book_metadata({book_id}): no field to change was given")
            if isinstance(changes.get("title"), str):
                changes["readable_title"] = tidy_title(changes["title"])
            self.put_book(replace(book, updated_at=self.now(), **changes))

    def _book(self, book_id: int) -> BookState:
        try:
            return self._books[book_id]
        except KeyError:
            raise UnknownIdError(f"no book with id {book_id}") from None

    def _live_highlight(self, highlight_id: int) -> HighlightState:
        try:
            highlight = self._highlights[highlight_id]
        except KeyError:
            raise UnknownIdError(f"no highlight with id {highlight_id}") from None
        if highlight.is_deleted:
            raise ValueError(f"highlight {highlight_id} is deleted; it cannot change any more")
        return highlight

    # ---- reading ------------------------------------------------------------------------------

    def snapshot(self) -> LibrarySnapshot:
        with self.lock:
            return LibrarySnapshot(
                books=MappingProxyType(dict(self._books)),
                highlights=MappingProxyType(dict(self._highlights)),
                highlight_ids_by_book=MappingProxyType(
                    {bid: tuple(ids) for bid, ids in self._highlight_ids_by_book.items()}
                ),
            )

    @property
    def book_count(self) -> int:
        with self.lock:
            return len(self._books)

    @property
    def highlight_count(self) -> int:
        with self.lock:
            return len(self._highlights)

    def book(self, book_id: int) -> BookState:
        with self.lock:
            return self._book(book_id)

    def highlight(self, highlight_id: int) -> HighlightState:
        with self.lock:
            try:
                return self._highlights[highlight_id]
            except KeyError:
                raise UnknownIdError(f"no highlight with id {highlight_id}") from None

    def book_ids_below(self, cursor: int | None) -> list[int]:
        """Book ids in export order (descending), only those below `cursor` if given."""
        with self.lock:
            ids = self._book_ids_ascending
            end = len(ids) if cursor is None else bisect_left(ids, cursor)
            return ids[end - 1 :: -1] if end else []

    def highlights_in(self, book_id: int) -> list[HighlightState]:
        """All highlights of a book, deleted ones included, in export order."""
        with self.lock:
            return [self._highlights[hid] for hid in self._highlight_ids_by_book[book_id]]

    def summary(self, book_id: int) -> BookSummary:
        with self.lock:
            found = self._summaries.get(book_id)
            if found is None:
                found = _summarise(self.highlights_in(book_id))
                self._summaries[book_id] = found
            return found

    def highlight_fragment(
        self, highlight: HighlightState, *, style: TimestampStyle, tag_change_bumps: bool
    ) -> str:
        """Cached JSON text of one exported highlight."""
        key = (highlight.id, style, tag_change_bumps)
        with self.lock:
            text = self._fragments.get(key)
            if text is None:
                text = dump_json(
                    highlight_json(highlight, style=style, tag_change_bumps=tag_change_bumps)
                )
                self._fragments[key] = text
            return text

    def book_prefix(self, book_id: int) -> str:
        """Cached JSON text of a book up to and including `"highlights":[`."""
        with self.lock:
            text = self._book_prefixes.get(book_id)
            if text is None:
                text = dump_json(book_json(self._book(book_id)))[:-1] + ',"highlights":['
                self._book_prefixes[book_id] = text
            return text

    def export(
        self,
        *,
        include_deleted: bool = False,
        style: TimestampStyle = "ms",
        tag_change_bumps: bool = True,
    ) -> list[dict[str, Any]]:
        """What a full export returns over all its pages, parsed (for tests and comparisons)."""
        with self.lock:
            books: list[dict[str, Any]] = []
            for book_id in self.book_ids_below(None):
                book = self._books[book_id]
                if book.is_deleted and not include_deleted:
                    continue
                shown = [
                    h for h in self.highlights_in(book_id) if include_deleted or not h.is_deleted
                ]
                if not shown:
                    continue
                fragments = ",".join(
                    self.highlight_fragment(h, style=style, tag_change_bumps=tag_change_bumps)
                    for h in shown
                )
                books.append(json.loads(self.book_prefix(book_id) + fragments + "]}"))
            return books


# ---- deterministic generator ------------------------------------------------------------------

_GENERATED_FROM = datetime(2019, 1, 1, tzinfo=UTC)
_GENERATED_SPAN_SECONDS = 6.4 * 365 * 86400  # up to mid 2025; real "now" is always later
_BIG_BOOK_HIGHLIGHTS = 1100  # one book larger than a 1000-highlight page, in large libraries

_WORD_TEXT = (
    "the of and a to in is you that it was for on are as with his they at be this have from or "
    "one had by word but not what all were we when your can said there use an each which she do "
    "how their if will up other about out many then them these so some her would make like him "
    "into time has look two more write go see number no way could people my than first water "
    "been call who its now find long down day did get come made may part attention habit focus "
    "memory reading notes system garden knowledge practice craft patience stoic virtue"
)
_WORDS = _WORD_TEXT.split()
_CJK = (
    "被讨厌的勇气",
    "学而时习之，不亦说乎？",
    "吾輩は猫である。名前はまだ無い。",
    "한국어 문장입니다",
    "云计算的未来构想",
)
_RTL = ("كتاب الرمل", "مرحبا بالعالم", "שלום עולם", "ספר החול")
_EMOJI = ("🚀", "🔥", "👩‍💻", "🇯🇵", "❤️", "🤔", "📚", "✨")
_FIRST = ("Marcus", "Ada", "Haruki", "Chimamanda", "Jorge", "Ursula", "Cal", "Naval", "Rob")
_LAST = ("Aurelius", "Lovelace", "Murakami", "Adichie", "Borges", "Le Guin", "Newport", "Ward")
_PODCASTS = ("The Tim Ferriss Show", "Huberman Lab", "Lex Fridman Podcast", "99% Invisible")
_DOMAINS = ("startribune.com", "reflectoring.io", "paulgraham.com", "lwn.net", "nytimes.com")
_TAG_NAMES = (
    "favorite", "to read", "a/b", "🔥 hot", "[[wiki]]", "C#", "key: value", "one, two", "R&D",
    "#hash", "深度学习", "discard",
)  # fmt: skip
_COLORS = ("yellow", "yellow", "yellow", "blue", "pink", "orange", "green", "purple", "")
_SPECIAL_TEXTS = (
    "- starts like a list item\n- and a second line that does too",
    "key:: value that looks like a Logseq property",
    "# Looks like a heading",
    "Links [[like this]] and ((block-ref)) and #tag and #[[multi word]]",
    "Template syntax {{embed [[page]]}} and {% raw %} and %} and {{ and }}",
    "First paragraph.\n\nSecond paragraph after a blank line.\n\n\nThird after two blank lines.",
    "Windows line\r\nendings\r\nhere",
    "Separators\u2028line\u2029paragraph, NBSP\u00a0here, zero\u200bwidth, BOM\ufeffmark",
    "TODO this is not a task",
    "| a | table | row |\n|---|---|---|",
    "“Curly quotes” and ‘single ones’ — and an ellipsis…",
    "![](https://readwise-assets.s3.amazonaws.com/media/reader/parsed_document_assets/1/a.png)",
    '<b>HTML</b> <video controls><source src="https://video.twimg.com/v.mp4"></video>',
    "Tab\tseparated\tvalues and trailing spaces   ",
    "    indented code-like line\n\tand a tab-indented one",
    "*emphasis* **strong** `code` ~~strike~~ ==highlight== :: double colon",
    "> quoted line\n> another",
    "---\nlooks: like front matter\n---",
    "😀 starts with emoji, has 中文 and العربية mixed",
    "Ends with a backslash \\",
    "$$ math $$ and $inline$ and <https://example.com> and [link](https://example.com)",
    "Long line " + "lorem ipsum dolor sit amet " * 110,
)
_SPECIAL_NOTES: tuple[str | None, ...] = (
    None,
    "",
    "A short note.",
    "Multi-line note\nsecond line\n\nafter a blank line",
    ".h1",
    ".tag1 .tag2 a note with inline tags",
    ".qa What is the point? The point is this.",
    "note with [[link]] and key:: value",
    "- a note that starts like a list item",
)
_SPECIAL_TITLES: tuple[tuple[str, str | None], ...] = (
    ("../../x", "Traversal Author"),
    ("a/b", None),
    ("C:\\x", ""),
    ("CON", "Device Name"),
    ('x?*:|"<>', "Punctuation Author"),
    ("Trailing dots...", "Dots"),
    ("Trailing spaces   ", "Spaces"),
    ("Tab\tand\x01control\x7fchars", "Control"),
    ("Line one\nLine two", "Newline"),
    (("An Extremely Long Title " * 14).strip(), "Long"),
    ("被讨厌的勇气", "岸见一郎"),
    ("كتاب الرمل", "خورخي لويس بورخيس"),
    ("Emoji 🚀 Launch 👩‍💻 Notes", "Emoji Person 😀"),
    ("The Same Title", "Same Author"),
    ("The Same Title", "Same Author"),
    (".hidden", "Dot"),
    ("nul.txt", "aux"),
    ("#Hashtag [[Title]] {{x}} %}", "Markup"),
)
# Books 0-6 show every category and location type; one category is one the docs do not list.
_SHOWCASE: tuple[tuple[str, str], ...] = (
    ("books", "kindle"),
    ("articles", "reader"),
    ("tweets", "twitter"),
    ("podcasts", "snipd"),
    ("supplementals", "supplemental"),
    ("videos", "youtube"),
    ("articles", "web_clipper"),
)
_LOCATION_TYPES: dict[str, str | None] = {
    "kindle": "location",
    "ibooks": "page",
    "reader": "offset",
    "twitter": "order",
    "snipd": "time_offset",
    "supplemental": "none",
    "youtube": "page",
    "web_clipper": None,
    "api_article": "order",
    "instapaper": "none",
}
_RANDOM_SOURCES: tuple[tuple[str, str, int], ...] = (
    ("books", "kindle", 22),
    ("books", "ibooks", 5),
    ("books", "reader", 5),
    ("articles", "reader", 20),
    ("articles", "web_clipper", 8),
    ("articles", "api_article", 8),
    ("articles", "instapaper", 4),
    ("tweets", "twitter", 10),
    ("podcasts", "snipd", 8),
    ("supplementals", "supplemental", 5),
)


class _Generator:
    """Builds one library from a seeded RNG; each method draws in a fixed order."""

    def __init__(self, library: Library, seed: int) -> None:
        import random  # local: only the generator needs it

        self.library = library
        self.rng = random.Random(seed)
        self.next_highlight_id = 500_000_000 + self.rng.randrange(1_000_000)
        self.special_text_index = 0

    def ulid(self) -> str:
        return "01" + "".join(self.rng.choices("0123456789abcdefghjkmnpqrstvwxyz", k=24))

    def person(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    def sentence(self, language: str, low: int = 6, high: int = 40) -> str:
        words = self.rng.choices(_WORDS, k=self.rng.randint(low, high))
        text = " ".join(words)
        text = text[0].upper() + text[1:] + "."
        if language == "cjk":
            return self.rng.choice(_CJK) + " " + text
        if language == "rtl":
            return self.rng.choice(_RTL) + " " + text
        if language == "emoji" or self.rng.random() < 0.03:
            return text + " " + self.rng.choice(_EMOJI)
        return text

    def tag_names(self, chance: float) -> list[str]:
        if self.rng.random() >= chance:
            return []
        return self.rng.sample(_TAG_NAMES, k=self.rng.randint(1, 3))

    def make_book(
        self, book_id: int, created: datetime, category: str, source: str, special: int | None
    ) -> BookState:
        rng = self.rng
        title, author = self.title_and_author(category, source)
        if special is not None:
            title, author = _SPECIAL_TITLES[special]
        elif rng.random() < 0.04:
            author = rng.choice((None, ""))
        reader = source == "reader"
        external_id = self.ulid() if reader else None
        url_source = category in ("articles", "tweets", "videos") or reader
        source_url = f"https://{rng.choice(_DOMAINS)}/p/{book_id}" if url_source else None
        return BookState(
            id=book_id,
            title=title,
            author=author,
            category=category,
            source=source,
            readable_title=tidy_title(title),
            updated_at=created,
            cover_image_url=rng.choice((None, f"https://covers.example.com/{book_id}.jpg")),
            unique_url=f"https://read.readwise.io/read/{external_id}"
            if reader
            else rng.choice((None, "")),
            book_tags=self.library.new_tags(self.tag_names(0.25)),
            document_note=rng.choice((None, None, None, "", "A document note.\nSecond line.")),
            summary=self.sentence("en") if reader else rng.choice((None, "")),
            source_url=source_url if rng.random() < 0.9 else "",
            external_id=external_id,
            asin="B0" + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=8))
            if source == "kindle"
            else None,
        )

    def title_and_author(self, category: str, source: str) -> tuple[str, str | None]:
        rng = self.rng
        if category == "tweets":
            handle = rng.choice(_FIRST).lower() + str(rng.randrange(1000))
            if rng.random() < 0.3:  # a thread: first 24 characters of its first tweet + "..."
                return self.sentence("en")[:24] + "...", f"@{handle} on Twitter"
            return f"Tweets From {self.person()}", f"@{handle} on Twitter"
        if category == "podcasts":
            return f"#{rng.randrange(1, 600)} — {self.sentence('en', 3, 7)}", rng.choice(_PODCASTS)
        if category == "supplementals":
            return "How to Use Readwise", "Readwise Team"
        if category == "articles" and source != "reader":
            return self.sentence("en", 3, 9).rstrip("."), rng.choice(_DOMAINS)
        language = rng.choices(("en", "cjk", "rtl", "emoji"), weights=(85, 7, 5, 3))[0]
        return self.sentence(language, 2, 7).rstrip("."), self.person()

    def make_highlights(self, book: BookState, count: int) -> None:
        rng = self.rng
        location_type = _LOCATION_TYPES.get(book.source or "", "page")
        language = rng.choices(("en", "cjk", "rtl", "emoji"), weights=(85, 7, 5, 3))[0]
        batch_time = book.updated_at  # Kindle imports share one created_at per sync batch
        location = rng.randint(1, 200)
        records: list[HighlightState] = []
        for position in range(count):
            if book.source == "kindle" and rng.random() < 0.8:
                created = batch_time
            else:
                created = book.updated_at + timedelta(
                    microseconds=rng.randrange(200 * 86400 * 10**6)
                )
                batch_time = created
            updated = created
            if rng.random() < 0.3:
                updated = created + timedelta(microseconds=rng.randrange(1, 30 * 86400 * 10**6))
            location += rng.randint(1, 400)
            highlight_id = self.next_highlight_id
            self.next_highlight_id += rng.randint(1, 40)
            records.append(
                HighlightState(
                    id=highlight_id,
                    book_id=book.id,
                    text=self.highlight_text(language),
                    note=self.note(),
                    location=None if location_type in (None, "none") else location,
                    location_type=location_type,
                    color=rng.choice(_COLORS),
                    highlighted_at=self.highlighted_at(book, created),
                    created_at=created,
                    updated_at=updated,
                    content_updated_at=updated,
                    external_id=self.ulid() if book.source == "reader" else None,
                    url=self.highlight_url(book),
                    tags=self.library.new_tags(self.tag_names(0.2)),
                    is_favorite=rng.random() < 0.05,
                    is_discard=rng.random() < 0.04,
                    # never the first: every book keeps a live highlight
                    is_deleted=position > 0 and rng.random() < 0.01,
                )
            )
        if rng.random() < 0.3:  # export order is not location order (api.md §7.1)
            rng.shuffle(records)
        for record in records:
            self.library.put_highlight(record)

    def highlight_text(self, language: str) -> str:
        if self.special_text_index < len(_SPECIAL_TEXTS):
            self.special_text_index += 1
            return _SPECIAL_TEXTS[self.special_text_index - 1]
        roll = self.rng.random()
        if roll < 0.06:
            return self.rng.choice(_SPECIAL_TEXTS)
        if roll < 0.12:
            return self.sentence(language) + "\n\n" + self.sentence(language)
        return self.sentence(language)

    def note(self) -> str | None:
        roll = self.rng.random()
        if roll < 0.5:
            return None
        if roll < 0.75:
            return ""
        if roll < 0.9:
            return self.sentence("en", 3, 15)
        return self.rng.choice(_SPECIAL_NOTES)

    def highlighted_at(self, book: BookState, created: datetime) -> datetime | None:
        if self.rng.random() < 0.03:
            return None
        moment = created - timedelta(seconds=self.rng.randrange(0, 3 * 86400))
        if book.source == "kindle":  # Kindle clippings have minute precision
            return moment.replace(second=0, microsecond=0)
        return moment

    def highlight_url(self, book: BookState) -> str | None:
        if book.source == "reader":
            return f"https://read.readwise.io/read/{self.ulid()}"
        if book.source == "twitter":
            handle = (book.author or "@someone").split()[0].lstrip("@")
            return f"https://twitter.com/{handle}/status/{self.rng.randrange(10**18, 10**19)}"
        if book.source == "snipd":
            return f"https://share.snipd.com/snip/{self.ulid()}"
        return None

    def spread(self, books: int, highlights: int) -> list[int]:
        """Highlights per book: one each when possible, the rest skewed, one oversized book."""
        counts = [1 if highlights >= books else 0 for _ in range(books)]
        remaining = highlights - sum(counts)
        if books > 1 and remaining >= 2 * _BIG_BOOK_HIGHLIGHTS:
            counts[0] += _BIG_BOOK_HIGHLIGHTS  # book 0 is the Kindle showcase book
            remaining -= _BIG_BOOK_HIGHLIGHTS
        if not remaining:
            return counts
        weights = [min(self.rng.paretovariate(1.2), 60.0) for _ in range(books)]
        for index in self.rng.choices(range(books), weights=weights, k=remaining):
            counts[index] += 1
        return counts


def generate_library(
    *, books: int, highlights: int, seed: int, clock: Clock | None = None
) -> Library:
    """A library of exactly `books` books and `highlights` highlights, the same for a seed.

    Books 0-6 cover every category (plus the unknown `videos`) and location type, the next
    ones carry filename-hostile, duplicate, unicode and very long titles, and the first
    highlights carry the Markdown/Logseq-hostile texts; the rest is random but seeded. About 1%
    of highlights are pre-deleted (never a book's only one) and 4% discarded. With fewer
    highlights than books some books have none (and so never appear in an export).
    """
    if books < 0 or highlights < 0:
        raise ValueError(f"books and highlights must be >= 0, got {books} and {highlights}")
    if highlights and not books:
        raise ValueError(f"{highlights} highlights need at least one book")
    library = Library(clock=clock)
    generator = _Generator(library, seed)
    rng = generator.rng
    created_times = sorted(
        _GENERATED_FROM + timedelta(microseconds=rng.randrange(int(_GENERATED_SPAN_SECONDS * 1e6)))
        for _ in range(books)
    )
    book_id = 10_000_000 + rng.randrange(100_000)
    special_from = len(_SHOWCASE)
    for index, (count, created) in enumerate(
        zip(generator.spread(books, highlights), created_times, strict=True)
    ):
        book_id += rng.randint(1, 5000)
        if index < len(_SHOWCASE):
            category, source = _SHOWCASE[index]
        else:
            category, source, _ = rng.choices(
                _RANDOM_SOURCES, weights=[w for *_, w in _RANDOM_SOURCES]
            )[0]
        special = index - special_from
        in_specials = 0 <= special < len(_SPECIAL_TITLES)
        book = generator.make_book(
            book_id, created, category, source, special if in_specials else None
        )
        library.put_book(book)
        generator.make_highlights(book, count)
    return library


# ---- the demo library -------------------------------------------------------------------------


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _SampleHighlight:
    text: str
    location: int | None
    note: str | None = None
    tags: tuple[str, ...] = ()
    url: str | None = None
    color: str = "yellow"


def _sample_book(
    library: Library,
    book: BookState,
    items: Sequence[_SampleHighlight],
    *,
    first_id: int,
    location_type: str | None,
    start: str,
    step_minutes: int,
) -> None:
    library.put_book(replace(book, book_tags=library.new_tags([t.name for t in book.book_tags])))
    moment = _at(start)
    for offset, item in enumerate(items):
        created = moment + timedelta(minutes=step_minutes * offset, microseconds=123_456 * offset)
        library.put_highlight(
            HighlightState(
                id=first_id + offset,
                book_id=book.id,
                text=item.text,
                note=item.note,
                location=item.location,
                location_type=location_type,
                color=item.color,
                highlighted_at=created.replace(second=0, microsecond=0)
                if book.source == "kindle"
                else created,
                created_at=created,
                updated_at=created,
                content_updated_at=created,
                external_id=None,
                url=item.url,
                tags=library.new_tags(item.tags),
            )
        )


def _sample_record(
    book_id: int, title: str, author: str | None, category: str, source: str, **fields: Any
) -> BookState:
    tags = tuple(Tag(0, name) for name in fields.pop("tags", ()))
    return BookState(
        id=book_id,
        title=title,
        author=author,
        category=category,
        source=source,
        readable_title=tidy_title(title),
        updated_at=_at("2024-01-01T00:00:00"),
        book_tags=tags,
        **fields,
    )


def sample_library(*, clock: Clock | None = None) -> Library:
    """A small fixed library that looks like a real reader's, for `syncd demo`.

    Eight books, 40 highlights: a Kindle book (asin, Location), a Reader article with summary and
    document note, a tweet thread, a podcast with time offsets, a Chinese book, a supplemental,
    and two articles with the same title and author.
    """
    library = Library(clock=clock)
    h = _SampleHighlight
    _sample_book(
        library,
        _sample_record(
            41_020_301, "Meditations", "Marcus Aurelius and George Long", "books", "kindle",
            asin="B00IMLL63O", tags=("philosophy", "stoicism"),
            cover_image_url="https://images-na.ssl-images-amazon.com/images/I/51-OI5c696L._SL200_.jpg",
        ),
        [
            h("discontent with the portion which has been given to thee.", 147),
            h("others. Do the things external which fall upon thee", 150, tags=("favorite",)),
            h("Remember that man lives only in the present, in this fleeting instant: all the "
              "rest of his life is either past and gone, or not yet revealed.", 412,
              note="The present is all we have."),
            h("The happiness of your life depends upon the quality of your thoughts.", 599,
              color="blue"),
            h("Waste no more time arguing about what a good man should be. Be one.", 1203,
              note="", tags=("favorite", "to act on")),
            h("Very little is needed to make a happy life; it is all within yourself, in your "
              "way of thinking.", 1377),
            h("If it is not right, do not do it; if it is not true, do not say it.", 1980),
        ],
        first_id=612_000_101, location_type="location", start="2022-11-18T08:12:00",
        step_minutes=3,
    )  # fmt: skip
    _sample_book(
        library,
        _sample_record(
            41_020_355, "Writing Meaningful Commit Messages", "reflectoring.io", "articles",
            "reader", external_id="01gs65gssymtrvmrqpfq10yrsx",
            unique_url="https://read.readwise.io/read/01gs65gssymtrvmrqpfq10yrsx",
            source_url="https://reflectoring.io/meaningful-commit-messages/",
            summary="Commit messages should say why a change was made; a short subject line "
            "and a body that explains the reasoning help future readers.",
            document_note="Share with the team before the next retro.",
            tags=("git", "writing"),
        ),
        [
            h("A commit message should answer the question: why was this change necessary?", 812,
              url="https://read.readwise.io/read/01gs65hwcrevn44vc564hcwygd"),
            h("Keep the subject line short: 50 characters is a good rule of thumb.", 2045,
              url="https://read.readwise.io/read/01gs65j6dqwjnr4bk16646v43j",
              note="Our repo uses 72.\nCheck the hook config.", color=""),
            h("Use the imperative mood in the subject line:\n\n- Fix bug\n- Add feature", 3310,
              url="https://read.readwise.io/read/01gs65jckkjeyt9acdwmqex1s4", color=""),
            h("Separate subject from body with a blank line.", 3977,
              url="https://read.readwise.io/read/01gs65k00v1zd7z1yw3mrh0y7t", tags=("git",)),
            h("The body explains *what* and *why*, not *how*: the code shows how.", 5120,
              url="https://read.readwise.io/read/01gs65m68qpe3b9ke6q1yyr72d", color=""),
        ],
        first_id=612_000_201, location_type="offset", start="2023-02-14T07:04:11",
        step_minutes=2,
    )  # fmt: skip
    _sample_book(
        library,
        _sample_record(
            41_020_372, "Tweets From Rob Henderson", "@robkhenderson on Twitter", "tweets",
            "twitter", source_url="https://twitter.com/robkhenderson",
            cover_image_url="https://pbs.twimg.com/profile_images/1/rob_400x400.jpg",
        ),
        [
            h("1/ A thread on luxury beliefs: ideas and opinions that confer status on the "
              "upper class while often inflicting costs on the lower classes.", 1,
              url="https://twitter.com/robkhenderson/status/1560010000000000001", color=""),
            h("2/ Most people are not persuaded by arguments. They are persuaded by people "
              "they admire.", 2,
              url="https://twitter.com/robkhenderson/status/1560010000000000002", color=""),
            h("3/ Status is zero-sum; wealth is not. 🧵", 3,
              url="https://twitter.com/robkhenderson/status/1560010000000000003", color=""),
            h("4/ Here is the video: <video controls><source "
              'src="https://video.twimg.com/ext_tw_video/1/vid.mp4"></video>', 4,
              url="https://twitter.com/robkhenderson/status/1560010000000000004", color=""),
        ],
        first_id=612_000_301, location_type="order", start="2023-03-02T21:40:00",
        step_minutes=0,
    )  # fmt: skip
    _sample_book(
        library,
        _sample_record(
            41_020_390, "#401 —  Gary Keller — How to Focus on the One Important Thing",
            "The Tim Ferriss Show", "podcasts", "snipd",
            source_url="https://tim.blog/podcast", tags=("productivity",),
        ),
        [
            h("The Focus in Question\nSummary:\nWhat's the one thing I can do such that by doing "
              "it everything else is easier or unnecessary?\nTranscript:\nSpeaker 1\nAnd I "
              "encourage people to time-block that one thing.", 4389,
              url="https://share.snipd.com/snip/a4196033-1bdd-40af-9cfb-92ffc37eeda2"),
            h("Time blocking\nSummary:\nProtect three or four hours a day for the one thing.",
              5012, url="https://share.snipd.com/snip/b51a6033-1bdd-40af-9cfb-92ffc37eeda3",
              note=None),
            h("Goal setting to the now\nSummary:\nWork backwards from someday to right now.",
              6120, url="https://share.snipd.com/snip/c6206033-1bdd-40af-9cfb-92ffc37eeda4"),
        ],
        first_id=612_000_401, location_type="time_offset", start="2021-11-25T18:20:00",
        step_minutes=9,
    )  # fmt: skip
    _sample_book(
        library,
        _sample_record(
            41_020_415, "被讨厌的勇气", "岸见一郎, 古贺史健", "books", "kindle",
            asin="B07FB2CJ4W", document_note=None,
        ),
        [
            h("决定我们自身的不是过去的经历，而是我们自己赋予经历的意义。", 311,
              tags=("心理学",)),
            h("所有烦恼都来自人际关系。", 1024, note="阿德勒心理学的核心观点。"),
            h("自由就是被别人讨厌。", 2210, color="pink"),
            h("“课题分离”：这是谁的课题？\n\n不干涉别人的课题，也不让别人干涉自己的课题。", 2645),
            h("人生不是线，而是连续的刹那。", 3588),
        ],
        first_id=612_000_501, location_type="location", start="2023-06-10T13:00:00",
        step_minutes=5,
    )  # fmt: skip
    _sample_book(
        library,
        _sample_record(
            41_020_420, "How to Use Readwise", "Readwise Team", "supplementals", "supplemental",
        ),
        [
            h("Readwise resurfaces your best highlights in a Daily Review.", None),
            h("You can tag a highlight by writing .tagname in its note.", None, note=".tip"),
            h("Favorite a highlight to see it more often.", None),
        ],
        first_id=612_000_601, location_type="none", start="2022-11-18T08:00:00",
        step_minutes=0,
    )  # fmt: skip
    for book_id, first_id, start in (
        (41_020_433, 612_000_701, "2023-08-01T09:15:00"),
        (41_020_451, 612_000_801, "2023-09-12T16:45:00"),
    ):
        _sample_book(
            library,
            _sample_record(
                book_id, "CISSP Experience Requirements", "isc2.org", "articles", "web_clipper",
                source_url="https://www.isc2.org/certifications/cissp/cissp-experience-requirements",
                unique_url="https://www.isc2.org/certifications/cissp/cissp-experience-requirements",
            ),
            [
                h("Candidates must have a minimum of five years cumulative paid work experience "
                  "in two or more of the eight domains of the CISSP CBK.", None),
                h("A candidate that doesn't have the required experience to become a CISSP may "
                  "become an Associate of ISC2.", None, note="Plan B"),
                h("Part-time work and internships can also count towards the experience "
                  "requirement.", None),
                h("Earning a four-year college degree satisfies one year of required "
                  "experience.", None, tags=("cert",)),
                h("The Associate of ISC2 will then have six years to earn the experience "
                  "needed.", None),
                h("Education credit will only satisfy one year of experience.", None),
                h("Experience can be gained through full-time or part-time work.", None),
            ][: 7 if book_id == 41_020_433 else 6],
            first_id=first_id, location_type=None, start=start, step_minutes=1,
        )  # fmt: skip
    return library
