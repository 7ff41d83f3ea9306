"""Finding each highlight of a page with certainty before anything of it is sent
(syncd.writeback.scan): by its exact block, its block id, its own lines, or a location link
only one block has; never by the start of its words; deletions and typed-in highlights are
listed, never sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncd.adapters.base import Adapter, Section
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.model import Book, Highlight
from syncd.sync.merge import BlockRecord, Format, render_hash
from syncd.writeback.diff import Change
from syncd.writeback.scan import AMBIGUOUS, DELETED, TYPED, UNCERTAIN, PageScan, scan_page

WHEN = datetime(2023, 2, 1, 9, 45, tzinfo=UTC)
ALL = ("note", "tags", "text")


def book(*highlights: Highlight, category: str = "books") -> Book:
    return Book(id=1, title="T", author="A", category=category, highlights=highlights)


def hl(hid: int, text: str, **fields: Any) -> Highlight:
    values: dict[str, Any] = {"location": hid, "location_type": "location"}
    values.update(fields)
    return Highlight(id=hid, book_id=1, text=text, **values)


def page(adapter: Adapter, b: Book) -> tuple[str, dict[int, BlockRecord], dict[int, str]]:
    parts = adapter.render_parts(
        b, (Section("first", WHEN, tuple(h.id for h in b.highlights)),), "T"
    )
    records = {
        hid: BlockRecord(block.rstrip("\n") + "\n", render_hash(block))
        for hid, block in parts.blocks.items()
    }
    return parts.text, records, dict(parts.blocks)


def scan(
    fmt: Format, text: str, records: dict[int, BlockRecord], upstream: dict[int, str]
) -> PageScan:
    return scan_page(
        fmt=fmt, text=text, records=records, upstream=upstream, upstream_texts={}, enabled=ALL
    )


TWO = book(
    hl(1, "The first highlight, long enough to be told apart from the rest."),
    hl(2, "The second highlight, also long enough to be told apart by its words."),
)


def test_an_untouched_page_sends_nothing() -> None:
    for fmt, adapter in (("obsidian", ObsidianAdapter()), ("logseq", LogseqAdapter())):
        text, records, upstream = page(adapter, TWO)
        assert scan(fmt, text, records, upstream) == PageScan()  # type: ignore[arg-type]


def test_a_note_under_a_highlight_without_link_or_id_is_found_by_its_own_line() -> None:
    b = book(
        Highlight(id=1, book_id=1, text="No location, no link: only its own words."),
        Highlight(id=2, book_id=1, text="Another without anything but its words here."),
    )
    text, records, upstream = page(ObsidianAdapter(), b)
    edited = text.replace(
        "- No location, no link: only its own words.\n",
        "- No location, no link: only its own words.\n    - Note: mine\n",
    )
    assert scan("obsidian", edited, records, upstream).changes == [Change(1, "note", "mine")]


LONG_TEXT = (
    "Words that say which highlight this is, many of them, more than eighty characters long,"
    " and no link."
)


def test_a_text_fix_without_link_or_id_is_uncertain_and_not_sent() -> None:
    b = book(Highlight(id=1, book_id=1, text=LONG_TEXT))
    text, records, upstream = page(ObsidianAdapter(), b)
    edited = text.replace("no link.", "no link at all.")  # the first words still match
    result = scan("obsidian", edited, records, upstream)
    assert result.changes == []
    assert [n.reason for n in result.not_sent] == [UNCERTAIN]
    rewritten = text.replace("Words that say", "Text saying")  # no key left at all
    assert [n.reason for n in scan("obsidian", rewritten, records, upstream).not_sent] == [DELETED]


def test_with_block_ids_a_text_fix_is_certain() -> None:
    b = book(Highlight(id=1, book_id=1, text="Words that say which highlight this is, no link."))
    text, records, upstream = page(ObsidianAdapter(block_ids=True), b)
    edited = text.replace("no link.", "no link at all.")
    result = scan("obsidian", edited, records, upstream)
    assert result.changes == [
        Change(1, "text", "Words that say which highlight this is, no link at all.")
    ]


def test_a_text_fix_found_by_its_location_link() -> None:
    text, records, upstream = page(LogseqAdapter(), TWO)
    edited = text.replace("long enough to be told apart from", "long enough to tell apart from")
    result = scan("logseq", edited, records, upstream)
    assert [(c.highlight_id, c.field) for c in result.changes] == [(1, "text")]


def test_two_blocks_with_the_same_link_are_ambiguous() -> None:
    text, records, upstream = page(ObsidianAdapter(), TWO)
    first_line = next(line for line in text.split("\n") if "The first highlight" in line)
    twin = first_line.replace("The first highlight", "A copy the user made of the first highlight")
    edited = text.replace(first_line, first_line.replace("first", "1st") + "\n" + twin)
    result = scan("obsidian", edited, records, upstream)
    assert result.changes == []
    assert AMBIGUOUS in [n.reason for n in result.not_sent]


def test_a_deleted_block_and_a_typed_in_highlight_are_listed_not_sent() -> None:
    text, records, upstream = page(ObsidianAdapter(), TWO)
    lines = text.split("\n")
    second = next(i for i, line in enumerate(lines) if "The second highlight" in line)
    lines[second] = "- A highlight I typed in myself, it is not from Readwise at all."
    result = scan("obsidian", "\n".join(lines), records, upstream)
    assert result.changes == []
    reasons = {n.reason: n for n in result.not_sent}
    assert reasons[DELETED].highlight_id == 2
    assert reasons[TYPED].highlight_id is None
    assert reasons[TYPED].mine.startswith("A highlight I typed in myself")


def test_the_users_own_sub_items_are_not_typed_in_highlights() -> None:
    text, records, upstream = page(ObsidianAdapter(), TWO)
    lines = text.split("\n")
    first = next(i for i, line in enumerate(lines) if "The first highlight" in line)
    lines.insert(first + 1, "\t- my own thought about it")
    assert scan("obsidian", "\n".join(lines), records, upstream).not_sent == []
