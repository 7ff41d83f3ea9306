"""KOReader sidecars (`<book>.sdr/metadata.<ext>.lua`) -> LocalBooks. Pure: text in, book out.

Two layouts, both read:

- `annotations` (KOReader 2024.07 and later): a list of items; a highlight has a `drawer`
  (lighten, underscore, ...) and `text`, maybe a `note`, `color`, `chapter`, `pageno`,
  `datetime` (creation, never changed) and `datetime_updated`. An item without `drawer` is a
  page bookmark: skipped.
- older `bookmarks` + `highlight`: `bookmarks[i]` has `notes` (the highlighted text), `text` (the
  reader's note, or KOReader's automatic "Page N ... @ date" text), `highlighted`, `datetime`,
  `pos0`/`pos1`; `highlight[page][j]` has `drawer`, `color`, `text` and the same `datetime`/`pos0`/
  `pos1`. Highlights from before 2014 exist only in `highlight`.

Identity: `datetime` is set when a highlight is made and kept when it is extended, shortened or
annotated, so it is the key (with a serial number when two share a second). A sidecar is the
whole truth about its book: a highlight no longer in it was deleted on the device.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import PurePath

from syncd.sources.local import LocalBook, LocalHighlight, LocalSourceError
from syncd.sources.lua_data import LuaDataError, read_lua_data

SIDECAR_NAME = re.compile(r"^metadata\.[A-Za-z0-9]+\.lua$")
_STAMP = "%Y-%m-%d %H:%M:%S"


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _stamp(value: object) -> datetime | None:
    try:
        return datetime.strptime(_str(value).strip(), _STAMP)
    except ValueError:
        return None


def _items(value: object) -> list[Mapping[object, object]]:
    """A Lua list (keys 1..n) as a Python list of its tables, in key order."""
    if not isinstance(value, Mapping):
        return []
    keys = sorted(k for k in value if isinstance(k, int))
    return [item for item in (value[k] for k in keys) if isinstance(item, Mapping)]


def _position(value: object) -> str:
    """pos0/pos1 as text: an xpointer (EPUB) or a PDF point {page, x, y}."""
    if isinstance(value, Mapping):
        return ",".join(f"{k}={value[k]}" for k in ("page", "x", "y") if k in value)
    return _str(value) or (str(value) if value is not None else "")


def _book_identity(data: Mapping[object, object], where: str) -> tuple[str, str]:
    props = data.get("doc_props")
    stats = data.get("stats")
    title = author = ""
    for table in (props, stats):
        if isinstance(table, Mapping):
            title = title or _str(table.get("title")).strip()
            author = author or _str(table.get("authors")).strip()
    if not title:
        path = _str(data.get("doc_path")) or where
        name = PurePath(path).name
        if name.startswith("metadata.") or not name:
            name = PurePath(path).parent.name
        title = re.sub(r"\.sdr$", "", name)
        title = PurePath(title).stem or title
    # Several authors come one per line.
    author = ", ".join(part.strip() for part in author.splitlines() if part.strip())
    return title, author


class _Keys:
    """Unique keys per book: a second highlight made in the same second gets `#2`."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def make(self, stamp: str, fallback: str) -> str:
        base = f"t:{stamp}" if stamp else f"p:{fallback}"
        key, serial = base, 1
        while key in self.seen:
            serial += 1
            key = f"{base}#{serial}"
        self.seen.add(key)
        return key


def _highlight(
    keys: _Keys,
    *,
    text: str,
    note: str,
    stamp: object,
    pageno: int | None,
    pos0: object,
    pos1: object,
    color: str,
    chapter: str,
) -> LocalHighlight:
    stamp_text = _str(stamp).strip()
    return LocalHighlight(
        key=keys.make(stamp_text, f"{_position(pos0)}-{_position(pos1)}:{text}"),
        text=text.strip(),
        note=note.strip(),
        location=pageno,
        location_type="page" if pageno is not None else "",
        highlighted_at=_stamp(stamp),
        color=color,
        chapter=chapter,
    )


def _from_annotations(items: list[Mapping[object, object]]) -> list[LocalHighlight]:
    keys = _Keys()
    out: list[LocalHighlight] = []
    for item in items:
        text = _str(item.get("text"))
        if not item.get("drawer") or not text.strip():
            continue  # a page bookmark (or an empty highlight)
        page = item.get("page")
        pageno = _int(item.get("pageno"))
        if pageno is None:
            pageno = _int(page)  # PDFs: the page number itself
        out.append(
            _highlight(
                keys,
                text=text,
                note=_str(item.get("note")),
                stamp=item.get("datetime"),
                pageno=pageno,
                pos0=item.get("pos0"),
                pos1=item.get("pos1"),
                color=_str(item.get("color")),
                chapter=_str(item.get("chapter")),
            )
        )
    return out


def _is_auto_text(note: str, bookmark: Mapping[object, object]) -> bool:
    """KOReader's own bookmark text ("Page 12 <text> @ 2020-01-01 10:00:00"), not a note."""
    stamp = _str(bookmark.get("datetime"))
    return bool(stamp) and note.rstrip().endswith(f"@ {stamp}")


def _from_bookmarks(data: Mapping[object, object]) -> list[LocalHighlight]:
    raw_pages = data.get("highlight")
    by_match: dict[tuple[str, str, str], tuple[Mapping[object, object], int | None]] = {}
    unmatched: list[tuple[Mapping[object, object], int | None]] = []
    if isinstance(raw_pages, Mapping):
        for page_key in sorted(raw_pages, key=lambda k: (not isinstance(k, int), str(k))):
            for entry in _items(raw_pages[page_key]):
                match = (
                    _str(entry.get("datetime")),
                    _position(entry.get("pos0")),
                    _position(entry.get("pos1")),
                )
                by_match[match] = (entry, _int(page_key))
                unmatched.append((entry, _int(page_key)))
    keys = _Keys()
    out: list[LocalHighlight] = []
    used: set[int] = set()
    for bookmark in _items(data.get("bookmarks")):
        if not bookmark.get("highlighted"):
            continue  # a page bookmark
        match = (
            _str(bookmark.get("datetime")),
            _position(bookmark.get("pos0")),
            _position(bookmark.get("pos1")),
        )
        entry, pageno = by_match.get(match, ({}, None))
        if entry:
            used.add(id(entry))
        text = _str(bookmark.get("notes")) or _str(entry.get("text"))
        if not text.strip():
            continue
        note = _str(bookmark.get("text"))
        if _is_auto_text(note, bookmark) or note.strip() == text.strip():
            note = ""
        page = _int(bookmark.get("page"))
        out.append(
            _highlight(
                keys,
                text=text,
                note=note,
                stamp=bookmark.get("datetime"),
                pageno=pageno if pageno is not None else page,
                pos0=bookmark.get("pos0"),
                pos1=bookmark.get("pos1"),
                color=_str(entry.get("color")),
                chapter=_str(bookmark.get("chapter")) or _str(entry.get("chapter")),
            )
        )
    for entry, pageno in unmatched:  # saved before bookmarks recorded highlights (pre-2014)
        text = _str(entry.get("text"))
        if id(entry) in used or not text.strip():
            continue
        out.append(
            _highlight(
                keys,
                text=text,
                note="",
                stamp=entry.get("datetime"),
                pageno=pageno,
                pos0=entry.get("pos0"),
                pos1=entry.get("pos1"),
                color=_str(entry.get("color")),
                chapter=_str(entry.get("chapter")),
            )
        )
    return out


def parse_sidecar(text: str, *, where: str) -> LocalBook:
    """The book of one sidecar with its highlights. Raises LocalSourceError for anything that
    is not a KOReader data file (code, a syntax error, a value that is not a table)."""
    try:
        data = read_lua_data(text)
    except LuaDataError as error:
        raise LocalSourceError(f"{where}: not a KOReader sidecar: {error}") from None
    if not isinstance(data, Mapping):
        raise LocalSourceError(f"{where}: not a KOReader sidecar (it returns no table)")
    annotations = data.get("annotations")
    if annotations is not None:
        highlights = _from_annotations(_items(annotations))
    else:
        highlights = _from_bookmarks(data)
    title, author = _book_identity(data, where)
    return LocalBook(title=title, author=author, highlights=tuple(highlights), complete=True)
