"""Export data recovered from a page Readwise's own plugin wrote: the Book (and its highlights)
that the Readwise export API would have sent for it, so adoption can be tested on real pages.

Each fixture is parsed with syncd's own lossless parsers, and each highlight block of the page's
template (tests/fixtures/README.md, L1-L9 and O1-O6) gives back what the API had: the text (link
tail removed, Logseq escapes undone), the location (`Location`/`Page`/`Time` + number, the ASIN of
a to_kindle link), the url of a `View Highlight`/`View Tweet` link, the note and the tags. Page
level fields come from `title::`/`full-title::`/`# `/`Full Title`, `author`, `category`/`media`/
`Category` and the Readwise folder the page sits in.

Headings of level 3-6 between an Obsidian page's highlights are Reader heading highlights (a note
of `.h3`..`.h6`: fixture obsidian/031). Not recovered as highlights, on purpose: everything a user
added (child blocks that are not Note/Tags, `#card` structure): they are not part of the template.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from syncd.adapters.logseq import LogseqAdapter
from syncd.model import Book, Highlight
from syncd.notes.page import Block, Location, Page, line_body
from syncd.notes.parse_logseq import parse_logseq
from syncd.notes.parse_obsidian import parse_obsidian

Fmt = Literal["obsidian", "logseq"]
FIXTURES = Path(__file__).parent / "fixtures"
BOOK_ID = 1
FIRST_HIGHLIGHT_ID = 5_000_001

_PREFIX = re.compile(r"^\d{3} ")
_ASIN = re.compile(r"[?&]asin=([^&)]+)")
_FOLDER_CATEGORY = {
    "Books": "books",
    "Articles": "articles",
    "Tweets": "tweets",
    "Podcasts": "podcasts",
    "Supplementals": "supplementals",
}
_LOGSEQ_HEADER = re.compile(
    r"^(?:#{1,6} )?(?:Highlights first synced by|New highlights added|\[\[Readwise\]\] \[\[|"
    r"Highlights$)"
)
_OBSIDIAN_HEADER = re.compile(r"^#{1,2} (?:Highlights|New highlights added)")
_READER_HEADING = re.compile(r"^(#{3,6}) ")
_LOGSEQ_OURS = re.compile(r"^\*\*(Note|Tags|Date)\*\*: ?")
_OBSIDIAN_OURS = re.compile(r"^(Note|Tags|See also): ?")
_ID_LINE = re.compile(r"^id:: \S+$")
_TAG_LOGSEQ = re.compile(r"#\[\[(.+?)\]\]|#([^\s#\[]+)")
_TAG_WIKI = re.compile(r"\[\[(.+?)\]\]")
_OBSIDIAN_BLOCK_ID = re.compile(r"\s*\^rw(\d+)\s*$")
_LOCATION_ONLY = re.compile(r"^\(\[[^\]]+\]\([^)]*\)\)$")


@dataclass
class Recovered:
    """One highlight as recovered from the page, before ids are given out."""

    text: str
    location: Location | None
    note: str = ""
    tags: list[str] = field(default_factory=list)
    readwise_id: int | None = None  # O3 `^rw<id>`: the highlight's own id


@dataclass(frozen=True)
class FixtureCase:
    name: str  # path under tests/fixtures
    fmt: Fmt
    vault_path: str  # where Readwise's plugin put the page, relative to the vault
    text: str
    book: Book
    adoptable: bool  # False: not a page of highlights (sync log, empty, full-document companion)

    @property
    def highlight_ids(self) -> list[int]:
        return [h.id for h in self.book.highlights]


# --- locations --------------------------------------------------------------------------------


def _clock_seconds(clock: str) -> int:
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def _highlight(book_id: int, hid: int, order: int, found: Recovered) -> Highlight:
    """The API's fields for one highlight, from the link Readwise rendered for it. A highlight
    with no Kindle/page/time position keeps its place in the page as its (Reader) offset."""
    location_type, position, url = "offset", order, ""
    link = found.location
    if link is not None:
        kind, _, value = link.label.replace("\u00a0", " ").partition(" ")
        url = link.url or ""
        if kind == "Location":  # the to_kindle link is rebuilt from the book's ASIN
            location_type, position, url = "location", int(value), ""
        elif kind == "Page":
            location_type, position = "page", int(value)
        elif kind == "Time":
            location_type, position = "time_offset", _clock_seconds(value)
    return Highlight(
        id=hid,
        book_id=book_id,
        text=found.text,
        note=found.note,
        location=position,
        location_type=location_type,
        url=url,
        tags=tuple(found.tags),
    )


def _strip_location(content: str, location: Location | None) -> str:
    if location is None:
        return content
    cut = content.rfind(location.text)
    return content[:cut].rstrip(" ") if cut >= 0 else content


# --- Logseq ------------------------------------------------------------------------------------


def _logseq_text(content: str) -> str:
    """Block content → highlight text: without `id::` lines, Readwise's `\\-` escape undone."""
    lines = [line for line in content.split("\n") if not _ID_LINE.match(line.strip())]
    text = "\n".join(lines).replace("\\-", "-")
    return text


def _logseq_ours(block: Block, found: Recovered) -> bool:
    """Attach a `**Note**:` / `**Tags**:` / `**Date**:` child to its highlight."""
    match = _LOGSEQ_OURS.match(block.content)
    if match is None:
        return False
    value = block.content[match.end() :]
    if match[1] == "Note":
        found.note = value
    elif match[1] == "Tags":
        found.tags = [a or b for a, b in _TAG_LOGSEQ.findall(value)]
    return True


def _logseq_highlights(page: Page, text: str) -> list[Recovered]:
    top = [b for b in page.blocks if b.kind not in ("pre", "front_matter")]
    if any(b.content == "-" for b in page.walk()):
        return _logseq_flashcards(page)
    if "#Readwise [[" in text and "\t - " in text:
        return _logseq_old_style(text)
    headers = [b for b in top if _LOGSEQ_HEADER.match(b.content)]
    found: list[Recovered] = []
    if not headers:  # L6 v3: top-level `- > text` blocks, no sync header
        for block in top:
            if block.content.startswith("> "):
                found.append(_logseq_recovered(block, block.content[2:]))
        return found
    for header in headers:
        for block in header.children if header.kind == "bullet" else []:
            found.extend(_logseq_section_item(block))
    # L4: `## New highlights added` headings, each highlight a `###` heading block
    for block in page.walk():
        if block.kind == "heading" and block.content.startswith("### "):
            found.append(_logseq_recovered(block, block.content[4:]))
    return found


def _logseq_recovered(block: Block, content: str) -> Recovered:
    location = block.location()
    found = Recovered(_logseq_text(_strip_location(content, location)), location)
    for child in block.children:
        _logseq_ours(child, found)
    return found


def _logseq_section_item(block: Block) -> list[Recovered]:
    """A depth-1 block of a sync section is a highlight (fences and covers aside); deeper blocks
    are the user's, unless they carry a location link (a highlight the user re-nested)."""
    content = block.content
    if content.startswith("```"):  # L9: the ```md / ``` fence blocks around each highlight
        return []
    # L6 v2 writes each highlight as a quote: `→- > text`
    found = [_logseq_recovered(block, content.removeprefix("> "))]
    for child in block.walk():
        if child is block or _LOGSEQ_OURS.match(child.content):
            continue
        if child.location() is not None and not _LOCATION_ONLY.match(child.content):
            found.append(_logseq_recovered(child, child.content))
    return found


def _logseq_old_style(text: str) -> list[Recovered]:
    """L3: `\\t - text` starts a highlight; its lines run to the next blank line, unindented
    continuation lines included (mldoc splits such a tweet into several blocks)."""
    found: list[Recovered] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("\t - "):
            index += 1
            continue
        body = [line[len("\t - ") :]]
        index += 1
        note = ""
        while index < len(lines) and lines[index].strip():
            if lines[index].startswith("\t\t - **Note**: "):
                note = lines[index][len("\t\t - **Note**: ") :]
            elif lines[index].startswith("\t - "):
                break
            else:
                body.append(lines[index].removeprefix("\t  "))
            index += 1
        content = "\n".join(body).rstrip()
        location = parse_logseq("- " + content.split("\n")[-1]).blocks[0].location()
        found.append(Recovered(_logseq_text(_strip_location(content, location)), location, note))
    return found


def _logseq_flashcards(page: Page) -> list[Recovered]:
    """L8: each highlight sits in a `- -` separator group, its link in a block of its own; the
    text is the block before the link (or, when the user put a question above it, its child)."""
    found: list[Recovered] = []
    for group in page.walk():
        if group.content != "-":
            continue
        kids = group.children
        for index, block in enumerate(kids):
            location = block.location()
            if location is None or not _LOCATION_ONLY.match(block.content) or index == 0:
                continue
            holder = kids[index - 1]
            texts = [c for c in holder.children if not c.content.startswith("tags::")]
            source = texts[0] if texts else holder
            content = _logseq_text(source.content).removesuffix(" #flashcard").rstrip()
            found.append(Recovered(content, location))
    return found


_OLD_PROPERTY = re.compile(r"^(?:- |#{1,6} )(Author|Full Title|Category|URL):: (.*)$", re.MULTILINE)


def _logseq_book_fields(page: Page, text: str) -> dict[str, str]:
    props = {k.lower(): v for k, v in page.properties.items()}
    for key, value in _OLD_PROPERTY.findall(text):  # L3 `- Author::` / L4 `## Author::` blocks
        props.setdefault({"Full Title": "full-title"}.get(key, key.lower()), value)
    title = props.get("full-title", "").strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    if not title:
        title = props.get("title", "").removesuffix(" (highlights)")
    category = props.get("category") or props.get("media") or ""
    return {
        "title": title.replace("\\#", "#"),
        "author": _unlink(props.get("author", "")),
        "category": category.strip().strip("#[]").lower(),
        "source_url": props.get("url", "").replace("\\-", "-"),
    }


# --- Obsidian ----------------------------------------------------------------------------------


def _obsidian_text(block: Block, ours: set[int]) -> str:
    """The item's text as Readwise's `indent_lines(2)` wrote it: own lines, and nested items that
    are continuation lines (not Tags/Note), each without the two-space indent."""
    lines: list[str] = []
    for node in block.walk():
        if id(node) in ours:
            continue
        lines.extend(line_body(line) for line in node.lines)
    body = [lines[0][len(block.indent) + len(block.marker) :]]
    body += [line.removeprefix("  ") for line in lines[1:] if line.strip()]
    return "\n".join(body).rstrip()


def _obsidian_ours(block: Block, found: Recovered) -> bool:
    match = _OBSIDIAN_OURS.match(block.content)
    if match is None:
        return False
    value = block.content[match.end() :]
    if match[1] == "Note":
        found.note = value
    else:
        found.tags = _TAG_WIKI.findall(value)
    return True


def _obsidian_highlights(page: Page) -> list[Recovered]:
    found: list[Recovered] = []
    in_highlights = False
    for block in page.walk():
        if block.kind == "heading":
            if _OBSIDIAN_HEADER.match(block.content):
                in_highlights = True
            elif in_highlights and (level := _READER_HEADING.match(block.content)):
                # A Reader heading highlight, written as a heading between the bullets.
                text = block.content[level.end() :]
                found.append(Recovered(text, None, note=f".h{len(level[1])}"))
            continue
        if not in_highlights:
            continue
        if block.kind == "raw" and block.content.startswith(">"):  # O4 blockquote
            found.append(_obsidian_quote(block))
        elif block.kind == "raw" and block.content.startswith("Note: ") and found:
            found[-1].note = block.content[len("Note: ") :]
        elif block.kind == "list_item" and not block.indent:
            if found and _OBSIDIAN_OURS.match(block.content):  # O3: Tags/Note as siblings
                _obsidian_ours(block, found[-1])
                continue
            ours = {id(c) for c in block.children if _OBSIDIAN_OURS.match(c.content)}
            ours = {id(n) for c in block.children if id(c) in ours for n in c.walk()}
            text = _obsidian_text(block, ours)
            location = parse_obsidian(text.split("\n")[-1]).blocks[0].location()
            readwise_id = _OBSIDIAN_BLOCK_ID.search(text)
            if readwise_id:
                text = text[: readwise_id.start()]
            item = Recovered(_strip_location(text, location), location)
            item.readwise_id = int(readwise_id[1]) if readwise_id else None
            for child in block.children:
                _obsidian_ours(child, item)
            found.append(item)
    return found


def _obsidian_quote(block: Block) -> Recovered:
    lines = [line.removeprefix(">").removeprefix(" ") for line in block.content.split("\n")]
    lines = [line.removeprefix("  ") for line in lines]
    text = "\n".join(lines).rstrip()
    location = parse_obsidian("- " + text.split("\n")[-1]).blocks[0].location()
    return Recovered(_strip_location(text, location), location)


def _obsidian_book_fields(page: Page, stem: str, folder: str) -> dict[str, str]:
    props = {k.lower(): v for k, v in page.properties.items()}
    title = props.get("full title", "") or props.get("title", "")
    h1 = next((b.content for b in page.walk() if b.kind == "heading" and b.level == 1), "")
    if not title and h1 and not _OBSIDIAN_HEADER.match("#" + h1):
        title = h1.removeprefix("# ")
    category = _FOLDER_CATEGORY.get(folder, props.get("category", "").strip("#").lower())
    return {
        "title": title or stem,
        "author": _unlink(props.get("author", "")),
        "category": category,
        "source_url": props.get("url", "").strip("<>"),
    }


# --- cases -------------------------------------------------------------------------------------


def _unlink(value: str) -> str:
    value = value.strip()
    return value[2:-2] if value.startswith("[[") and value.endswith("]]") else value


def _dedupe(found: list[Recovered]) -> list[Recovered]:
    """A highlight Readwise synced more than once (the same text and link) is one highlight."""
    seen: set[tuple[str, str]] = set()
    out: list[Recovered] = []
    for item in found:
        key = (item.text, item.location.text if item.location else "")
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _readwise_paths() -> dict[str, str]:
    with (FIXTURES / "SOURCES.tsv").open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {row["file"]: row["path"] for row in rows}


def _is_sync_log(text: str) -> bool:
    return bool(re.search(r"^## On \[\[[^\]]+\]\] at .* Readwise synced ", text, re.MULTILINE))


def load_case(name: str) -> FixtureCase:
    source = FIXTURES / name
    text = source.read_text(encoding="utf-8")
    file_name = _PREFIX.sub("", source.name)
    fmt: Fmt = (
        "logseq" if name.startswith("logseq/") or name.startswith("readwise-") else "obsidian"
    )
    if fmt == "logseq":
        page = parse_logseq(text)
        fields = _logseq_book_fields(page, text)
        found = [] if _is_sync_log(text) else _logseq_highlights(page, text)
        if name.startswith("readwise-"):
            file_name = LogseqAdapter().file_name(page.properties["title"])
        vault_path = f"pages/{file_name}"
    else:
        readwise_path = _readwise_paths()[name]
        vault_path = readwise_path[readwise_path.index("Readwise/") :]
        folder = vault_path.split("/")[1]
        page = parse_obsidian(text)
        fields = _obsidian_book_fields(page, Path(file_name).stem, folder)
        found = _obsidian_highlights(page)
    if not fields["category"]:
        links = " ".join(f.location.label for f in found if f.location)
        fields["category"] = (
            "books" if "Location" in links else "tweets" if "View Tweet" in links else "articles"
        )
    found = _dedupe(found)
    asin = next(
        (m[1] for f in found if f.location and (m := _ASIN.search(f.location.url or ""))), ""
    )
    highlights = [
        _highlight(BOOK_ID, item.readwise_id or FIRST_HIGHLIGHT_ID + n, n, item)
        for n, item in enumerate(found)
    ]
    book = Book(
        id=BOOK_ID,
        title=fields["title"],
        author=fields["author"],
        category=fields["category"],
        source_url=fields["source_url"],
        asin=asin,
        highlights=tuple(highlights),
    )
    if not highlights and "/Full Document Contents/" in f"/{vault_path}":
        # The companion of a highlights page: the book is that page's book.
        main = vault_path.replace("Full Document Contents/", "")
        paths = _readwise_paths()
        sibling = next(n for n, p in paths.items() if p.endswith(main) and n != name)
        book = load_case(sibling).book
    return FixtureCase(name, fmt, vault_path, text, book, adoptable=bool(highlights))


def fixture_names() -> list[str]:
    names = [f"logseq/{p.name}" for p in sorted((FIXTURES / "logseq").glob("*.md"))]
    names += [f"obsidian/{p.name}" for p in sorted((FIXTURES / "obsidian").glob("*.md"))]
    return [*names, "readwise-logseq-tweet-thread.md"]
