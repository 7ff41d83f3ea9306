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

With a user's templates (`syncd.notes.template_set`), each piece the user replaced is rendered
from their file instead: the YAML front matter (between `---` lines, when not empty) comes first,
then the page title, a blank line, the metadata, and per section the header and each highlight's
output on a line of its own. An empty page title leaves no line.
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
from syncd.notes.dialect import (
    note_indent,
    obsidian_item_values,
    obsidian_values,
    one_line_output,
    uses,
)
from syncd.notes.render import (
    DateStyle,
    document_context,
    heading_level,
    heading_text,
    highlight_variables,
    oneline,
    render,
    render_each,
    section_highlights,
)
from syncd.notes.template_set import TemplateSet, default_set

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
        self,
        folder: str = "Readwise",
        *,
        tz: tzinfo | None = None,
        block_ids: bool = False,
        templates: TemplateSet | None = None,
        group_by_category: bool = True,
    ) -> None:
        self.folder = PurePosixPath(folder)
        # `^rw<id>` at the end of each highlight, so block references survive every sync.
        self.block_ids = block_ids
        self.templates = templates or default_set("obsidian")
        self.group_by_category = group_by_category
        self.notification_path = self.folder / "Readwise Syncs.md"
        # Dates show in `tz` (None: the system's zone), like Readwise's account time zone.
        self.style = DateStyle(tz=tz, show=lambda moment: format_php_date(moment, "F j, Y"))
        highlight = self.templates.get("highlight")
        # A user's highlight template may be anything (quotes, callouts, separators): the merge
        # then tracks each highlight as the exact lines it rendered.
        self.tracks_spans = highlight is not None
        self._own_headings = highlight is not None and uses(highlight, "highlight_heading_level")

    def folder_for(self, book: Book) -> PurePosixPath:
        if not self.group_by_category:
            return self.folder
        return self.folder / category_folder(book.category)

    def page_title(self, book: Book) -> str:
        template = self.templates.get("file_name")
        if template is None:
            return oneline(book.display_title)
        context = self._document(book, datetime.now(UTC), "")
        return one_line_output(template.render(obsidian_values(context)))

    def file_name(self, page_title: str, disambiguator: str = "") -> str:
        return safe_file_name(obsidian_file_stem(page_title), disambiguator)

    def render_page(self, book: Book, sections: Sequence[Section], page_title: str) -> str:
        return self.render_parts(book, sections, page_title).text

    def _document(self, book: Book, synced_at: datetime, page_title: str) -> dict[str, object]:
        return document_context(
            book,
            synced_at=synced_at,
            is_new_page=True,
            has_new_highlights=True,
            style=self.style,
            page_title=page_title,
        )

    def _piece(self, slot: str, default: str, context: dict[str, object]) -> str:
        """A page piece from the user's template for `slot`, else from syncd's default."""
        template = self.templates.get(slot)
        if template is None:
            return render(default, context)
        text = template.render(obsidian_values(context))
        return text + "\n" if text and not text.endswith("\n") else text

    def render_parts(
        self, book: Book, sections: Sequence[Section], page_title: str
    ) -> RenderedPage:
        # The head uses no date in the default templates; user templates get the first sync's.
        first_sync = sections[0].synced_at if sections else datetime.now(UTC)
        head = self._document(book, first_sync, page_title)
        parts = [self._front_matter(head)]
        title = self._piece("page_title", "obsidian_title.md.j2", head)
        if title.strip():
            parts += [title, "\n"]
        parts.append(self._piece("page_metadata", "obsidian_metadata.md.j2", head))
        head_text = "".join(parts)
        blocks: dict[int, str] = {}
        for index, section in enumerate(sections):
            text, count = self._section(book, section, page_title, blocks)
            if count or index == 0:  # an emptied section disappears, the first one stays
                parts.append(text)
        return RenderedPage(text="".join(parts), head=head_text, blocks=blocks)

    def _front_matter(self, head: dict[str, object]) -> str:
        template = self.templates.get("yaml_front_matter")
        if template is None:
            return ""
        text = template.render(obsidian_values(head)).strip("\n")
        # Readwise adds the `---` lines; a template that has them already gets them once.
        lines = text.split("\n")
        if len(lines) >= 2 and lines[0].rstrip() == "---" and lines[-1].rstrip() == "---":
            text = "\n".join(lines[1:-1]).strip("\n")
        return f"---\n{text}\n---\n" if text.strip() else ""

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
        parts = [self._piece("highlights_header", "obsidian_header.md.j2", context)]
        items = [highlight_variables(book, h, style=self.style) for h in highlights]
        template = self.templates.get("highlight")
        if template is None:
            rendered = render_each("obsidian_highlight.md.j2", context, items)
        else:
            width = note_indent(template.source)
            shown = [obsidian_item_values(item, note_width=width) for item in items]
            outputs = template.render_each(obsidian_values(context), shown)
            rendered = [text + "\n" if text.strip() else "" for text in outputs]
        for highlight, block in zip(highlights, rendered, strict=True):
            level = heading_level(highlight)
            if level and not self._own_headings:
                block = heading_text(highlight, level) + "\n"
            elif self.block_ids and template is None:
                block = _with_block_id(block, highlight.id)
            if block:
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
