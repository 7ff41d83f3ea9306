"""The diff of a highlight's block into Readwise field changes (syncd.writeback.diff).

Blocks are rendered by the real adapters (both formats, with and without block ids), edited as a
person would in the editor, and diffed against the render they started from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.adapters.base import Adapter, Section
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.model import Book, Highlight
from syncd.notes.render import logseq_escape
from syncd.sync.merge import Format
from syncd.writeback.diff import (
    BlockFields,
    Change,
    FieldConflict,
    block_fields,
    diff_highlight,
    parse_tags,
    same_fields,
)

WHEN = datetime(2023, 2, 1, 9, 45, tzinfo=UTC)
ALL = ("note", "tags", "text")
FORMATS: list[tuple[Format, bool]] = [
    ("obsidian", False),
    ("obsidian", True),
    ("logseq", False),
    ("logseq", True),
]


def adapter_for(fmt: Format, block_ids: bool) -> Adapter:
    if fmt == "obsidian":
        return ObsidianAdapter(block_ids=block_ids)
    return LogseqAdapter(block_ids=block_ids)


def hl(**fields: Any) -> Highlight:
    values: dict[str, Any] = {
        "id": 42,
        "book_id": 1,
        "text": "The quick brown fox jumps over the lazy dog.",
        "location": 599,
        "location_type": "location",
    }
    values.update(fields)
    return Highlight(**values)


def block(fmt: Format, block_ids: bool, highlight: Highlight, category: str = "books") -> str:
    book = Book(id=1, title="T", author="A", category=category, highlights=(highlight,))
    adapter = adapter_for(fmt, block_ids)
    parts = adapter.render_parts(book, (Section("first", WHEN, (highlight.id,)),), "T")
    return parts.blocks[highlight.id]


def diff(fmt: Format, base: str, mine: str, upstream: str | None = None, enabled: Any = ALL):
    return diff_highlight(
        42, fmt=fmt, base=base, mine=mine, upstream=base if upstream is None else upstream,
        enabled=enabled,
    )  # fmt: skip


# --- reading blocks back ---


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"note": "a note"},
        {"note": "line one\nline two\n- a dash line\n# not a heading"},
        {"tags": ("a", "to read", "🔥 hot", "c/d")},
        {"tags": ("x",), "note": "both"},
        {"text": "two lines\n- second starts with a dash", "note": "n"},
        {"text": "key:: value looks like a property\n$$ math"},
    ],
)
def test_a_rendered_block_reads_back_as_its_fields(
    fmt: Format, block_ids: bool, fields: dict[str, Any]
) -> None:
    highlight = hl(**fields)
    read = block_fields(fmt, block(fmt, block_ids, highlight))
    assert read is not None
    assert read.text == highlight.text
    assert read.note == highlight.note
    assert read.tags == highlight.tags
    assert "Location" in read.location  # the link is kept apart, never part of the text


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_articles_view_highlight_link_is_not_text(fmt: Format, block_ids: bool) -> None:
    highlight = hl(url="https://read.readwise.io/read/01abc", location_type="offset")
    read = block_fields(fmt, block(fmt, block_ids, highlight, category="articles"))
    assert read is not None
    assert read.text == highlight.text
    assert "View Highlight" in read.location


def test_parse_tags_every_spelling() -> None:
    assert parse_tags("[[a]] #[[to read]] #b #c/d, [[🔥 hot]] [[a]]") == (
        "a",
        "to read",
        "b",
        "c/d",
        "🔥 hot",
    )
    assert parse_tags("no tags here, not even a#b") == ()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab -#:$<`~\\\n{}[]"), min_size=1, max_size=30))
def test_logseq_unescape_reverses_the_escape(raw: str) -> None:
    text = " ".join(raw.split(" "))  # any mix of the characters the escape cares about
    if not text.strip() or "\\" in text or "[[" in text or "]]" in text:
        return  # a backslash of the user's own is ambiguous by nature
    highlight = hl(note=text.strip())
    read = block_fields("logseq", block("logseq", False, highlight))
    assert read is not None
    expected = "\n".join(line for line in text.strip().split("\n"))
    assert read.note == expected, logseq_escape(text)


# --- what is sent ---


def edit(text: str, old: str, new: str) -> str:
    assert old in text, (old, text)
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_a_new_note_is_sent(fmt: Format, block_ids: bool) -> None:
    base = block(fmt, block_ids, hl())
    mine = block(fmt, block_ids, hl(note="my thought\nover two lines"))
    result = diff(fmt, base, mine)
    assert result.changes == [Change(42, "note", value="my thought\nover two lines")]
    assert not result.conflicts and not result.not_sent


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_an_edited_note_is_sent(fmt: Format, block_ids: bool) -> None:
    base = block(fmt, block_ids, hl(note="first thought"))
    mine = edit(base, "first thought", "second thought")
    assert diff(fmt, base, mine).changes == [Change(42, "note", value="second thought")]


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_tags_added_and_removed(fmt: Format, block_ids: bool) -> None:
    base = block(fmt, block_ids, hl(tags=("keep", "drop me")))
    mine = block(fmt, block_ids, hl(tags=("keep", "to read 📚", "new")))
    assert diff(fmt, base, mine).changes == [
        Change(42, "tags", added=("to read 📚", "new"), removed=("drop me",))
    ]


def test_a_hand_typed_logseq_short_tag_counts() -> None:
    base = block("logseq", False, hl(tags=("a",)))
    mine = edit(base, "#[[a]]", "#[[a]] #b")
    assert diff("logseq", base, mine).changes == [Change(42, "tags", added=("b",))]


def test_a_tags_line_typed_under_a_highlight_in_obsidian() -> None:
    base = block("obsidian", False, hl())
    mine = base.rstrip("\n") + "\n    - Tags: [[idea]] [[to do]]\n"
    assert diff("obsidian", base, mine).changes == [Change(42, "tags", added=("idea", "to do"))]


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_a_text_fix_is_sent_only_when_enabled(fmt: Format, block_ids: bool) -> None:
    base = block(fmt, block_ids, hl())
    mine = edit(base, "quick brown", "quick, brown")
    assert diff(fmt, base, mine, enabled=("note", "tags")).changes == []
    fixed = diff(fmt, base, mine).changes
    assert fixed == [Change(42, "text", value="The quick, brown fox jumps over the lazy dog.")]


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_nothing_the_template_adds_is_sent(fmt: Format, block_ids: bool) -> None:
    """Editing the link or the block id is no change to any field."""
    base = block(fmt, block_ids, hl(note="n", tags=("t",)))
    mine = edit(base, "Location\u00a0599", "Location\u00a0600")
    assert diff(fmt, base, mine).changes == []


def test_nothing_enabled_nothing_sent() -> None:
    base = block("obsidian", False, hl())
    mine = block("obsidian", False, hl(note="x"))
    assert diff("obsidian", base, mine, enabled=()).changes == []


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_a_deleted_note_is_never_sent(fmt: Format, block_ids: bool) -> None:
    base = block(fmt, block_ids, hl(note="remove me"))
    mine = block(fmt, block_ids, hl())
    result = diff(fmt, base, mine)
    assert result.changes == []
    assert [n.field for n in result.not_sent] == ["note"]
    assert "never sent" in result.not_sent[0].reason


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_readwise_changed_the_same_field_is_a_conflict(fmt: Format, block_ids: bool) -> None:
    base = block(fmt, block_ids, hl(note="old"))
    mine = block(fmt, block_ids, hl(note="mine"))
    upstream = block(fmt, block_ids, hl(note="theirs"))
    result = diff(fmt, base, mine, upstream)
    assert result.changes == []
    assert result.conflicts == [FieldConflict(42, "note", "mine", "theirs")]


def test_readwise_changed_another_field_is_no_conflict() -> None:
    base = block("obsidian", False, hl(note="old"))
    mine = block("obsidian", False, hl(note="mine"))
    upstream = block("obsidian", False, hl(note="old", tags=("new upstream",)))
    assert diff("obsidian", base, mine, upstream).changes == [Change(42, "note", value="mine")]


def test_tags_changed_on_both_sides_is_a_conflict() -> None:
    base = block("logseq", False, hl(tags=("a",)))
    mine = block("logseq", False, hl(tags=("a", "b")))
    upstream = block("logseq", False, hl(tags=("a", "c")))
    result = diff("logseq", base, mine, upstream)
    assert result.changes == []
    assert result.conflicts == [FieldConflict(42, "tags", "[[a]] [[b]]", "[[a]] [[c]]")]


@pytest.mark.parametrize(("fmt", "block_ids"), FORMATS)
def test_the_echo_of_a_sent_change_sends_nothing(fmt: Format, block_ids: bool) -> None:
    """After the push, Readwise already has the user's value: nothing more to send."""
    base = block(fmt, block_ids, hl())
    mine = block(fmt, block_ids, hl(note="sent", tags=("t",)))
    result = diff(fmt, base, mine, upstream=mine)
    assert result.changes == [] and result.conflicts == [] and result.not_sent == []
    assert same_fields(fmt, mine, mine)


def test_highlight_deleted_in_readwise_is_not_sent() -> None:
    base = block("obsidian", False, hl())
    mine = block("obsidian", False, hl(note="x"))
    result = diff_highlight(42, fmt="obsidian", base=base, mine=mine, upstream=None, enabled=ALL)
    assert result.changes == []
    assert "deleted" in result.not_sent[0].reason


def test_a_text_fix_on_a_highlight_with_blank_lines_is_not_sent() -> None:
    raw = "para one\n\npara two"
    base = block("obsidian", False, hl(text=raw))
    mine = edit(base, "para two", "paragraph two")
    result = diff_highlight(
        42, fmt="obsidian", base=base, mine=mine, upstream=base, enabled=ALL, upstream_text=raw
    )
    assert result.changes == []
    assert result.not_sent[0].field == "text"


def test_block_fields_of_text_that_is_no_highlight() -> None:
    assert block_fields("obsidian", "just a paragraph\n") is None
    assert block_fields("logseq", "") is None


def test_same_fields_sees_a_different_location_link() -> None:
    a = block("obsidian", False, hl())
    b = block("obsidian", False, replace(hl(), location=600))
    assert not same_fields("obsidian", a, b)
    assert BlockFields("t", "", ()).value("tags") == ""


def test_same_fields_takes_tags_in_any_order() -> None:
    typed = block("logseq", False, hl(tags=("new", "a")))
    upstream = block("logseq", False, hl(tags=("a", "new")))
    assert same_fields("logseq", typed, upstream)
    assert not same_fields("logseq", typed, block("logseq", False, hl(tags=("a",))))
