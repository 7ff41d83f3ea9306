"""One page as the user left it, against the blocks syncd wrote there: the changes to send.

Each highlight syncd wrote is found again in the page only when that is certain: by its exact
block (then it is unchanged), by the stable block id syncd writes, by its own lines exactly as
syncd wrote them (only its Tags / Note children changed), or by its location link; each of the
last two only when exactly one block has it. A block found only by the start of its words, or
by a key two blocks share, is not certain: nothing of it is sent (listed as "not sent" with the
reason). A block that is gone was deleted by the user: deletions are never sent. List items
that match no highlight at the highlights' own level are new text typed into the page: never
sent either (only Readwise creates highlights).

Only Readwise's highlights are looked at: one from a device source (syncd.model.is_local_id) is
found, so its block is not taken for typed-in text, but nothing of it is ever sent.

A target with its own highlight template (`adapter.tracks_spans`) may give a block any shape
(and a Reader heading highlight is a heading, not a list item); the diff reads the default
shapes only. Such a block is diffed only when syncd's render of
Readwise's current data reads back as exactly that data (text, note, tags): then the template's
shape is one the diff reads. Otherwise an edit to it is listed as not sent (UNREADABLE), never
guessed at; typed-in text is not looked for either (a template may put anything between
highlights).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from syncd.model import Highlight, is_local_id
from syncd.notes.blockids import ID_LINE, stable_block_id
from syncd.notes.page import Block, line_body
from syncd.sync.merge import (
    BlockRecord,
    Format,
    Matcher,
    SpanMatcher,
    Unit,
    find_units,
    parse,
)
from syncd.writeback.diff import (
    BlockFields,
    Change,
    Field,
    FieldConflict,
    NotSent,
    block_fields,
    diff_highlight,
)

UNCERTAIN = "found only by the start of its words, not with certainty: not sent"
AMBIGUOUS = "two blocks in the page could be this highlight: not sent"
DELETED = "block not found (deleted, or edited past recognition): deletions are never sent"
TYPED = "a new highlight typed into the page: highlights are only created in Readwise"
UNREADABLE = (
    "changed in a block of your own highlight template, whose fields cannot be read with"
    " certainty: not sent (change it in Readwise)"
)


@dataclass(slots=True)
class PageScan:
    changes: list[Change] = field(default_factory=list)
    conflicts: list[FieldConflict] = field(default_factory=list)
    not_sent: list[NotSent] = field(default_factory=list)


def scan_page(
    *,
    fmt: Format,
    text: str,
    records: Mapping[int, BlockRecord],
    upstream: Mapping[int, str],
    upstream_texts: Mapping[int, str],
    enabled: Iterable[Field],
    tracks_spans: bool = False,
    highlights: Mapping[int, Highlight] | None = None,
) -> PageScan:
    """`records`: the blocks syncd wrote (highlight id -> BlockRecord); `upstream`: syncd's render
    of each highlight from Readwise's current data (missing: deleted or discarded there);
    `upstream_texts`: Readwise's raw highlight texts. `tracks_spans`: the page's blocks are
    tracked as spans (a user's highlight template, or heading highlights); `highlights`
    (Readwise's current data) then tells which of them the diff reads with certainty."""
    wanted: tuple[Field, ...] = tuple(enabled)
    out = PageScan()
    if not wanted or not records:
        return out
    lines, units = find_units(parse(fmt, text), fmt)
    matcher = Matcher(units, fmt)
    pending = [hid for hid, record in records.items() if matcher.exact(record.text) is None]
    matched: list[Unit] = [units[i] for i in matcher.used]
    spans = SpanMatcher(lines, fmt) if tracks_spans else None
    for hid in pending:
        record = records[hid]
        if is_local_id(hid):  # a device highlight: found (not typed-in text), never sent
            unit, problem = _certain(hid, record, units, matcher, fmt)
            if unit is None and problem is None:
                unit = matcher.fuzzy(record.text, stable_block_id(fmt, hid))
            matched += [unit] if unit is not None else []
            continue
        current = (highlights or {}).get(hid)
        if spans is not None and not _reads_back(fmt, upstream.get(hid), current):
            if spans.exact(record.text) is None:
                out.not_sent.append(NotSent(hid, UNREADABLE))
            continue  # as syncd wrote it, or not readable: nothing to send either way
        unit, problem = _certain(hid, record, units, matcher, fmt)
        if unit is None:
            if problem is None:
                fuzzy = matcher.fuzzy(record.text, stable_block_id(fmt, hid))
                problem = DELETED if fuzzy is None else UNCERTAIN
                if fuzzy is not None:
                    matched.append(fuzzy)
            out.not_sent.append(NotSent(hid, problem))
            continue
        matched.append(unit)
        result = diff_highlight(
            hid,
            fmt=fmt,
            base=record.text,
            mine=unit.text,
            upstream=upstream.get(hid),
            enabled=wanted,
            upstream_text=upstream_texts.get(hid),
        )
        out.changes += result.changes
        out.conflicts += result.conflicts
        out.not_sent += result.not_sent
    if not tracks_spans:
        out.not_sent += _typed(units, matcher, matched, fmt)
    return out


def _reads_back(fmt: Format, render: str | None, highlight: Highlight | None) -> bool:
    """syncd's render of a highlight reads back as the highlight's own text, note and tags."""
    if highlight is None:
        return render is None  # gone in Readwise: the diff says so without reading fields
    fields = block_fields(fmt, render) if render is not None else None
    if fields is None:
        return False
    truth = BlockFields(highlight.text.strip(), highlight.note.strip(), tuple(highlight.tags))
    read = BlockFields(fields.text.strip(), fields.note.strip(), fields.tags)
    return sorted(read.tags) == sorted(truth.tags) and (read.text, read.note) == (
        truth.text,
        truth.note,
    )


def _certain(
    hid: int, record: BlockRecord, units: list[Unit], matcher: Matcher, fmt: Format
) -> tuple[Unit | None, str | None]:
    """The unit that is certainly this highlight's, or (None, why not) / (None, None): not
    found by a certain key (try the words)."""
    free = [i for i in range(len(units)) if i not in matcher.used]
    block_id = stable_block_id(fmt, hid)
    blocks = {i: _block(units[i]) for i in free}
    by_id = [i for i in free if block_id in (blocks[i].block_id(), blocks[i].logseq_id())]
    if len(by_id) > 1:
        return None, AMBIGUOUS
    if by_id:
        matcher.used.add(by_id[0])
        return units[by_id[0]], None
    own = _own_lines(parse(fmt, record.text).walk())
    if own:
        by_own = [i for i in free if _own_lines(iter([blocks[i]])) == own]
        if len(by_own) == 1:  # the highlight's own lines as syncd wrote them: only children differ
            matcher.used.add(by_own[0])
            return units[by_own[0]], None
    base = block_fields(fmt, record.text)
    if base is None or not base.location:
        return None, None
    by_location = []
    for i in free:
        mine = block_fields(fmt, units[i].text)
        if mine is not None and mine.location == base.location:
            by_location.append(i)
    if len(by_location) > 1:
        return None, AMBIGUOUS
    if by_location:
        matcher.used.add(by_location[0])
        return units[by_location[0]], None
    return None, None


def _block(unit: Unit) -> Block:
    """The parsed block of a unit find_units gave (only SpanMatcher's units have none)."""
    if unit.block is None:
        raise ValueError("a span unit where a parsed block was expected")
    return unit.block


def _own_lines(blocks: Iterator[Block]) -> str:
    """The first highlight block's own lines (no children, no `id::` lines), ends trimmed."""
    for block in blocks:
        if block.kind in ("bullet", "list_item"):
            return "\n".join(
                line_body(line).rstrip() for line in block.lines if not ID_LINE.match(line)
            )
    return ""


def _typed(units: list[Unit], matcher: Matcher, matched: list[Unit], fmt: Format) -> list[NotSent]:
    """List items at the highlights' own level, after the first highlight, matching none."""
    if not matched:
        return []
    depth = min(_block(unit).depth for unit in matched)
    first = min(unit.start for unit in matched)
    out: list[NotSent] = []
    for index, unit in enumerate(units):
        if index in matcher.used or _block(unit).depth != depth or unit.start < first:
            continue
        if any(other.start < unit.start < other.subtree_end for other in matched):
            continue  # nested in a highlight's block (the user's own child item)
        words = _block(unit).content.split("\n", 1)[0].strip()[:80]
        out.append(NotSent(None, TYPED, mine=words))
    return out
