"""Normalized Readwise data: frozen Book and Highlight, parsed from export JSON.

Everything the API may send as null or "" (author, note, document_note, summary, urls) is
normalized to "" so templates and diffing see one notion of "absent". Unknown fields are ignored,
unknown categories and location types are kept as given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from syncd.errors import ApiDataError

# ISO 8601 as the API sends it: 0-9 fractional digits, "Z", an offset, or nothing (naive = UTC).
_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<h>\d{2}):(?P<m>\d{2})"
    r"(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?"
    r"(?P<tz>Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp(value: object, *, where: str = "timestamp") -> datetime | None:
    """Parse an API timestamp into an aware UTC datetime; None and "" give None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiDataError(f"{where}: expected an ISO 8601 string, got {type(value).__name__}")
    if len(value) in (20, 24, 27) and value[-1] == "Z" and value[10] == "T":
        # The export's own forms (no, 3 or 6 fraction digits): the C parser is ~10x faster.
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            pass  # fall through to the full parser and its error message
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        raise ApiDataError(f"{where}: not an ISO 8601 timestamp: {value[:40]!r}")
    year, month, day = (int(part) for part in match["date"].split("-"))
    frac = (match["frac"] or "0")[:6].ljust(6, "0")
    tz_text = match["tz"]
    tz: timezone = UTC
    if tz_text and tz_text not in ("Z", "z"):
        sign = -1 if tz_text[0] == "-" else 1
        digits = tz_text[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        parsed = datetime(
            year,
            month,
            day,
            int(match["h"]),
            int(match["m"]),
            int(match["s"] or 0),
            int(frac),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ApiDataError(f"{where}: impossible date {value[:40]!r}: {exc}") from exc
    return parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """The form syncd sends as updatedAfter: UTC, milliseconds, "Z" (no "+" to encode)."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


# Ids of highlights and books read from device files (syncd.sources.local) start here: Readwise's
# are sequential database ids, far below it.
LOCAL_ID_BASE = 1 << 60


def is_local_id(item_id: int) -> bool:
    return item_id >= LOCAL_ID_BASE


@dataclass(frozen=True, slots=True)
class Highlight:
    id: int
    book_id: int
    text: str
    note: str = ""
    location: int | None = None
    location_type: str = ""
    color: str = ""
    url: str = ""
    highlighted_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    tags: tuple[str, ...] = ()
    is_favorite: bool = False
    is_discard: bool = False
    is_deleted: bool = False
    external_id: str = ""
    readwise_url: str = ""

    @property
    def is_live(self) -> bool:
        """Written to notes: neither deleted nor discarded."""
        return not (self.is_deleted or self.is_discard)

    def reading_order_key(self) -> tuple[int, int, float, int]:
        """Location first (missing last), then highlighted_at, then id."""
        stamp = self.highlighted_at.timestamp() if self.highlighted_at else float("inf")
        if self.location is None:
            return (1, 0, stamp, self.id)
        return (0, self.location, stamp, self.id)


@dataclass(frozen=True, slots=True)
class Book:
    id: int
    title: str
    author: str = ""
    readable_title: str = ""
    category: str = "articles"
    source: str = ""
    cover_image_url: str = ""
    unique_url: str = ""
    source_url: str = ""
    readwise_url: str = ""
    document_note: str = ""
    summary: str = ""
    external_id: str = ""
    asin: str = ""
    tags: tuple[str, ...] = ()
    is_deleted: bool = False
    highlights: tuple[Highlight, ...] = field(default=())
    # live_highlights(), sorted once: a pass asks for it several times per book.
    _live: tuple[Highlight, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def display_title(self) -> str:
        """The title Readwise's templates show: the tidied title when there is one."""
        return self.readable_title or self.title

    def live_highlights(self) -> list[Highlight]:
        """Highlights to write, in reading order."""
        live = self._live
        if live is None:
            live = tuple(
                sorted((h for h in self.highlights if h.is_live), key=Highlight.reading_order_key)
            )
            object.__setattr__(self, "_live", live)  # frozen: the cache is the one exception
        return list(live)

    def with_highlights(self, highlights: Iterable[Highlight]) -> Book:
        return replace(self, highlights=tuple(highlights))


def fold_tag(tag: str) -> str:
    """A document tag as filters compare it: without "#", case-insensitive."""
    return tag.strip().lstrip("#").strip().casefold()


# --- parsing from API JSON ---------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ApiDataError(f"{where}.{key}: expected a string, got {type(value).__name__}")
    return value


def _int(data: Mapping[str, Any], key: str, where: str, *, required: bool) -> int | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ApiDataError(f"{where}.{key}: missing")
        return None
    if isinstance(value, bool):
        raise ApiDataError(f"{where}.{key}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ApiDataError(f"{where}.{key}: expected an integer, got {value!r:.40}")


def _bool(data: Mapping[str, Any], key: str) -> bool:
    return bool(data.get(key) or False)


def _tag_names(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    raw = data.get(key) or []
    if not isinstance(raw, list):
        raise ApiDataError(f"{where}.{key}: expected a list of tags")
    names: list[str] = []
    for item in raw:
        name = item.get("name") if isinstance(item, Mapping) else item
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return tuple(names)


def _quick_stamp(value: object) -> datetime | bool | None:
    """The export's usual timestamp forms, parsed; False for anything else."""
    if value is None or value == "":
        return None
    if type(value) is str and len(value) in (20, 24, 27) and value[-1] == "Z" and value[10] == "T":
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            return False
    return False


def _quick_highlight(data: dict[str, Any], book_id: int) -> Highlight | None:
    """The common case of highlight_from_json (every field of the type the API documents),
    without its per-field checks: a first pass parses tens of thousands of highlights. None
    sends anything unusual through the full parser and its error messages."""
    get = data.get
    highlight_id = get("id")
    owner = get("book_id", book_id)
    location = get("location")
    if type(highlight_id) is not int or (owner is not None and type(owner) is not int):
        return None
    if location is not None and type(location) is not int:
        return None
    texts = (
        get("text"),
        get("note"),
        get("location_type"),
        get("color"),
        get("url"),
        get("external_id"),
        get("readwise_url"),
    )
    for text in texts:
        if text is not None and type(text) is not str:
            return None
    stamps = (
        _quick_stamp(get("highlighted_at")),
        _quick_stamp(get("created_at")),
        _quick_stamp(get("updated_at")),
    )
    if False in stamps:
        return None
    raw_tags = get("tags")
    tags: tuple[str, ...] = ()
    if raw_tags:
        if type(raw_tags) is not list:
            return None
        tags = _tag_names(data, "tags", "highlight")
    text, note, location_type, color, url, external_id, readwise_url = (t or "" for t in texts)
    highlighted_at, created_at, updated_at = stamps
    return Highlight(
        highlight_id,
        owner if owner is not None else book_id,
        text,
        note,
        location,
        location_type,
        color,
        url,
        highlighted_at,  # type: ignore[arg-type]  # False was ruled out above
        created_at,  # type: ignore[arg-type]
        updated_at,  # type: ignore[arg-type]
        tags,
        bool(get("is_favorite")),
        bool(get("is_discard")),
        bool(get("is_deleted")),
        external_id,
        readwise_url,
    )


def highlight_from_json(data: object, *, book_id: int, where: str = "highlight") -> Highlight:
    if type(data) is dict:
        quick = _quick_highlight(data, book_id)
        if quick is not None:
            return quick
    return _full_highlight(data, book_id=book_id, where=where)


def _full_highlight(data: object, *, book_id: int, where: str) -> Highlight:
    """Every field checked, with an error message that names it."""
    if not isinstance(data, Mapping):
        raise ApiDataError(f"{where}: expected an object")
    highlight_id = _int(data, "id", where, required=True)
    assert highlight_id is not None
    where = f"{where} {highlight_id}"
    owner = _int(data, "book_id", where, required=False)
    return Highlight(
        id=highlight_id,
        book_id=owner if owner is not None else book_id,
        text=_text(data, "text", where),
        note=_text(data, "note", where),
        location=_int(data, "location", where, required=False),
        location_type=_text(data, "location_type", where),
        color=_text(data, "color", where),
        url=_text(data, "url", where),
        highlighted_at=parse_timestamp(data.get("highlighted_at"), where=f"{where}.highlighted_at"),
        created_at=parse_timestamp(data.get("created_at"), where=f"{where}.created_at"),
        updated_at=parse_timestamp(data.get("updated_at"), where=f"{where}.updated_at"),
        tags=_tag_names(data, "tags", where),
        is_favorite=_bool(data, "is_favorite"),
        is_discard=_bool(data, "is_discard"),
        is_deleted=_bool(data, "is_deleted"),
        external_id=_text(data, "external_id", where),
        readwise_url=_text(data, "readwise_url", where),
    )


def book_from_json(data: object) -> Book:
    """One book of an export page, with the highlights the page carried for it."""
    if not isinstance(data, Mapping):
        raise ApiDataError("export result: expected a book object")
    book_id = _int(data, "user_book_id", "book", required=True)
    assert book_id is not None
    where = f"book {book_id}"
    raw_highlights = data.get("highlights") or []
    if not isinstance(raw_highlights, list):
        raise ApiDataError(f"{where}.highlights: expected a list")
    return Book(
        id=book_id,
        title=_text(data, "title", where),
        author=_text(data, "author", where),
        readable_title=_text(data, "readable_title", where),
        category=_text(data, "category", where) or "articles",
        source=_text(data, "source", where),
        cover_image_url=_text(data, "cover_image_url", where),
        unique_url=_text(data, "unique_url", where),
        source_url=_text(data, "source_url", where),
        readwise_url=_text(data, "readwise_url", where),
        document_note=_text(data, "document_note", where),
        summary=_text(data, "summary", where),
        external_id=_text(data, "external_id", where),
        asin=_text(data, "asin", where),
        tags=_tag_names(data, "book_tags", where),
        is_deleted=_bool(data, "is_deleted"),
        highlights=tuple(
            (type(item) is dict and _quick_highlight(item, book_id))
            or _full_highlight(item, book_id=book_id, where=f"{where} highlight[{index}]")
            for index, item in enumerate(raw_highlights)
        ),
    )


def merge_highlights(old: Iterable[Highlight], new: Iterable[Highlight]) -> tuple[Highlight, ...]:
    """Upsert by highlight id: the newer copy of each id wins, others are kept."""
    by_id = {h.id: h for h in old}
    for highlight in new:
        by_id[highlight.id] = highlight
    return tuple(by_id.values())
