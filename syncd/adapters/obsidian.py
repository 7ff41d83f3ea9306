"""Obsidian: Readwise's default Obsidian export, byte for byte.

A page is `<folder>/<Category>/<title>.md`:

    # Title
    <blank>
    ![rw-book-cover](...)      (when there is a cover, then a blank line)
    ## Metadata
    - Author: [[...]] ... - URL: ...
    <blank>
    ## Highlights
    - text ([Location N](...))
        - Tags: [[t]]
        - Note: ...
    ## New highlights added November 20, 2024 at 12:15 AM
    - ...

The file ends with one newline. A touched page gets new sections appended after its last line,
every byte of it kept: the official plugin's `existing.rstrip() + "\\n" + section` would strip
the space Readwise leaves after a last `- Tags: [[x]] ` line, changing a line of a page syncd
adopted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import PurePosixPath

from syncd.adapters._fs import safe_file_name
from syncd.adapters.base import RenderedPage, Section
from syncd.model import Book
from syncd.notes.blockids import stable_block_id
from syncd.notes.dates import format_php_date
from syncd.notes.render import (
    DateStyle,
    document_context,
    highlight_variables,
    oneline,
    render,
    render_each,
    section_highlights,
)

CATEGORY_FOLDERS = {
    "books": "Books",
    "articles": "Articles",
    "tweets": "Tweets",
    "podcasts": "Podcasts",
    "supplementals": "Supplementals",
}

# Readwise drops `:` `?` `"` from Obsidian file names. The other characters Obsidian, Windows or
# Android refuse (or that break [[links]]) become their nearest harmless look-alike: separators
# a dash, brackets parentheses; the rest are dropped like Readwise's three.
_FILE_NAME_MAP = str.maketrans(
    {
        ":": None, "?": None, '"': None,
        "/": "-", "\\": "-", "|": "-",
        "[": "(", "]": ")",
        "*": None, "<": None, ">": None, "#": None, "^": None,
    }
)  # fmt: skip


def obsidian_file_stem(page_title: str) -> str:
    return oneline(page_title).translate(_FILE_NAME_MAP)


def category_folder(category: str) -> str:
    """Readwise's category folder; an unknown category gets its capitalised, file-safe name."""
    known = CATEGORY_FOLDERS.get(category)
    if known is not None:
        return known
    return safe_file_name(obsidian_file_stem(category.strip().capitalize()), ext="", max_bytes=100)


class ObsidianAdapter:
    name = "obsidian"

    def __init__(
        self, folder: str = "Readwise", *, tz: tzinfo | None = None, block_ids: bool = False
    ) -> None:
        self.folder = PurePosixPath(folder)
        # `^rw<id>` at the end of each highlight, so block references survive every sync.
        self.block_ids = block_ids
        # Dates show in `tz` (None: the system's zone), like Readwise's account time zone.
        self.style = DateStyle(tz=tz, show=lambda moment: format_php_date(moment, "F j, Y"))

    def folder_for(self, book: Book) -> PurePosixPath:
        return self.folder / category_folder(book.category)

    def page_title(self, book: Book) -> str:
        return oneline(book.display_title)

    def file_name(self, page_title: str, disambiguator: str = "") -> str:
        return safe_file_name(obsidian_file_stem(page_title), disambiguator)

    def render_page(self, book: Book, sections: Sequence[Section], page_title: str) -> str:
        return self.render_parts(book, sections, page_title).text

    def render_parts(
        self, book: Book, sections: Sequence[Section], page_title: str
    ) -> RenderedPage:
        # The head uses no date in the default templates; user templates get the first sync's.
        first_sync = sections[0].synced_at if sections else datetime.now(UTC)
        head = document_context(
            book,
            synced_at=first_sync,
            is_new_page=True,
            has_new_highlights=True,
            style=self.style,
            page_title=page_title,
        )
        parts = [
            render("obsidian_title.md.j2", head),
            "\n",
            render("obsidian_metadata.md.j2", head),
        ]
        head_text = "".join(parts)
        blocks: dict[int, str] = {}
        for index, section in enumerate(sections):
            text, count = self._section(book, section, page_title, blocks)
            if count or index == 0:  # an emptied section disappears, the first one stays
                parts.append(text)
        return RenderedPage(text="".join(parts), head=head_text, blocks=blocks)

    def append_section(self, existing_text: str, book: Book, section: Section) -> str:
        text, count = self._section(book, section, self.page_title(book), {})
        if not count:
            return existing_text
        return _with_line_end(existing_text) + text

    def _section(
        self, book: Book, section: Section, page_title: str, blocks: dict[int, str]
    ) -> tuple[str, int]:
        """The section's header and live highlights, and how many highlights that is."""
        highlights = section_highlights(book, section.highlight_ids)
        context = document_context(
            book,
            synced_at=section.synced_at,
            is_new_page=section.kind == "first",
            has_new_highlights=bool(highlights),
            style=self.style,
            page_title=page_title,
        )
        parts = [render("obsidian_header.md.j2", context)]
        items = [highlight_variables(book, h, style=self.style) for h in highlights]
        rendered = render_each("obsidian_highlight.md.j2", context, items)
        for highlight, block in zip(highlights, rendered, strict=True):
            if self.block_ids:
                block = _with_block_id(block, highlight.id)
            blocks[highlight.id] = block
            parts.append(block)
        return "".join(parts), len(highlights)


def _with_block_id(block: str, highlight_id: int) -> str:
    """`^rw<id>` at the end of the item's own text, before its Tags/Note sub-items."""
    lines = block.split("\n")
    end = next((i for i, line in enumerate(lines[1:], 1) if line.startswith("    - ")), None)
    last = (end if end is not None else len(lines)) - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    lines[last] += f" ^{stable_block_id('obsidian', highlight_id)}"
    return "\n".join(lines)


def _with_line_end(text: str) -> str:
    """The text, ending its last line if it does not (an empty text stays empty)."""
    return text if not text or text.endswith("\n") else text + "\n"
