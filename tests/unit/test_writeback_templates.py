"""The write-back over pages a user's own highlight template rendered, and over device
highlights (syncd.writeback.scan): a block is diffed only when its template's shape reads back
as Readwise's data; otherwise an edit to it is listed as not sent, never guessed at. A device
highlight's block is never sent, and never taken for typed-in text."""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.adapters.base import Adapter, Section
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.model import LOCAL_ID_BASE, Book, Highlight
from syncd.notes.dialect import compile_template
from syncd.notes.template_set import TemplateSet
from syncd.sync.merge import BlockRecord, Ours, merge_page, render_hash
from syncd.writeback.diff import Change
from syncd.writeback.echo import settle_span_echoes
from syncd.writeback.scan import UNREADABLE, PageScan, scan_page

WHEN = datetime(2023, 2, 1, 9, 45, tzinfo=UTC)
QUOTE = "> {{ highlight_text }}\n"
INLINE_NOTE = (
    "- {{ highlight_text }}{% if highlight_note %} (my note: {{ highlight_note }}){% endif %}\n"
)
DEFAULT_SHAPE = (
    "- {{ highlight_text }}{% if highlight_note %}\n    - Note: {{ highlight_note }}{% endif %}\n"
)


def adapter_with(highlight_template: str) -> ObsidianAdapter:
    template = compile_template("highlight", "<test highlight.j2>", highlight_template)
    return ObsidianAdapter(templates=TemplateSet(format="obsidian", custom={"highlight": template}))


def book(*highlights: Highlight) -> Book:
    return Book(id=1, title="T", author="A", category="books", highlights=highlights)


FIRST = Highlight(id=1, book_id=1, text="The first highlight, told apart by its own words.")
SECOND = Highlight(
    id=2, book_id=1, text="The second highlight, with a note.", note="what I thought"
)
DEVICE = Highlight(
    id=LOCAL_ID_BASE + 7,
    book_id=1,
    text="A highlight made on the Kindle, never in Readwise, long enough to be found by its"
    " first eighty characters when its end is fixed.",
)


def scan(adapter: Adapter, b: Book, edit: tuple[str, str] | None = None) -> PageScan:
    """Render the page as syncd writes it, apply `edit` (old, new), scan it as a pass does."""
    live = b.live_highlights()
    parts = adapter.render_parts(b, (Section("first", WHEN, tuple(h.id for h in live)),), "T")
    records = {
        hid: BlockRecord(block.rstrip("\n") + "\n", render_hash(block))
        for hid, block in parts.blocks.items()
    }
    text = parts.text
    if edit is not None:
        assert edit[0] in text
        text = text.replace(*edit)
    return scan_page(
        fmt="obsidian",
        text=text,
        records=records,
        upstream=dict(parts.blocks),
        upstream_texts={h.id: h.text for h in live},
        enabled=("note", "tags", "text"),
        tracks_spans=adapter.tracks_spans,
        highlights={h.id: h for h in live},
    )


def test_an_untouched_page_of_a_quote_template_lists_nothing() -> None:
    adapter = adapter_with(QUOTE)
    assert adapter.tracks_spans
    assert scan(adapter, book(FIRST, SECOND)) == PageScan()


def test_a_text_fix_in_a_quote_template_block_is_not_sent() -> None:
    result = scan(adapter_with(QUOTE), book(FIRST, SECOND), ("its own words.", "its own word."))
    assert result.changes == []
    assert [(n.highlight_id, n.reason) for n in result.not_sent] == [(1, UNREADABLE)]


def test_a_note_edited_inline_is_never_sent_as_a_text_change() -> None:
    # The default-shape reader would take "text (my note: ...)" for the highlight's text.
    edit = ("(my note: what I thought)", "(my note: what I think now)")
    result = scan(adapter_with(INLINE_NOTE), book(FIRST, SECOND), edit)
    assert result.changes == [] and result.conflicts == []
    assert [(n.highlight_id, n.reason) for n in result.not_sent] == [(2, UNREADABLE)]


def test_a_template_in_the_default_shape_is_read_and_sent() -> None:
    edit = ("- Note: what I thought", "- Note: what I think now")
    result = scan(adapter_with(DEFAULT_SHAPE), book(FIRST, SECOND), edit)
    assert result.changes == [Change(2, "note", "what I think now")]
    assert result.not_sent == []


def test_a_device_highlight_edited_is_not_sent_nor_typed_in() -> None:
    edit = (
        "when its end is fixed.",
        "when its end is fixed.\n    - Note: added in the vault",
    )
    result = scan(ObsidianAdapter(), book(FIRST, DEVICE), edit)
    assert result == PageScan()
    fixed = ("when its end is fixed.", "when its end is fixed in the vault.")
    assert scan(ObsidianAdapter(), book(FIRST, DEVICE), fixed) == PageScan()


def test_the_echo_of_a_sent_note_on_a_span_page_is_not_merged_in_twice() -> None:
    adapter = ObsidianAdapter()
    sent = Highlight(id=2, book_id=1, text=SECOND.text, note="what I thought")
    before = book(FIRST, Highlight(id=2, book_id=1, text=SECOND.text))
    section = (Section("first", WHEN, (1, 2)),)
    written = adapter.render_parts(before, section, "T")
    records = {
        hid: BlockRecord(block.rstrip("\n") + "\n", render_hash(block))
        for hid, block in written.blocks.items()
    }
    own_line = written.blocks[2].rstrip("\n")
    page = written.text.replace(own_line, own_line + "\n    - Note: what I thought")
    echo = adapter.render_parts(book(FIRST, sent), section, "T").blocks
    ours = Ours(head="", blocks=dict(echo), order=(1, 2), spans=True)
    settled = settle_span_echoes("obsidian", page, records, ours)
    assert settled[1] == records[1]
    assert settled[2] == BlockRecord(
        own_line + "\n    - Note: what I thought\n", render_hash(echo[2])
    )
    merged = merge_page(
        fmt="obsidian",
        theirs=page,
        base_head=None,
        blocks=settled,
        tombstones=frozenset(),
        ours=ours,
        append_section=lambda text, _ids: text,
    )
    assert merged.text == page and merged.conflicts == [] and merged.replaced == 0
    # Without settling, the span merge puts Readwise's note under the user's own: twice.
    unsettled = merge_page(
        fmt="obsidian",
        theirs=page,
        base_head=None,
        blocks=records,
        tombstones=frozenset(),
        ours=ours,
        append_section=lambda text, _ids: text,
    )
    assert unsettled.text.count("what I thought") == 2


def test_the_echo_of_an_edited_note_on_a_span_page_is_no_conflict() -> None:
    adapter = ObsidianAdapter()
    section = (Section("first", WHEN, (1, 2)),)
    written = adapter.render_parts(book(FIRST, SECOND), section, "T")
    records = {
        hid: BlockRecord(block.rstrip("\n") + "\n", render_hash(block))
        for hid, block in written.blocks.items()
    }
    page = written.text.replace("- Note: what I thought", "- Note: what I think now")
    sent = Highlight(id=2, book_id=1, text=SECOND.text, note="what I think now")
    echo = adapter.render_parts(book(FIRST, sent), section, "T").blocks
    ours = Ours(head="", blocks=dict(echo), order=(1, 2), spans=True, texts={2: SECOND.text})
    merged = merge_page(
        fmt="obsidian",
        theirs=page,
        base_head=None,
        blocks=settle_span_echoes("obsidian", page, records, ours),
        tombstones=frozenset(),
        ours=ours,
        append_section=lambda text, _ids: text,
    )
    assert merged.text == page and merged.conflicts == [] and merged.replaced == 0
