"""Kindle `My Clippings.txt` -> LocalBooks. Pure: text in, books out.

The file is a log the Kindle appends to, one entry per highlight, note or bookmark:

    Title (Author)
    - Your Highlight on page 12 | Location 170-171 | Added on Monday, March 4, 2019 10:32:05 PM

    The highlighted text
    ==========

The metadata line is in the device's language ("Ihre Markierung bei Position 170-171 |
Hinzugefügt am ...", "您在位置 #170-171的标注 | 添加于 ..."): the kind is found by a word list
per language, page and location by their words, the date from the last part. Rules:

- Bookmarks and the clipping-limit placeholder (`<You have reached the clipping limit ...>`, one
  line in angle brackets in every language) are not highlights.
- A highlight the reader extended or shortened is written again, its range overlapping the old
  one and one text containing the other: the later replaces the earlier and keeps its key, so it
  is an edit, not a delete and an add. Neighbours sharing a location (Kindle locations are
  coarse) with texts that do not contain one another stay distinct.
- A note belongs to the latest earlier highlight whose range contains the note's location (the
  Kindle writes it at the highlight's end); a later note there replaces it (an edit on the
  device). A note with no such highlight is kept as a highlight of its own text, as Readwise does.
- The file is only ever appended to, so an entry without its closing `==========` is a write cut
  off (device unplugged): it is left out; every complete entry before it is read.

Not a clippings file (no entry with a metadata line at all) raises LocalSourceError.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from syncd.sources.local import (
    LocalBook,
    LocalHighlight,
    LocalSourceError,
    ParseResult,
    normalize_text,
)

SEPARATOR = "=========="
EntryKind = Literal["highlight", "note", "bookmark"]

# Checked in this order: "Markierung" must not be read as a note, "nota" is a note.
_KIND_WORDS: tuple[tuple[EntryKind, tuple[str, ...]], ...] = (
    (
        "bookmark",
        (
            "bookmark",
            "lesezeichen",
            "signet",
            "marcador",
            "segnalibro",
            "bladwijzer",
            "ブックマーク",
            "书签",
            "書籤",
            "закладка",
        ),
    ),
    (
        "highlight",
        (
            "highlight",
            "markierung",
            "surlignement",
            "subrayado",
            "evidenziazione",
            "destaque",
            "markering",
            "ハイライト",
            "标注",
            "標註",
            "выделен",
            "clip this article",
        ),
    ),
    ("note", ("note", "notiz", "nota", "notitie", "メモ", "笔记", "筆記", "заметка")),
)

_LOCATION = re.compile(
    r"(?:location|loc\.|position|emplacement|posición|posizione|posição|locatie|位置(?:\s*no\.)?"
    r"|мест[оеа])\s*#?\s*(\d+)(?:\s*-\s*(\d+))?",
    re.IGNORECASE,
)
_PAGE = re.compile(
    r"(?:page|seite|página|pagina|страниц[аеы])\s*(\d+)(?:\s*-\s*(\d+))?"
    r"|(\d+)(?:\s*-\s*(\d+))?\s*ページ|第\s*(\d+)(?:\s*-\s*(\d+))?\s*页",
    re.IGNORECASE,
)

# "Your Highlight on page 12 | Location 170-171", "... on Location 170", "... on page 3"
_ENGLISH_WHERE = re.compile(
    r"Your \w+ on (?:page (\d+)(?:-\d+)?(?: \| |$))?(?:Location (\d+)(?:-(\d+))?)?$"
)

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january januar janvier enero gennaio janeiro januari января",
        "february februar février febrero febbraio fevereiro februari февраля",
        "march märz mars marzo março maart марта",
        "april avril abril aprile апреля",
        "may mai mayo maggio maio mei мая",
        "june juni juin junio giugno junho июня",
        "july juli juillet julio luglio julho июля",
        "august août agosto augustus августа",
        "september septembre septiembre settembre setembro сентября",
        "october oktober octobre octubre ottobre outubro октября",
        "november novembre noviembre novembro ноября",
        "december dezember décembre diciembre dicembre dezembro декабря",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_YMD = re.compile(r"(\d{4})\s*[年/.-]\s*(\d{1,2})\s*[月/.-]\s*(\d{1,2})")
_YEAR = re.compile(r"\b(\d{4})\b")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp]\.?\s?[Mm]\.?)?")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(slots=True)  # not frozen: 20,000 of them per read, and frozen init is slow
class Entry:
    """One complete entry of the file, as written."""

    title: str
    author: str
    kind: EntryKind
    text: str
    start: int | None  # location range (Kindle locations), or None
    end: int | None
    page: int | None
    added: str  # the date part of the metadata line, as written (see parse_added)
    line: int  # 1-based line of the entry's title, for messages


@functools.lru_cache(maxsize=4096)  # one line per book, repeated for each of its entries
def split_title(line: str) -> tuple[str, str]:
    """`Title (Author)` -> (title, author); parentheses inside the title stay in it, and an
    author with parentheses of their own (`(Smith (ed.))`) is taken whole."""
    line = line.replace("\ufeff", "").strip()
    if not line.endswith(")"):
        return line, ""
    depth = 0
    for index in range(len(line) - 1, -1, -1):
        char = line[index]
        if char == ")":
            depth += 1
        elif char == "(":
            depth -= 1
            if depth == 0:
                title = line[:index].strip()
                if not title:
                    return line, ""  # the whole line in parentheses: a title
                return title, line[index + 1 : -1].strip()
    return line, ""  # unbalanced


_KIND_CACHE: dict[str, EntryKind | None] = {}
_KIND_PREFIX = re.compile(r"[^\d|#]*")


def entry_kind(meta: str) -> EntryKind | None:
    """Highlight, note or bookmark, by the words of the metadata line (any language)."""
    prefix = _KIND_PREFIX.match(meta)
    head = prefix.group() if prefix is not None else meta
    if head in _KIND_CACHE:  # a file repeats a handful of phrasings thousands of times
        return _KIND_CACHE[head]
    kind = _entry_kind(meta)
    if len(_KIND_CACHE) < 1000 and _entry_kind(head) == kind:
        _KIND_CACHE[head] = kind
    return kind


def _entry_kind(meta: str) -> EntryKind | None:
    lowered = meta.casefold()
    for kind, words in _KIND_WORDS:
        if any(word in lowered for word in words):
            return kind
    return None


def _range(match: re.Match[str] | None, group: int = 1) -> tuple[int | None, int | None]:
    if match is None:
        return None, None
    for index in range(group, (match.lastindex or 0) + 1, 2):
        if match.group(index) is not None:
            start = int(match.group(index))
            end_text = match.group(index + 1)
            return start, _range_end(start, end_text)
    return None, None


def _range_end(start: int, end_text: str | None) -> int:
    """Kindle abbreviates ends in old files: `Loc. 1234-56` means 1234-1256."""
    if end_text is None:
        return start
    end = int(end_text)
    if end < start and len(end_text) < len(str(start)):
        prefix = str(start)[: len(str(start)) - len(end_text)]
        end = int(prefix + end_text)
    return max(end, start)


_ENGLISH_DATE = re.compile(
    r"(?:Added on )?\w+, (\w+) (\d{1,2}), (\d{4}),? (\d{1,2}):(\d{2})(?::(\d{2}))? ?([AP]M)$"
)
_ENGLISH_MONTHS = {name: n for name, n in _MONTHS.items() if name.isascii() and name.isalpha()}


def parse_added(text: str) -> datetime | None:
    """The date of `Added on ...` in any of the languages above; None if it cannot be read.
    Local time of the device, as written (the Kindle does not say its zone)."""
    english = _ENGLISH_DATE.match(text)  # most files: one regex instead of the general path
    if english is not None and english.group(1).lower() in _ENGLISH_MONTHS:
        month_name, day_text, year_text, hour_text, minute, second, meridiem = english.groups()
        hour = int(hour_text) % 12 + (12 if meridiem == "PM" else 0)
        try:
            return datetime(
                int(year_text),
                _ENGLISH_MONTHS[month_name.lower()],
                int(day_text),
                hour,
                int(minute),
                int(second or 0),
            )
        except ValueError:
            return None
    year = month = day = None
    ymd = _YMD.search(text)
    if ymd is not None:
        year, month, day = (int(part) for part in ymd.groups())
        rest = text[ymd.end() :]
    else:
        year_match = _YEAR.search(text)
        if year_match is None:
            return None
        year = int(year_match.group(1))
        for word in _WORD.findall(text.casefold()):
            if word in _MONTHS:
                month = _MONTHS[word]
                break
        days = [int(d) for d in re.findall(r"\b(\d{1,2})\b", text[: year_match.start()])]
        if month is None or not days:
            return None
        day = days[-1]
        rest = text[year_match.end() :]
    clock = _CLOCK.search(rest)
    hour = minute = second = 0
    if clock is not None:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        second = int(clock.group(3) or 0)
        meridiem = (clock.group(4) or "").lower().replace(".", "").replace(" ", "")
        afternoon = meridiem == "pm" or "下午" in rest or "午後" in rest
        morning = meridiem == "am" or "上午" in rest or "午前" in rest
        if afternoon and hour < 12:
            hour += 12
        elif morning and hour == 12:
            hour = 0
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


_BLANK_LINES = re.compile(r"(?:[ \t\ufeff]*\n)*")
_SEPARATOR_LINE = re.compile(r"^[ \t\ufeff]*==========[ \t]*$\n?", re.MULTILINE)


def _entry(chunk: str, first_line: int) -> Entry | None:
    """One chunk between separators; None if it is not an entry (no metadata line)."""
    blank = _BLANK_LINES.match(chunk)
    if blank is not None and blank.end():
        first_line += chunk.count("\n", 0, blank.end())
        chunk = chunk[blank.end() :]
    title_line, _, rest = chunk.partition("\n")
    meta_line, _, body = rest.partition("\n")
    meta_line = meta_line.lstrip("\ufeff")
    if not meta_line.startswith("- "):
        return None
    meta = meta_line[2:]
    kind = entry_kind(meta)
    if kind is None:
        return None
    parts = [part.strip() for part in meta.split("|")]
    where = " | ".join(parts[:-1]) if len(parts) > 1 else meta
    english = _ENGLISH_WHERE.match(where)  # most files: one anchored regex
    if english is not None:
        page = int(english.group(1)) if english.group(1) else None
        start = int(english.group(2)) if english.group(2) else None
        end = _range_end(start, english.group(3)) if start is not None else None
    else:
        start, end = _range(_LOCATION.search(where))
        page, _page_end = _range(_PAGE.search(where))
    title, author = split_title(title_line)
    text = body.strip()
    if "\n" in text:
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    added = parts[-1] if len(parts) > 1 else ""
    return Entry(title, author, kind, text, start, end, page, added, first_line)


def read_entries(text: str) -> tuple[list[Entry], int, str]:
    """Every complete entry; the number of chunks that were not entries; the text after the
    last separator (an entry cut off mid-write, when not blank)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    entries: list[Entry] = []
    not_entries = 0
    position = 0
    line = 1
    for separator in _SEPARATOR_LINE.finditer(text):
        chunk = text[position : separator.start()]
        entry = _entry(chunk, line)
        if entry is not None:
            entries.append(entry)
        elif chunk.strip():
            not_entries += 1
        line += chunk.count("\n") + 1
        position = separator.end()
    tail = text[position:]
    return entries, not_entries, tail if tail.strip() else ""


def is_limit_placeholder(text: str) -> bool:
    """`<You have reached the clipping limit for this item>` and its translations."""
    stripped = text.strip()
    return stripped.startswith("<") and stripped.endswith(">") and "\n" not in stripped


@dataclass(slots=True)
class _Kept:
    key: str
    text: str
    norm: str  # the text as compared (normalize_text)
    start: int | None
    end: int | None
    page: int | None
    added: str  # the raw date text, parsed only for what is kept
    seq: int  # higher is later in the file
    note: str = ""
    is_note: bool = False  # a note with no highlight, kept as its own highlight


# A highlight spanning more locations than this is indexed by its two ends only (it is then
# found again only by an entry overlapping one of them): keeps a hostile file cheap.
_INDEX_SPAN = 256


def _places(start: int | None, end: int | None, page: int | None) -> list[object]:
    if start is not None:
        assert end is not None
        return list(range(start, end + 1)) if end - start <= _INDEX_SPAN else [start, end]
    return [("page", page)] if page is not None else []


class _BookHighlights:
    """One book's highlights in file order, with an index by location so each entry looks only
    at the highlights near it (a 20,000-entry file would otherwise be quadratic per book)."""

    def __init__(self) -> None:
        self.kept: dict[str, _Kept] = {}  # by key; the order is the file's
        self.at: dict[object, list[_Kept]] = {}  # location or ("page", n) -> highlights there
        self.seq = 0

    def _add(self, kept: _Kept) -> None:
        self.kept.pop(kept.key, None)
        self.kept[kept.key] = kept
        for place in _places(kept.start, kept.end, kept.page):
            self.at.setdefault(place, []).append(kept)

    def _near(self, entry: Entry) -> list[_Kept]:
        """Kept highlights (current versions) sharing a place with `entry`, latest first."""
        found: dict[int, _Kept] = {}
        for place in _places(entry.start, entry.end, entry.page):
            for kept in self.at.get(place, ()):
                if self.kept.get(kept.key) is kept:
                    found[kept.seq] = kept
        return [found[seq] for seq in sorted(found, reverse=True)]

    def highlight(self, entry: Entry) -> None:
        self.seq += 1
        norm = normalize_text(entry.text)
        for old in self._near(entry):
            if not old.is_note and (old.norm in norm or norm in old.norm):
                # Extended or shortened: the new text, the old key (and note and date).
                self._add(
                    _Kept(
                        old.key,
                        entry.text,
                        norm,
                        entry.start,
                        entry.end,
                        entry.page,
                        old.added,
                        self.seq,
                        old.note,
                    )
                )
                return
        key = self._key(entry, norm)
        self._add(
            _Kept(key, entry.text, norm, entry.start, entry.end, entry.page, entry.added, self.seq)
        )

    def note(self, entry: Entry) -> None:
        """On the latest highlight whose range holds the note's location (or its page)."""
        self.seq += 1
        probe = Entry(
            entry.title,
            entry.author,
            "note",
            "",
            entry.start,
            entry.start,
            entry.page,
            "",
            entry.line,
        )
        for owner in self._near(probe):
            if not owner.is_note:
                owner.note = entry.text
                return
        norm = normalize_text(entry.text)
        key = "note:" + self._key(entry, norm)
        self._add(
            _Kept(
                key,
                entry.text,
                norm,
                entry.start,
                entry.end,
                entry.page,
                entry.added,
                self.seq,
                is_note=True,
            )
        )

    def _key(self, entry: Entry, norm: str) -> str:
        where = f"L{entry.start}" if entry.start is not None else f"P{entry.page}"
        key = f"{where}:{norm}"
        serial, unique = 1, key
        while unique in self.kept:  # the same text at the same place again (Kindle repeats)
            serial += 1
            unique = f"{key}#{serial}"
        return unique


def _book_highlights(entries: list[Entry]) -> list[_Kept]:
    book = _BookHighlights()
    for entry in entries:
        if entry.kind == "highlight":
            book.highlight(entry)
        elif entry.kind == "note":
            book.note(entry)
    return list(book.kept.values())


def _local(kept: _Kept) -> LocalHighlight:
    if kept.start is not None:
        location, location_type = kept.start, "location"
    elif kept.page is not None:
        location, location_type = kept.page, "page"
    else:
        location, location_type = None, ""
    return LocalHighlight(
        key=kept.key,
        text=kept.text,
        note=kept.note,
        location=location,
        location_type=location_type,
        highlighted_at=parse_added(kept.added) if kept.added else None,
    )


def parse_clippings(text: str, *, where: str = "My Clippings.txt") -> ParseResult:
    """Every book of a clippings file with its highlights, in the order the file gives them."""
    if "\x00" in text:
        raise LocalSourceError(f"{where}: binary data (NUL bytes), not a Kindle clippings file")
    entries, not_entries, tail = read_entries(text)
    # A cut-off first entry: its title line alone, or title and metadata.
    cut_entry = len(tail.strip().splitlines()) <= 1 or _entry(tail, 1) is not None
    if not entries and (not_entries or (tail and not cut_entry)):
        raise LocalSourceError(
            f"{where}: not a Kindle clippings file (no entry has a "
            f"'- Your Highlight ...' line before a '{SEPARATOR}' line)"
        )
    by_book: dict[tuple[str, str], list[Entry]] = {}
    skipped = not_entries
    for entry in entries:
        if entry.kind == "bookmark" or not entry.text or is_limit_placeholder(entry.text):
            skipped += 1
            continue
        by_book.setdefault((entry.title, entry.author), []).append(entry)
    books = tuple(
        LocalBook(
            title=title,
            author=author,
            highlights=tuple(_local(k) for k in _book_highlights(book_entries)),
        )
        for (title, author), book_entries in by_book.items()
    )
    return ParseResult(
        books=books, entries=len(entries), skipped=skipped, incomplete_tail=bool(tail)
    )
