"""Block-level three-way merge of one page: base (what syncd last wrote) + theirs (the file now) +
ours (the new render), as a pure function over text.

Each highlight syncd wrote is remembered as a BlockRecord: the exact text of its block (the
highlight line(s) plus the Tags/Note child blocks syncd writes) as it stood in the file, and the
hash of syncd's render of the highlight at that time. In theirs a highlight's block is found again
by that exact text, then by a stable block id, then by its location link, then by the start of its
text. Then, per highlight:

    found unchanged, upstream unchanged         keep
    found unchanged, upstream changed           replace the block (child blocks the user added stay)
    found unchanged, deleted upstream           remove it (on_upstream_delete = "remove")
    found edited,    upstream changed           keep the user's text, report a conflict
    found edited,    deleted upstream           keep
    not found                                   the user deleted it: tombstone, never re-added
    new upstream                                appended in a new section (or, layout = "rewrite",
                                                put in reading order after its predecessor)

Page properties / metadata lines are merged per key the same way. Nothing else in theirs changes.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from syncd.notes.blockids import ID_LINE, with_id_lines
from syncd.notes.page import Block, Page, line_body, split_lines
from syncd.notes.parse_logseq import parse_logseq
from syncd.notes.parse_obsidian import parse_obsidian
from syncd.sync.dated_spans import common_head, span_patterns

Format = Literal["logseq", "obsidian"]


def render_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class BlockRecord:
    text: str  # the block as it stood in the file when syncd last wrote or adopted it
    render: str  # render_hash of syncd's own render of the highlight at that time


@dataclass(frozen=True, slots=True)
class Conflict:
    highlight_id: int
    theirs: str
    upstream: str


@dataclass(slots=True)
class MergeResult:
    text: str
    blocks: dict[int, BlockRecord]
    tombstones: frozenset[int]
    conflicts: list[Conflict] = field(default_factory=list)
    replaced: int = 0
    removed: int = 0
    added: tuple[int, ...] = ()
    metadata_updated: int = 0

    @property
    def blocks_affected(self) -> int:
        return self.replaced + self.removed + len(self.added) + self.metadata_updated


@dataclass(frozen=True, slots=True)
class Ours:
    """The new render, piece by piece."""

    head: str  # the page head (properties / title + metadata) as syncd renders it now
    blocks: dict[int, str]  # live highlight id -> its block text
    order: tuple[int, ...]  # live highlight ids in reading order
    block_ids: dict[int, str] = field(default_factory=dict)  # id -> "^rw123" / Logseq uuid
    # A user's highlight template: each highlight is the exact lines it rendered (SpanMatcher).
    spans: bool = False
    texts: dict[int, str] = field(default_factory=dict)  # id -> the highlight's own text
    # Adoption only: id -> the block rendered for another sync moment (dated_spans.PROBE_SHIFT
    # later); where it differs, the template printed the sync date.
    probe: dict[int, str] = field(default_factory=dict)


def parse(fmt: Format, text: str) -> Page:
    return parse_logseq(text) if fmt == "logseq" else parse_obsidian(text)


# --- finding blocks in a page ------------------------------------------------------------------

_OUR_CHILD = {
    "logseq": re.compile(r"^\*\*(?:Tags|Note)\*\*:"),
    "obsidian": re.compile(r"^(?:Tags|Note):"),
}
_HIGHLIGHT_KINDS = {"bullet", "list_item"}
_QUOTE = re.compile(r"^>(?![ \t]*\[!)")  # a blockquote, not a callout
_QUOTE_MARKS = re.compile(r"^>[ \t]?", re.MULTILINE)
_HEADING_MARK = re.compile(r"^#{1,6}[ \t]+")
_SECTION_HEADER = re.compile(
    r"^(?:#{1,6} (?:Highlights|New highlights added)|- (?:Highlights first synced by|"
    r"New highlights added))"
)


_SPACE = re.compile(r"\s+")
_ESCAPE = re.compile(r"\\([-#:$<`~\\*_\[\]])")
# `(?<!\s)`: a match may only start where a run of spaces starts; tried at every space of a long
# run, `\s*` made this quadratic (a pasted table's 100k spaces: minutes).
# Tags a template puts after the link (`#Highlight #[[2023-07-24]]`, a custom Logseq template)
# are part of the tail too.
_LINK_TAIL = re.compile(
    r"(?<!\s)\s*\((?:\[[^\]]*\]\([^)]*\)|Page[\u00a0 ]\d+)\)"
    r"(?:[ \t]+#(?:\[\[[^\]\n]*\]\]|[^\s#\[]+))*\s*(?:\^[\w-]+)?\s*$"
)


def _strip_blank_tail(lines: list[str]) -> int:
    """How many lines remain once trailing blank lines are dropped."""
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    return end


@dataclass(slots=True)
class Unit:
    """A highlight-like block in theirs: its own lines plus the Tags/Note children after it."""

    block: Block | None  # None: a span found by its text (SpanMatcher)
    start: int  # first line index in the page
    end: int  # one past its last non-blank line
    subtree_end: int  # one past the last non-blank line of the block and all its children
    text: str  # the unit's lines, trailing blank lines removed, ending with "\n"
    has_user_children: bool
    id_lines: tuple[str, ...] = ()  # Logseq `id::` lines (Logseq adds them for block references)
    # The block with all its children: in Obsidian a highlight's own continuation line that
    # starts with "- " ("  - and a second line") parses as a child item, so a whole highlight
    # can be a block plus children that are not Tags/Note.
    subtree_text: str = ""


def _without_ids(text: str) -> str:
    if "id:: " not in text:
        return text
    return "".join(line for line in split_lines(text) if not ID_LINE.match(line))


def _norm(text: str) -> str:
    text = text.rstrip("\n")
    return text + "\n" if text else ""


def _exact_key(text: str) -> str:
    """A block's text as compared for "untouched": spaces at line ends are no edit (Readwise's
    own append trims the page's end, which may be a Tags line ending in a space; editors and
    linters trim lines on save)."""
    return "".join(line.rstrip() + "\n" for line in split_lines(_norm(text)))


def find_units(page: Page, fmt: Format) -> tuple[list[str], list[Unit]]:
    """All lines of the page, and every block that could hold a highlight."""
    lines: list[str] = []
    starts: dict[int, int] = {}
    for block in page.walk():
        starts[id(block)] = len(lines)
        lines.extend(block.lines)
    units: list[Unit] = []
    child_re = _OUR_CHILD[fmt]
    metadata = _metadata_items(page) if fmt == "obsidian" else set()
    for block in page.walk():
        if not _highlight_like(block, fmt) or child_re.match(block.content):
            continue
        if id(block) in metadata:
            continue
        start = starts[id(block)]
        unit_lines = list(block.lines)
        ours = 0
        for child in block.children:
            if not child_re.match(child.content) or child.children:
                break
            unit_lines.extend(child.lines)
            ours += 1
        kept = _strip_blank_tail(unit_lines)
        # Blank lines closing the subtree stay after it: a block put after this one must not
        # land against the next paragraph (Markdown would make that its lazy continuation).
        subtree_lines = [line for b in block.walk() for line in b.lines]
        subtree = _strip_blank_tail(subtree_lines)
        own = unit_lines[:kept]
        id_lines = tuple(line for line in own[1 : len(block.lines)] if ID_LINE.match(line))
        units.append(
            Unit(
                block=block,
                start=start,
                end=start + kept,
                subtree_end=start + subtree,
                # Compared without `id::` lines: a reference made in Logseq is not an edit.
                text=_norm("".join(line for line in own if line not in id_lines)),
                has_user_children=len(block.children) > ours,
                id_lines=id_lines,
                subtree_text=_norm("".join(subtree_lines[:subtree])),
            )
        )
    return lines, units


def _highlight_like(block: Block, fmt: Format) -> bool:
    """A block that may hold a highlight: a list item or Logseq block, and what other templates
    use instead: a Logseq `### text` heading block (2020 Roam-style template) or an Obsidian
    `> text` blockquote (entries separated by `---`)."""
    if block.kind in _HIGHLIGHT_KINDS:
        return True
    if fmt == "logseq":
        return block.kind == "heading"
    return block.kind == "raw" and bool(_QUOTE.match(block.content))


def _metadata_items(page: Page) -> set[int]:
    """Obsidian: the list items under `## Metadata` (page metadata, not highlights)."""
    out: set[int] = set()
    for block in page.walk():
        if block.kind == "heading" and block.content.strip().lower() == "## metadata":
            out.update(id(b) for child in block.children for b in child.walk())
    return out


def head_end(page: Page, lines: list[str], units: list[Unit]) -> int:
    """Where the page head (title, properties, metadata) ends: at the first section header or
    the first highlight, whichever comes first."""
    end = min((u.start for u in units), default=len(lines))
    for index, line in enumerate(lines[:end]):
        if _SECTION_HEADER.match(line):
            return index
    return end


def _location_key(text: str, fmt: Format) -> str | None:
    page = parse(fmt, text)
    for block in page.walk():
        if block.kind in _HIGHLIGHT_KINDS:
            location = block.location()
            return None if location is None else location.text.replace("\u00a0", " ")
    return None


def _text_key(content: str) -> str:
    """The start of a highlight's words, whatever the template, escaping and spacing."""
    first = content.split("\n**Tags**")[0]
    first = _LINK_TAIL.sub("", first)
    first = _ESCAPE.sub(r"\1", first)
    first = _HEADING_MARK.sub("", _QUOTE_MARKS.sub("", first))
    first = first.lstrip("> ").replace("\u00a0", " ")
    return _SPACE.sub(" ", first).strip().casefold()[:80]


def _content_of(text: str, fmt: Format) -> str:
    page = parse(fmt, text)
    for block in page.walk():
        if block.kind in _HIGHLIGHT_KINDS:
            return block.content
    return text


class Matcher:
    """Finds each highlight's unit in theirs, each unit used at most once."""

    def __init__(self, units: list[Unit], fmt: Format) -> None:
        self.fmt = fmt
        self.units = units
        self.used: set[int] = set()
        self._by_text: dict[str, list[int]] = {}
        self._by_location: dict[str, list[int]] = {}
        self._by_words: dict[str, list[int]] = {}
        self._by_id: dict[str, list[int]] = {}
        self._by_subtree: dict[str, list[int]] = {}
        for index, unit in enumerate(units):
            assert unit.block is not None
            self._by_text.setdefault(_exact_key(unit.text), []).append(index)
            if unit.has_user_children:
                self._by_subtree.setdefault(_exact_key(unit.subtree_text), []).append(index)
            location = unit.block.location()
            if location is not None:
                key = location.text.replace("\u00a0", " ")
                self._by_location.setdefault(key, []).append(index)
            words = _text_key(unit.block.content)
            if len(words) >= 12:
                self._by_words.setdefault(words, []).append(index)
            for block_id in (unit.block.block_id(), unit.block.logseq_id()):
                if block_id:
                    self._by_id.setdefault(block_id, []).append(index)

    def _take(self, candidates: list[int] | None, *, unique: bool) -> Unit | None:
        free = [i for i in candidates or [] if i not in self.used]
        if not free or (unique and len(free) > 1):
            return None
        self.used.add(free[0])
        return self.units[free[0]]

    def exact(self, text: str) -> Unit | None:
        key = _exact_key(_without_ids(text))
        found = self._take(self._by_text.get(key), unique=False)
        if found is not None or key not in self._by_subtree:
            return found
        whole = self._take(self._by_subtree[key], unique=False)
        if whole is None:
            return None
        # The highlight is the block with all its children: those are no units of their own.
        for index, unit in enumerate(self.units):
            if whole.start < unit.start < whole.subtree_end:
                self.used.add(index)
        return replace(
            whole, end=whole.subtree_end, text=whole.subtree_text, has_user_children=False
        )

    def replacement(self, upstream: str) -> str:
        return _norm(upstream)

    def fuzzy(self, reference: str, block_id: str | None, words: str = "") -> Unit | None:
        """By stable id, then location link, then the start of the words (each unambiguous)."""
        if block_id:
            found = self._take(self._by_id.get(block_id), unique=True)
            if found is not None:
                return found
        location = _location_key(reference, self.fmt)
        if location is not None:
            found = self._take(self._by_location.get(location), unique=True)
            if found is not None:
                return found
        words = _text_key(_content_of(reference, self.fmt))
        if len(words) >= 12:
            return self._take(self._by_words.get(words), unique=True)
        return None


class SpanMatcher:
    """Finds highlights a user's template rendered (quotes, callouts, separators, headings: any
    shape). A highlight is the exact run of lines its template gave, blank lines at either end
    aside and Logseq `id::` lines skipped, wherever it stands in the page. One not found exactly is
    looked for by its block id, its link or its words, only to tell a highlight the user edited
    (kept as theirs, never rewritten) from one they deleted."""

    def __init__(self, lines: list[str], fmt: Format) -> None:
        self.fmt = fmt
        self.lines = lines
        self.used = [False] * len(lines)
        self._keep = [i for i, line in enumerate(lines) if not ID_LINE.match(line)]
        self._keys = [line_body(lines[i]).rstrip() for i in self._keep]
        self._by_first: dict[str, list[int]] = {}
        self._sorted: list[tuple[str, int]] | None = None  # see _dated_candidates
        for position, key in enumerate(self._keys):
            if key:
                self._by_first.setdefault(key, []).append(position)

    def replacement(self, upstream: str) -> str:
        return "".join(_core_lines(upstream))

    def _unit(self, start: int, end: int, text: str) -> Unit:
        for index in range(start, end):
            self.used[index] = True
        ids = tuple(line for line in self.lines[start:end] if ID_LINE.match(line))
        children_end = self._children_end(start, end)
        subtree = "".join(self.lines[start:children_end])
        return Unit(
            block=None,
            start=start,
            end=end,
            subtree_end=children_end,
            text=_norm(text),
            has_user_children=children_end > end,
            id_lines=ids,
            subtree_text=_norm(subtree),
        )

    def _children_end(self, start: int, end: int) -> int:
        """One past the lines nested under the span's first line (a list item or Logseq
        block): what the user added as its children."""
        first = line_body(self.lines[start])
        body = first.lstrip(" \t")
        if not _LIST_MARK.match(body):
            return end
        width = len(first[: len(first) - len(body)].expandtabs(4))
        index, last = end, end
        while index < len(self.lines):
            line = line_body(self.lines[index])
            if line.strip():
                stripped = line.lstrip(" \t")
                if len(line[: len(line) - len(stripped)].expandtabs(4)) <= width:
                    break
                last = index + 1
            index += 1
        return last

    def exact(self, text: str) -> Unit | None:
        core = _core_lines(_without_ids(text))
        if not core:
            return None
        want = [line_body(line).rstrip() for line in core]
        for position in self._by_first.get(want[0], ()):
            stop = position + len(want)
            if self._keys[position:stop] != want:
                continue
            start, end = self._keep[position], self._keep[stop - 1] + 1
            while end < len(self.lines) and ID_LINE.match(self.lines[end]):
                end += 1  # the id Logseq gave the span's last block
            if any(self.used[start:end]):
                continue
            return self._unit(start, end, "".join(core))
        return None

    def dated(self, text: str, probe: str) -> Unit | None:
        """The highlight as its template rendered it on another day: the run of lines equal
        to `text` except where `text` and `probe` (the same render for another moment) differ."""
        core = _core_lines(_without_ids(text))
        patterns = span_patterns(
            [line_body(line).rstrip() for line in core],
            [line_body(line).rstrip() for line in _core_lines(_without_ids(probe))],
        )
        if patterns is None:
            return None
        last = len(self._keys) - len(patterns)
        for position in self._dated_candidates(core, probe, last):
            keys = self._keys[position : position + len(patterns)]
            if not all(p.fullmatch(key) for p, key in zip(patterns, keys, strict=True)):
                continue
            start, end = self._keep[position], self._keep[position + len(patterns) - 1] + 1
            while end < len(self.lines) and ID_LINE.match(self.lines[end]):
                end += 1
            if any(self.used[start:end]):
                continue
            own = "".join(line for line in self.lines[start:end] if not ID_LINE.match(line))
            return self._unit(start, end, own)
        return None

    def _dated_candidates(self, core: list[str], probe: str, last: int) -> Iterable[int]:
        """Where a dated span may start: only lines that begin as its first line begins in
        both renders (found by bisecting the page's sorted lines: a page may hold thousands of
        highlights), or every line when they share no beginning."""
        first = line_body(core[0]).rstrip()
        other = _core_lines(_without_ids(probe))
        head = common_head(first, line_body(other[0]).rstrip() if other else "")
        if not head:
            return range(last + 1)
        if self._sorted is None:
            self._sorted = sorted((key, position) for position, key in enumerate(self._keys))
        found = []
        index = bisect.bisect_left(self._sorted, (head, -1))
        while index < len(self._sorted) and self._sorted[index][0].startswith(head):
            if self._sorted[index][1] <= last:
                found.append(self._sorted[index][1])
            index += 1
        return sorted(found)

    def fuzzy(self, reference: str, block_id: str | None, words: str = "") -> Unit | None:
        free = [i for i, used in enumerate(self.used) if not used]
        if block_id:
            for index in free:
                if block_id in self.lines[index]:
                    return self._unit(index, index + 1, self.lines[index])
        for url in _LINK_URL.findall(reference):
            holding = [i for i in free if url in self.lines[i]]
            if len(holding) == 1:  # Kindle neighbours may share one location link
                return self._unit(holding[0], holding[0] + 1, self.lines[holding[0]])
        key = _loose(words.split("\n", 1)[0])[:60].strip()
        if len(key) >= 12:
            for index in free:
                if key in _loose(self.lines[index]):
                    return self._unit(index, index + 1, self.lines[index])
        return None

    def head_end(self, found: Sequence[Unit]) -> int:
        """The page head ends where the first highlight found begins (no metadata merge when
        none is found)."""
        return min((unit.start for unit in found), default=0)


_LIST_MARK = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_LINK_URL = re.compile(r"\]\(([^()\s]+)\)")
_QUOTE_OR_ITEM = re.compile(r"^(?:[ \t]*(?:>|[-*+](?=[ \t])|#{1,6}(?=[ \t])))+")


def _loose(text: str) -> str:
    """Text compared for "the same words": marks, escapes and spacing ignored."""
    text = _ESCAPE.sub(r"\1", _QUOTE_OR_ITEM.sub("", text.replace("\u00a0", " ")))
    return _SPACE.sub(" ", text).strip().casefold()


def _core_lines(text: str) -> list[str]:
    """`text`'s lines (with their endings), without blank lines at either end."""
    lines = split_lines(_norm(text))
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


# --- metadata --------------------------------------------------------------------------------

_LOGSEQ_PROPERTY = re.compile(r"^([A-Za-z0-9_-]+):: ")
_OBSIDIAN_META = re.compile(r"^- ([A-Za-z][A-Za-z ]*): ")
_OBSIDIAN_TITLE = re.compile(r"^# ")
_COVER = re.compile(r"^!\[(?:rw-book-cover)?\]\(")


def _head_key(line: str, fmt: Format) -> str | None:
    if fmt == "logseq":
        match = _LOGSEQ_PROPERTY.match(line)
        if match:
            return match[1].lower()
    else:
        match = _OBSIDIAN_META.match(line)
        if match:
            return "meta:" + match[1].lower()
        if _OBSIDIAN_TITLE.match(line):
            return "title"
    if _COVER.match(line):
        return "cover"
    return None


def _keyed_lines(head: str, fmt: Format) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.split("\n"):
        key = _head_key(line, fmt)
        if key is not None and key not in out:
            out[key] = line
    return out


def _merge_head(
    lines: list[str], head_end: int, base_head: str, ours_head: str, fmt: Format
) -> int:
    """Update, in place, head lines the user left as syncd wrote them; returns lines changed."""
    base = _keyed_lines(base_head, fmt)
    ours = _keyed_lines(ours_head, fmt)
    changed = 0
    last_keyed = -1
    seen: set[str] = set()
    for index in range(head_end):
        body = line_body(lines[index])  # a CRLF file's lines compare without their "\r"
        key = _head_key(body, fmt)
        if key is None:
            continue
        last_keyed = index
        seen.add(key)
        if key in base and body == base[key] and ours.get(key) != body:
            ending = lines[index][len(body) :]
            lines[index] = (ours[key] + ending) if key in ours else ""
            changed += 1
    additions = [ours[k] for k in ours if k not in base and k not in seen]
    if additions and last_keyed >= 0 and fmt == "logseq":
        lines[last_keyed] = lines[last_keyed] + "".join(a + "\n" for a in additions)
        changed += len(additions)
    return changed


# --- the merge -------------------------------------------------------------------------------


def merge_page(
    *,
    fmt: Format,
    theirs: str,
    base_head: str | None,
    blocks: dict[int, BlockRecord],
    tombstones: frozenset[int],
    ours: Ours,
    append_section: Callable[[str, Sequence[int]], str],
    on_upstream_delete: Literal["remove", "keep"] = "remove",
    layout: Literal["append", "rewrite"] = "append",
    resync_deleted: bool = False,
    rebase: bool = False,
) -> MergeResult:
    """Merge `ours` into `theirs` per block; see the module docstring for the rules.

    `append_section(text, ids)` returns `text` with a new section holding those highlights.
    `rebase`: the target's templates changed, so every render differs: blocks in theirs stay as
    they are and only take the new render as their upstream state (new highlights still come).
    """
    page = parse(fmt, theirs)
    lines, units = find_units(page, fmt)
    matcher: Matcher | SpanMatcher = SpanMatcher(lines, fmt) if ours.spans else Matcher(units, fmt)
    edits: dict[int, tuple[int, str]] = {}  # start line -> (end line, replacement)
    inserts: dict[int, list[str]] = {}  # insert before line -> texts
    new_blocks: dict[int, BlockRecord] = {}
    new_tombstones = set(tombstones)
    result = MergeResult(text=theirs, blocks=new_blocks, tombstones=frozenset())
    found: dict[int, Unit] = {}

    # 1. exact matches first, so a fuzzy match never steals a block that is someone's exact twin
    for hid, record in blocks.items():
        unit = matcher.exact(record.text)
        if unit is not None:
            found[hid] = unit
    edited: set[int] = set()
    for hid, record in blocks.items():
        if hid in found:
            continue
        unit = matcher.fuzzy(record.text, ours.block_ids.get(hid), ours.texts.get(hid, ""))
        if unit is not None:
            found[hid] = unit
            edited.add(hid)

    for hid, record in blocks.items():
        unit = found.get(hid)
        upstream = ours.blocks.get(hid)
        if unit is None:
            if resync_deleted and upstream is not None:
                continue  # re-added below as new
            new_tombstones.add(hid)  # the user deleted it: stays deleted
            continue
        if rebase and upstream is not None:
            new_blocks[hid] = replace(record, render=render_hash(upstream))
            continue
        if hid in edited:
            if upstream is not None and render_hash(upstream) != record.render:
                result.conflicts.append(Conflict(hid, unit.text, upstream))
            new_blocks[hid] = record  # still the base: the user's edit stays "theirs"
            continue
        if upstream is None:  # deleted or discarded upstream, block untouched here
            if on_upstream_delete == "remove" and not unit.has_user_children:
                edits[unit.start] = (unit.end, "")
                result.removed += 1
            else:
                new_blocks[hid] = record
            continue
        if render_hash(upstream) != record.render:
            edits[unit.start] = (
                unit.end,
                with_id_lines(matcher.replacement(upstream), unit.id_lines),
            )
            new_blocks[hid] = BlockRecord(_norm(upstream), render_hash(upstream))
            result.replaced += 1
        else:
            new_blocks[hid] = record

    # 2. highlights new to this page
    fresh = [
        hid
        for hid in ours.order
        if hid not in blocks and (hid not in new_tombstones or resync_deleted)
    ]
    if resync_deleted:
        fresh += [hid for hid in ours.order if hid in blocks and hid not in found]
        new_tombstones -= set(fresh)
        fresh = [hid for hid in ours.order if hid in set(fresh)]
    appended: list[int] = []
    if layout == "rewrite":
        for hid in fresh:
            anchor = _anchor(hid, ours.order, found, edits)
            if anchor is None:
                appended.append(hid)
                continue
            inserts.setdefault(anchor, []).append(_norm(ours.blocks[hid]))
            new_blocks[hid] = BlockRecord(_norm(ours.blocks[hid]), render_hash(ours.blocks[hid]))
    else:
        appended = fresh

    # 3. metadata in the head (everything before the first highlight-like block)
    if base_head is not None:
        if isinstance(matcher, SpanMatcher):
            end = matcher.head_end(list(found.values()))
        else:
            end = head_end(page, lines, units)
        result.metadata_updated = _merge_head(lines, end, base_head, ours.head, fmt)

    # 4. splice, bottom up, keeping theirs' final-newline convention
    for start in sorted(set(edits) | set(inserts), reverse=True):
        if start in edits:
            end, replacement = edits[start]
            lines[start:end] = [replacement] if replacement else []
        if start in inserts:
            if start > 0 and not lines[start - 1].endswith("\n"):
                lines[start - 1] += "\n"  # the page's last line had no newline of its own
            lines[start:start] = inserts[start]
    text = "".join(lines)
    if theirs and not theirs.endswith("\n"):
        text = text.rstrip("\n")
    if appended:
        text = append_section(text, appended)
        for hid in appended:
            new_blocks[hid] = BlockRecord(_norm(ours.blocks[hid]), render_hash(ours.blocks[hid]))
    if _crlf_throughout(theirs):
        # Lines syncd adds or replaces take the file's own line ending, not a mix.
        text = _BARE_LF.sub("\r\n", text)
    result.text = text
    result.added = tuple(fresh)
    result.tombstones = frozenset(new_tombstones)
    return result


_BARE_LF = re.compile(r"(?<!\r)\n")


def _crlf_throughout(text: str) -> bool:
    """True when every line break in `text` is CRLF (the whole file saved by a Windows editor)."""
    breaks = text.count("\n")
    return breaks > 0 and text.count("\r\n") == breaks


def _anchor(
    hid: int, order: Sequence[int], found: dict[int, Unit], edits: dict[int, tuple[int, str]]
) -> int | None:
    """The line before which a new highlight goes to keep reading order, if one can be found."""
    position = order.index(hid)
    for previous in reversed(order[:position]):
        unit = found.get(previous)
        if unit is not None:
            return unit.subtree_end
    for following in order[position + 1 :]:
        unit = found.get(following)
        if unit is not None:
            return unit.start
    return None


def adopt_blocks(*, fmt: Format, theirs: str, ours: Ours) -> tuple[dict[int, BlockRecord], int]:
    """For a file syncd did not write (e.g. by Readwise's own plugin): the highlights found in it,
    each recorded with the file's own block text as base and syncd's render as its upstream
    state, so nothing is rewritten until Readwise changes it. Returns (records, found count)."""
    page = parse(fmt, theirs)
    lines, units = find_units(page, fmt)
    matcher: Matcher | SpanMatcher = SpanMatcher(lines, fmt) if ours.spans else Matcher(units, fmt)
    records: dict[int, BlockRecord] = {}
    pending: list[int] = []
    for hid in ours.order:
        if hid not in ours.blocks:
            continue  # not in the sections rendered (e.g. new since): nothing to recognise
        unit = matcher.exact(ours.blocks[hid])
        if unit is None:
            pending.append(hid)
        else:
            records[hid] = BlockRecord(unit.text, render_hash(ours.blocks[hid]))
    if isinstance(matcher, SpanMatcher) and ours.probe:
        # A template that prints the sync date: the page shows Readwise's day, not today's.
        for hid in list(pending):
            probe = ours.probe.get(hid)
            unit = None if probe is None else matcher.dated(ours.blocks[hid], probe)
            if unit is not None:
                records[hid] = BlockRecord(unit.text, render_hash(ours.blocks[hid]))
                pending.remove(hid)
    for hid in pending:
        unit = matcher.fuzzy(ours.blocks[hid], ours.block_ids.get(hid), ours.texts.get(hid, ""))
        if unit is not None:
            # The block differs from syncd's render (another template, the user's nesting, a
            # `^block-id`): its base is syncd's render, so it counts as the user's version from
            # now on (an upstream edit is a conflict, never a rewrite in syncd's form).
            records[hid] = BlockRecord(_norm(ours.blocks[hid]), render_hash(ours.blocks[hid]))
    return records, len(records)
