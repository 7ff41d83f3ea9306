"""Two layout rules of Readwise's dialect that real custom-template pages pinned down: how far a
multi-line note continues in Obsidian, and what Logseq page metadata keeps at line ends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncd.adapters.base import Section
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.model import Book, Highlight
from syncd.notes.dialect import compile_template, note_indent, property_lines
from syncd.notes.template_set import TemplateSet, default_source


@pytest.mark.parametrize(
    ("source", "width"),
    [
        ("- {{ highlight_text }}\n    - Note: {{ highlight_note }}", 6),
        ("{{ highlight_note }}\n\n> {{ highlight_text }}", 0),  # matt2ology: a paragraph
        ("> {{ highlight_text }}\n\nNote: {{highlight_note}}", 0),
        ("- {{ highlight_text }}\n  * {{ highlight_note|upper }}", 4),
        ("\t- {{ highlight_note }}", 6),
        ("- {{ highlight_text }}", 6),  # no note printed: the default's width
    ],
)
def test_a_note_continues_at_its_list_items_content_column(source: str, width: int) -> None:
    assert note_indent(source) == width


def test_the_default_obsidian_highlight_keeps_its_six_spaces() -> None:
    source = default_source("obsidian", "highlight")
    assert source is not None and note_indent(source) == 6


def test_a_paragraph_note_is_not_indented_in_the_page() -> None:
    source = "{{ highlight_note }}\n\n> {{ highlight_text }}\n"
    templates = TemplateSet(
        format="obsidian", custom={"highlight": compile_template("highlight", "h.j2", source)}
    )
    book = Book(
        id=1,
        title="T",
        highlights=(Highlight(id=2, book_id=1, text="a\nb", note="one\n\n- two", location=1),),
    )
    adapter = ObsidianAdapter(tz=UTC, templates=templates)
    section = Section("first", datetime(2024, 6, 18, tzinfo=UTC), (2,))

    page = adapter.render_page(book, [section], "T")

    # The note's lines stay at column 0 (blank lines dropped, as always); the quoted text
    # still continues at two spaces.
    assert "\n## Highlights\none\n- two\n\n> a\n  b\n" in page


def test_page_metadata_keeps_a_lines_trailing_space_but_not_the_outputs() -> None:
    output = "\nabbreviated-title:: $2.00 a Day \n   \nstatus:: Reading\ndocument_type:: \n\n"
    assert property_lines(output) == (
        "abbreviated-title:: $2.00 a Day \n\nstatus:: Reading\ndocument_type::\n"
    )
