"""Date formats Readwise's exports use, reproduced exactly.

* `format_php_date`: the `date('F j, Y')` template filter. Readwise renders on a Django server,
  so the letters follow Django's `dateformat`, which is PHP's `date()` plus a few Django letters
  (`a` is "a.m.", `N` is the AP-style month, `P`, `f`, `E`, `b`).
* `format_date_fns`: the date-fns patterns Logseq uses for journal page titles
  (`MMM do, yyyy` -> `Nov 18th, 2022`); the official Logseq plugin formats its journal links with
  date-fns and the user's `:journal/page-title-format`.
* `format_clock`: the `{{time}}` variable, `9:45 AM`.
* `logseq_journal_format`: that format, read from a graph's `logseq/config.edn`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

import edn_format

from syncd.errors import VaultError

DEFAULT_JOURNAL_FORMAT = "MMM do, yyyy"

_MONTHS = tuple(calendar.month_name[1:])  # English whatever the process locale is
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Django's AP-style abbreviations (letter N).
_MONTHS_AP = (
    "Jan.", "Feb.", "March", "April", "May", "June",
    "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec.",
)  # fmt: skip


def _ordinal_suffix(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _hour12(moment: datetime) -> int:
    return moment.hour % 12 or 12


def _utc_offset(moment: datetime) -> timedelta:
    return moment.utcoffset() or timedelta(0)


def _offset_text(moment: datetime, *, colon: bool) -> str:
    seconds = int(_utc_offset(moment).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def _django_f(moment: datetime) -> str:
    hour = _hour12(moment)
    return str(hour) if moment.minute == 0 else f"{hour}:{moment.minute:02d}"


def _django_p(moment: datetime) -> str:
    if moment.minute == 0 and moment.hour == 0:
        return "midnight"
    if moment.minute == 0 and moment.hour == 12:
        return "noon"
    return f"{_django_f(moment)} {'a.m.' if moment.hour < 12 else 'p.m.'}"


def _rfc5322(moment: datetime) -> str:
    return (
        f"{_WEEKDAYS[moment.weekday()][:3]}, {moment.day:02d} {_MONTHS[moment.month - 1][:3]} "
        f"{moment.year} {moment:%H:%M:%S} {_offset_text(moment, colon=False)}"
    )


_PHP_LETTERS: dict[str, Callable[[datetime], str]] = {
    # day
    "d": lambda m: f"{m.day:02d}",
    "j": lambda m: str(m.day),
    "D": lambda m: _WEEKDAYS[m.weekday()][:3],
    "l": lambda m: _WEEKDAYS[m.weekday()],
    "w": lambda m: str((m.weekday() + 1) % 7),
    "S": lambda m: _ordinal_suffix(m.day),
    "z": lambda m: str(m.timetuple().tm_yday),
    # week, month, year
    "W": lambda m: str(m.isocalendar()[1]),
    "F": lambda m: _MONTHS[m.month - 1],
    "E": lambda m: _MONTHS[m.month - 1],
    "M": lambda m: _MONTHS[m.month - 1][:3],
    "b": lambda m: _MONTHS[m.month - 1][:3].lower(),
    "N": lambda m: _MONTHS_AP[m.month - 1],
    "m": lambda m: f"{m.month:02d}",
    "n": lambda m: str(m.month),
    "t": lambda m: str(calendar.monthrange(m.year, m.month)[1]),
    "L": lambda m: str(calendar.isleap(m.year)),
    "o": lambda m: str(m.isocalendar()[0]),
    "Y": lambda m: str(m.year),
    "y": lambda m: f"{m.year % 100:02d}",
    # time
    "a": lambda m: "a.m." if m.hour < 12 else "p.m.",
    "A": lambda m: "AM" if m.hour < 12 else "PM",
    "f": _django_f,
    "g": lambda m: str(_hour12(m)),
    "G": lambda m: str(m.hour),
    "h": lambda m: f"{_hour12(m):02d}",
    "H": lambda m: f"{m.hour:02d}",
    "i": lambda m: f"{m.minute:02d}",
    "s": lambda m: f"{m.second:02d}",
    "u": lambda m: f"{m.microsecond:06d}",
    "P": _django_p,
    # time zone
    "e": lambda m: m.tzname() or "",
    "T": lambda m: m.tzname() or "",
    "O": lambda m: _offset_text(m, colon=False),
    "Z": lambda m: str(int(_utc_offset(m).total_seconds())),
    "I": lambda m: "1" if (m.dst() or timedelta(0)) else "0",
    # full date/time
    "c": lambda m: m.isoformat(),
    "r": _rfc5322,
    "U": lambda m: str(int(m.timestamp())),
}


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day)


def format_php_date(value: date | datetime, fmt: str) -> str:
    """Format like Django's `date` filter: each letter in `_PHP_LETTERS` is replaced, a
    backslash makes the next character literal, everything else is copied."""
    moment = _as_datetime(value)
    out: list[str] = []
    chars = iter(fmt)
    for char in chars:
        if char == "\\":
            out.append(next(chars, ""))
        elif char in _PHP_LETTERS:
            out.append(_PHP_LETTERS[char](moment))
        else:
            out.append(char)
    return "".join(out)


def format_clock(moment: datetime) -> str:
    """Readwise's `{{time}}`: 12-hour clock without a leading zero, `9:45 AM`, `12:15 AM`."""
    return format_php_date(moment, "g:i A")


# --- date-fns -------------------------------------------------------------------------------

# A quoted literal, an ordinal (`do`, `Mo`), a run of one letter, or any other character.
_FNS_TOKEN = re.compile(r"'(?:[^']|'')*'?|do|Mo|([A-Za-z])\1*|.", re.DOTALL)

_FNS_FIELDS: dict[str, Callable[[datetime], str]] = {
    "yyyy": lambda m: f"{m.year:04d}",
    "yyy": lambda m: f"{m.year:03d}",
    "yy": lambda m: f"{m.year % 100:02d}",
    "y": lambda m: str(m.year),
    "MMMMM": lambda m: _MONTHS[m.month - 1][0],
    "MMMM": lambda m: _MONTHS[m.month - 1],
    "MMM": lambda m: _MONTHS[m.month - 1][:3],
    "MM": lambda m: f"{m.month:02d}",
    "M": lambda m: str(m.month),
    "Mo": lambda m: f"{m.month}{_ordinal_suffix(m.month)}",
    "LLLL": lambda m: _MONTHS[m.month - 1],
    "LLL": lambda m: _MONTHS[m.month - 1][:3],
    "LL": lambda m: f"{m.month:02d}",
    "L": lambda m: str(m.month),
    "do": lambda m: f"{m.day}{_ordinal_suffix(m.day)}",
    "dd": lambda m: f"{m.day:02d}",
    "d": lambda m: str(m.day),
    "EEEEEE": lambda m: _WEEKDAYS[m.weekday()][:2],
    "EEEEE": lambda m: _WEEKDAYS[m.weekday()][0],
    "EEEE": lambda m: _WEEKDAYS[m.weekday()],
    "EEE": lambda m: _WEEKDAYS[m.weekday()][:3],
    "EE": lambda m: _WEEKDAYS[m.weekday()][:3],
    "E": lambda m: _WEEKDAYS[m.weekday()][:3],
    "HH": lambda m: f"{m.hour:02d}",
    "H": lambda m: str(m.hour),
    "hh": lambda m: f"{_hour12(m):02d}",
    "h": lambda m: str(_hour12(m)),
    "mm": lambda m: f"{m.minute:02d}",
    "m": lambda m: str(m.minute),
    "ss": lambda m: f"{m.second:02d}",
    "s": lambda m: str(m.second),
    "a": lambda m: "AM" if m.hour < 12 else "PM",
}


def format_date_fns(value: date | datetime, fmt: str) -> str:
    """Format with date-fns `format()` tokens (the subset journal titles use). Text in single
    quotes is literal (`''` is a quote); an unquoted letter run date-fns does not know is an
    error there, and a ValueError here."""
    moment = _as_datetime(value)
    out: list[str] = []
    for match in _FNS_TOKEN.finditer(fmt):
        token = match.group(0)
        if token == "''":
            out.append("'")
        elif token.startswith("'"):
            body = token[1:-1] if len(token) > 1 and token.endswith("'") else token[1:]
            out.append(body.replace("''", "'"))
        elif token.isascii() and token.isalpha():
            field = _FNS_FIELDS.get(token)
            if field is None:
                raise ValueError(f"date format {fmt!r}: unknown token {token!r}")
            out.append(field(moment))
        else:
            out.append(token)
    return "".join(out)


# --- Logseq's config.edn ------------------------------------------------------------------------

_JOURNAL_KEYS = ("journal/page-title-format", "date-formatter")  # current key, then legacy
# A probe date with two-digit day and month and a weekday, so every token shows in the check.
_PROBE = datetime(2022, 11, 18, 9, 45)


def _regex_literals_as_strings(text: str) -> str:
    """Rewrite `#"regex"` (Clojure, common in config.edn) as an ordinary EDN string, which
    edn_format cannot read otherwise. Strings and `;` comments are copied untouched."""
    out: list[str] = []
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if char == ";":
            end = text.find("\n", i)
            end = size if end < 0 else end
            out.append(text[i:end])
            i = end
        elif char == "\\" and i + 1 < size:  # a character literal such as \" or \;
            out.append(text[i : i + 2])
            i += 2
        elif char == '"' or (char == "#" and text.startswith('#"', i)):
            is_regex = char == "#"
            i += 2 if is_regex else 1
            body: list[str] = []
            while i < size and text[i] != '"':
                if text[i] == "\\" and i + 1 < size:
                    pair = text[i : i + 2]
                    # In a regex every backslash is literal; EDN strings only know a few escapes.
                    body.append(pair if not is_regex or pair == '\\"' else "\\" + pair)
                    i += 2
                else:
                    body.append(text[i])
                    i += 1
            out.append('"' + "".join(body) + '"')
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def logseq_journal_format(graph_root: Path) -> str:
    """The graph's journal title format (`:journal/page-title-format`, else the legacy
    `:date-formatter`), or Logseq's default when the config file or the key is missing."""
    config = graph_root / "logseq" / "config.edn"
    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DEFAULT_JOURNAL_FORMAT
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultError(f"{config}: cannot read Logseq's config: {exc}") from exc
    try:
        data = edn_format.loads(_regex_literals_as_strings(text))
    except Exception as exc:  # edn_format raises several unrelated types on bad input
        raise VaultError(f"{config}: not valid EDN: {exc}") from exc
    if not isinstance(data, Mapping):
        raise VaultError(f"{config}: expected a map {{...}} at the top, got {type(data).__name__}")
    for key in _JOURNAL_KEYS:
        value = data.get(edn_format.Keyword(key))
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise VaultError(f"{config}: :{key} must be a non-empty string, got {value!r}")
        try:
            format_date_fns(_PROBE, value)
        except ValueError as exc:
            raise VaultError(f"{config}: :{key}: {exc}") from exc
        return value
    return DEFAULT_JOURNAL_FORMAT
