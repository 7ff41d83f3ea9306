"""The Jinja2 side of rendering: Readwise's template variables, its filters, and ours.

Readwise renders user templates server-side with Jinja2 plus Django-style `date` and `pluralize`
filters. syncd ships templates (syncd/templates/*.j2) that reproduce Readwise's defaults, one per
template slot Readwise has (page title, metadata, highlights header, highlight), and fills them
with the variables Readwise documents, so a user's own templates can be dropped in later.

How the variables map onto syncd's model:

    title                  Book.display_title (Readwise's tidied title)
    full_title             Book.title, or display_title when the API sent no title
    author, category, source, summary, document_note
                           the Book fields of the same name ("" when absent)
    url                    Book.source_url, else Book.unique_url
    image_url              Book.cover_image_url
    document_tags          Book.tags (list of names)
    book_id                Book.id
    published_date         "" (the export API does not carry it)
    last_highlighted_date  latest highlighted_at of the book's live highlights (datetime) or ""
    highlights_url         Book.readwise_url
    num_highlights         number of the book's live highlights
    date                   when the section was synced; prints in the vault's date style
                           (Logseq: the journal title format; Obsidian: "F j, Y"), and the
                           `date` filter accepts it
    time                   the same moment as "9:45 AM"
    is_new_page            True for the first section ("Highlights first synced by")
    has_new_highlights     True for later sections that hold highlights
    page_title             (syncd) the page's name, e.g. "<title> (highlights)" in Logseq

    highlight_text, highlight_note, highlight_id
                           Highlight.text / .note / .id
    highlight_tags         Highlight.tags (list of names)
    highlight_date         highlighted_at, printed like `date`, or "" when unknown
    highlight_location, highlight_location_url
        location_type "location" (Kindle)  "Location\u00a0N", linked to
                                          readwise.io/to_kindle?... only when the ASIN is known
        "page"                            "Page\u00a0N", linked only to the highlight's url
        "time_offset"                     "Time\u00a0H:MM:SS" (N seconds), the highlight's url
        anything else, with a url         "View Tweet" (tweets) / "View Highlight"
        anything else, without a url      no location at all
    The space after Location/Page/Time is U+00A0, as in every page Readwise wrote.

Highlight text is data in the context, never template source, so `{{` or `{%` in a highlight
prints as typed.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

import jinja2

from syncd.model import Book, Highlight
from syncd.notes.dates import format_clock, format_php_date

NBSP = "\u00a0"
KINDLE_OPEN_URL = "https://readwise.io/to_kindle?action=open&asin={asin}&location={location}"


class RenderedDate:
    """A moment that prints in the vault's date style but still works with `|date(...)`. The
    text is made only when a template prints it (most highlight dates never are)."""

    __slots__ = ("_local", "_moment", "_show", "_text", "_tz")

    def __init__(self, moment: datetime, show: Callable[[datetime], str]) -> None:
        self._moment = moment
        self._local: datetime | None = moment
        self._tz: tzinfo | None = None
        self._show = show
        self._text: str | None = None

    @classmethod
    def in_zone(
        cls, moment: datetime, show: Callable[[datetime], str], tz: tzinfo | None
    ) -> RenderedDate:
        """`moment` shown in `tz` (None: the system's zone), converted only when used: the
        conversion to the system's zone is slow, and most highlight dates never print."""
        rendered = cls(moment, show)
        rendered._local = None
        rendered._tz = tz
        return rendered

    @property
    def moment(self) -> datetime:
        if self._local is None:
            self._local = self._moment.astimezone(self._tz)
        return self._local

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._show(self.moment)
        return self._text

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RenderedDate) and (self.moment, self.text) == (
            other.moment,
            other.text,
        )

    def __hash__(self) -> int:
        return hash(self.moment)


# --- filters -------------------------------------------------------------------------------


def date_filter(value: object, fmt: str = "N j, Y") -> str:
    """Django's `date` filter (PHP letters); "" for values that are not dates, as Django does."""
    if isinstance(value, RenderedDate):
        value = value.moment
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return ""
    if isinstance(value, (date, datetime)):
        return format_php_date(value, fmt)
    return ""


def pluralize(value: object, suffixes: str = "s") -> str:
    """Django's `pluralize`: "" for 1, "s" otherwise; `pluralize("y,ies")` picks a pair. Lists
    count by length; anything that is neither number nor sized gives ""."""
    if "," not in suffixes:
        suffixes = "," + suffixes
    bits = suffixes.split(",")
    if len(bits) > 2:
        return ""
    singular, plural = bits
    try:
        return singular if float(value) == 1 else plural  # type: ignore[arg-type]
    except ValueError:
        return ""
    except TypeError:
        try:
            return singular if len(value) == 1 else plural  # type: ignore[arg-type]
        except TypeError:
            return ""


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def oneline(value: object) -> str:
    """A value that must stay on one line (H1, page property): each line break becomes a space."""
    return normalize_newlines(str(value)).replace("\n", " ")


def indent_lines(value: object, width: int) -> str:
    """Obsidian list-item text: blank lines dropped (as Readwise does), later lines indented by
    `width` spaces so they stay inside the item (2 for a highlight, 6 for its note)."""
    lines = [line for line in normalize_newlines(str(value)).split("\n") if line.strip()]
    return ("\n" + " " * width).join(lines)


# Logseq escaping. Readwise's plugin writes `\-` for a dash that starts a continuation line, so
# it does not become a new block. mldoc (Logseq's parser) also turns these continuation lines
# into something other than block text, so syncd escapes them with a backslash too, which
# Markdown renders as the bare character:
#   `# x` heading (a new block)          -> `\# x`
#   `key:: value` (a block property)     -> `key:\: value`
#   `:NAME:` drawer line (properties)    -> `\:NAME:`
# and these open multi-line constructs that run on into the following blocks until some later
# line closes them, so they are escaped wherever they start a line (also on the first line):
#   `$$`, `#+BEGIN_...`, `\begin{...}`, `<tag` / `<!--`, and a ``` or ~~~ fence that the text
#   itself does not close. Fences the text closes are kept (code stays code); inside them only
#   Readwise's dash escape applies.
_DASH = re.compile(r"^(\s*)-")
_HEADING = re.compile(r"^(\s*)(#+(?:\s|$))")
_PROPERTY = re.compile(r"^(\s*[^\s:]+:)(:(?:\s|$))")
_DRAWER = re.compile(r"^(\s*)(:[^\s:]+:\s*)$")
_FENCE = re.compile(r"^(\s*)(```|~~~)")
_OPENER = re.compile(r"^(\s*)(\$\$|#\+|\\begin\{|<[A-Za-z!/?])")


# First characters with which a line may open a construct (see the table above), or be blank
# after stripping (then the full check decides).
_LINE_START_RISKS = frozenset(":$#<\\`~ \t")


def _fenced_lines(lines: Sequence[str]) -> tuple[set[int], int | None]:
    """Indexes strictly inside closed fences, and the index of an unclosed fence, if any.
    mldoc closes a fence at the next ``` or ~~~ line, whichever it opened with."""
    fences = [index for index, line in enumerate(lines) if _FENCE.match(line)]
    inside: set[int] = set()
    for start, end in zip(fences[::2], fences[1::2], strict=False):
        inside.update(range(start + 1, end))
    unclosed = fences[-1] if len(fences) % 2 else None
    return inside, unclosed


def logseq_escape(content: str) -> str:
    """Block content that mldoc reads back as exactly this one block (see the table above)."""
    if "\n" not in content and "::" not in content and content[:1] not in _LINE_START_RISKS:
        return content  # one plain line (most highlights): nothing can start a construct
    lines = normalize_newlines(content).split("\n")
    inside, unclosed = _fenced_lines(lines)
    out: list[str] = []
    for index, line in enumerate(lines):
        if index > 0:
            line = _DASH.sub(r"\1\\-", line)
        if index == unclosed:
            line = _FENCE.sub(r"\1\\\2", line)
        elif index not in inside and not _FENCE.match(line):
            if index > 0:
                line = _HEADING.sub(r"\1\\\2", line)
            line = _PROPERTY.sub(r"\1\\\2", line)
            line = _DRAWER.sub(r"\1\\\2", line)
            line = _OPENER.sub(r"\1\\\2", line)
        out.append(line)
    return "\n".join(out)


def logseq_block(value: object, level: int) -> str:
    """One Logseq block as Logseq writes it: `level` tabs, `- `, the content; continuation
    lines at the same tabs plus two spaces (blank lines too); trimmed; ends with a newline."""
    text = str(value)
    if "\r" in text:
        text = normalize_newlines(text)
    content = logseq_escape(text.strip())
    indent = "\t" * level
    if "\n" not in content:  # most highlights: one line
        return f"{indent}- {content}\n" if content else f"{indent}-\n"
    first, *rest = content.split("\n")
    head = f"{indent}- {first}" if first else f"{indent}-"
    return head + "".join(f"\n{indent}  {line}" for line in rest) + "\n"


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment: templates from syncd/templates, no HTML escaping, undefined
    variables (and their attributes) print as ""."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("syncd", "templates"),
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.ChainableUndefined,
        # Templates ship with the package and never change while syncd runs: no stat per render.
        auto_reload=False,
    )
    env.filters.update(
        date=date_filter,
        pluralize=pluralize,
        oneline=oneline,
        indent_lines=indent_lines,
        logseq_block=logseq_block,
    )
    return env


@functools.cache
def _template(name: str) -> jinja2.Template:
    return environment().get_template(name)


@functools.cache
def _compiled(name: str) -> Callable[[Mapping[str, Any]], str] | None:
    """The hand-compiled default for `name` (syncd.notes.compiled), while the template file is
    still the one it mirrors; None sends the template through Jinja."""
    from syncd.notes.compiled import COMPILED  # imports this module's filters

    entry = COMPILED.get(name)
    if entry is None:
        return None
    digest, function = entry
    env = environment()
    assert env.loader is not None
    source, _filename, _uptodate = env.loader.get_source(env, name)
    return function if hashlib.sha256(source.encode("utf-8")).hexdigest() == digest else None


def render(template: str, context: Mapping[str, Any]) -> str:
    compiled = _compiled(template)
    if compiled is not None:
        return compiled(context)
    return render_jinja(template, context)


def render_jinja(template: str, context: Mapping[str, Any]) -> str:
    """Always through Jinja (the reference the compiled defaults are tested against)."""
    return _template(template).render(context)


# Rendering a highlight template once per highlight costs a Jinja context each time (most of a
# first pass); one render over the whole section, with a separator between highlights, gives the
# same text per highlight in a fraction of the time.
_SEPARATOR = "\x1e"  # ASCII record separator: never in Markdown a person writes
# A highlight's own template variables (highlight_heading_level is syncd's: 1-6 for a Reader
# heading highlight, a note of ".h1".."h6"; else 0).
HIGHLIGHT_VARIABLES = (
    "highlight_text",
    "highlight_location",
    "highlight_location_url",
    "highlight_note",
    "highlight_tags",
    "highlight_id",
    "highlight_date",
    "highlight_heading_level",
)


@functools.cache
def _looped(name: str) -> jinja2.Template:
    env = environment()
    assert env.loader is not None
    source, _filename, _uptodate = env.loader.get_source(env, name)
    bindings = ", ".join(f"{var}=rw_item.{var}" for var in HIGHLIGHT_VARIABLES)
    return env.from_string(
        "{% for rw_item in rw_items %}{% with "
        + bindings
        + " %}"
        + source
        + "{% endwith %}"
        + _SEPARATOR
        + "{% endfor %}"
    )


def _has_separator(value: object) -> bool:
    if isinstance(value, str):
        return _SEPARATOR in value
    if isinstance(value, list | tuple):
        return any(_has_separator(item) for item in value)
    return False  # numbers and dates never print the separator


def render_each(
    template: str, document: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
) -> list[str]:
    """`render(template, {**document, **item})` for every item, in one template render."""
    if not items:
        return []
    compiled = _compiled(template)
    if compiled is not None:
        return [compiled({**document, **item}) for item in items]
    return render_each_jinja(template, document, items)


def render_each_jinja(
    template: str, document: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
) -> list[str]:
    """`render_jinja(template, {**document, **item})` for every item, in one Jinja render."""
    if not items:
        return []
    if not any(_has_separator(value) for item in items for value in item.values()):
        parts = _looped(template).render({**document, "rw_items": items}).split(_SEPARATOR)
        if len(parts) == len(items) + 1:
            return parts[:-1]
    return [render_jinja(template, {**document, **item}) for item in items]


# --- context -------------------------------------------------------------------------------


def _clock_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def highlight_location(book: Book, highlight: Highlight) -> tuple[str, str]:
    """(label, url) of the highlight's location link; url "" means a bare `(label)`, and
    label "" means no location at all."""
    position = highlight.location
    if position is not None:
        if highlight.location_type == "location":
            if book.asin:
                return f"Location{NBSP}{position}", KINDLE_OPEN_URL.format(
                    asin=book.asin, location=position
                )
            return f"Location{NBSP}{position}", ""
        if highlight.location_type == "page":
            return f"Page{NBSP}{position}", highlight.url
        if highlight.location_type == "time_offset":
            return f"Time{NBSP}{_clock_text(position)}", highlight.url
    if highlight.url:
        return ("View Tweet" if book.category == "tweets" else "View Highlight"), highlight.url
    return "", ""


@dataclass(frozen=True, slots=True)
class DateStyle:
    """How one vault shows dates: the zone to show them in (None: the system's) and how a
    date prints bare (`{{date}}`)."""

    tz: tzinfo | None
    show: Callable[[datetime], str]

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def rendered(self, moment: datetime) -> RenderedDate:
        return RenderedDate.in_zone(moment, self.show, self.tz)


def document_context(
    book: Book,
    *,
    synced_at: datetime,
    is_new_page: bool,
    has_new_highlights: bool,
    style: DateStyle,
    page_title: str = "",
) -> dict[str, Any]:
    """Every document-level variable of Readwise's templates (see the module docstring)."""
    live = book.live_highlights()
    stamps = [h.highlighted_at for h in live if h.highlighted_at is not None]
    return {
        "title": book.display_title,
        "full_title": book.title or book.display_title,
        "author": book.author,
        "category": book.category,
        "url": book.source_url or book.unique_url,
        "image_url": book.cover_image_url,
        "document_tags": list(book.tags),
        "summary": book.summary,
        "document_note": book.document_note,
        "source": book.source,
        "book_id": book.id,
        "published_date": "",
        "last_highlighted_date": style.local(max(stamps)) if stamps else "",
        "highlights_url": book.readwise_url,
        "num_highlights": len(live),
        "date": style.rendered(synced_at),
        "time": format_clock(style.local(synced_at)),
        "is_new_page": is_new_page,
        "has_new_highlights": has_new_highlights,
        "page_title": page_title,
    }


def highlight_context(
    document: Mapping[str, Any], book: Book, highlight: Highlight, *, style: DateStyle
) -> dict[str, Any]:
    """The document's variables plus this highlight's."""
    return {**document, **highlight_variables(book, highlight, style=style)}


def heading_level(highlight: Highlight) -> int:
    """1-6 for a Reader heading highlight (its note is `.h1`..`.h6`), else 0."""
    note = highlight.note
    if len(note) > 8 or not note.strip().startswith(".h"):
        return 0
    marker = note.strip().lower()
    if len(marker) == 3 and marker[2] in "123456":
        return int(marker[2])
    return 0


def heading_text(highlight: Highlight, level: int) -> str:
    """A heading highlight as Readwise writes it between the bullets: `#### text`."""
    return "#" * level + " " + oneline(highlight.text).strip()


def highlight_variables(book: Book, highlight: Highlight, *, style: DateStyle) -> dict[str, Any]:
    """This highlight's own template variables."""
    label, url = highlight_location(book, highlight)
    stamp = highlight.highlighted_at
    level = heading_level(highlight)
    return {
        "highlight_text": highlight.text,
        "highlight_location": label,
        "highlight_location_url": url,
        # A heading's note is only its level marker.
        "highlight_note": "" if level else highlight.note,
        "highlight_tags": list(highlight.tags),
        "highlight_id": highlight.id,
        "highlight_date": style.rendered(stamp) if stamp is not None else "",
        "highlight_heading_level": level,
    }


def section_highlights(book: Book, highlight_ids: Sequence[int]) -> list[Highlight]:
    """The section's highlights that are still live, in reading order."""
    wanted = set(highlight_ids)
    return [h for h in book.live_highlights() if h.id in wanted]
