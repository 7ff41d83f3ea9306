"""Logseq: Readwise's default Logseq export, byte for byte, as Logseq itself saves it.

A page is `pages/<encoded page title>.md`:

    title:: Meditations (highlights)
    author:: [[Marcus Aurelius]]
    full-title:: "Meditations"
    category:: #books
    url:: ...                          (document_note::, tags::, summary:: when present)
    ![](cover)                         (when there is a cover)
    <blank>
    - Highlights first synced by [[Readwise]] [[Nov 18th, 2022]]
    <TAB>- text ([Location N](...))
    <TAB>  continuation line
    <TAB><TAB>- **Tags**: #[[a]] #[[b]]
    <TAB><TAB>- **Note**: ...
    - New highlights added [[Feb 1st, 2023]] at 9:45 AM

Tabs indent, continuation lines add two spaces, and the file has no final newline (Logseq
trims it). Text is escaped so Logseq reads each highlight back as one block: see
`syncd.notes.render.logseq_escape`.

With a user's templates (`syncd.notes.template_set`), each piece the user replaced is rendered
from their file: the page title names the page (and its `title::`), the metadata lines are the
page properties, and the header and highlight outputs become blocks (`syncd.notes.dialect.outline`).
A header that renders empty leaves the highlights as top-level blocks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import PurePosixPath

from syncd.adapters._fs import safe_file_name
from syncd.adapters.base import RenderedPage, Section
from syncd.errors import ConfigError
from syncd.model import Book
from syncd.notes.blockids import stable_block_id, with_id_lines
from syncd.notes.dates import DEFAULT_JOURNAL_FORMAT, format_date_fns
from syncd.notes.dialect import logseq_values, one_line_output, outline, property_lines, uses
from syncd.notes.render import (
    DateStyle,
    document_context,
    heading_level,
    heading_text,
    highlight_variables,
    logseq_block,
    oneline,
    render,
    render_each,
    section_highlights,
)
from syncd.notes.template_set import TemplateSet, default_set

PAGES_FOLDER = PurePosixPath("pages")

# Logseq's :triple-lowbar file names: characters file systems refuse are percent-encoded, a
# `%xx` already in the title is protected by encoding its `%`, `_` runs that could be confused
# with `___` are encoded, then namespace slashes become `___`. Slashes at either end of the
# name are dropped, as Logseq drops them from page names.
_RESERVED = re.compile(r'[:*?"<>|#\\]')
_PERCENT_ESCAPE = re.compile(r"%(?=[0-9A-Fa-f]{2})")
_AMBIGUOUS_LOWBARS = re.compile(r"_{2,}|_(?=/)|(?<=/)_")


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group(0).encode("utf-8"))


def logseq_file_stem(page_title: str) -> str:
    stem = oneline(page_title).strip("/")
    stem = _PERCENT_ESCAPE.sub("%25", stem)
    stem = _RESERVED.sub(_percent, stem)
    stem = _AMBIGUOUS_LOWBARS.sub(_percent, stem)
    return stem.replace("/", "___")


class LogseqAdapter:
    name = "logseq"

    def __init__(
        self,
        journal_format: str = DEFAULT_JOURNAL_FORMAT,
        *,
        tz: tzinfo | None = None,
        block_ids: bool = False,
        templates: TemplateSet | None = None,
    ) -> None:
        # `id:: <uuid>` on each highlight block, so block references survive every sync.
        self.block_ids = block_ids
        try:
            format_date_fns(datetime(2022, 11, 18), journal_format)
        except ValueError as exc:
            raise ConfigError([f"journal_format: {exc}"]) from exc
        self.journal_format = journal_format
        # Journal links show the sync day in `tz` (None: the system's zone).
        self.style = DateStyle(tz=tz, show=lambda moment: format_date_fns(moment, journal_format))
        self.templates = templates or default_set("logseq")
        self.notification_path = PAGES_FOLDER / "Readwise.md"
        highlight = self.templates.get("highlight")
        self.tracks_spans = highlight is not None
        self._own_headings = highlight is not None and uses(highlight, "highlight_heading_level")

    def folder_for(self, book: Book) -> PurePosixPath:
        return PAGES_FOLDER

    def page_title(self, book: Book) -> str:
        template = self.templates.get("page_title")
        if template is None:
            return f"{oneline(book.display_title)} (highlights)"
        context = self._document(book, datetime.now(UTC), "")
        return one_line_output(template.render(logseq_values(context)))

    def file_name(self, page_title: str, disambiguator: str = "") -> str:
        # `#[]^` are fine in Logseq file names (`#` is percent-encoded above anyway).
        return safe_file_name(logseq_file_stem(page_title), disambiguator, link_safe=False)

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

    def render_parts(
        self, book: Book, sections: Sequence[Section], page_title: str
    ) -> RenderedPage:
        first_sync = sections[0].synced_at if sections else datetime.now(UTC)
        head = self._document(book, first_sync, page_title)
        parts = [self._properties(head, page_title), "\n"]
        head_text = "".join(parts)
        blocks: dict[int, str] = {}
        for index, section in enumerate(sections):
            text, count = self._section(book, section, page_title, blocks)
            if count or index == 0:  # an emptied section disappears, the first one stays
                parts.append(text)
        return RenderedPage(text="".join(parts).rstrip("\n"), head=head_text, blocks=blocks)

    def _properties(self, head: dict[str, object], page_title: str) -> str:
        template = self.templates.get("page_metadata")
        if template is None:
            return render("logseq_metadata.md.j2", head)
        lines = property_lines(template.render(logseq_values(head)))
        if lines.startswith("title::") or "\ntitle::" in lines:
            return lines
        return f"title:: {oneline(page_title)}\n{lines}"

    def append_section(self, existing_text: str, book: Book, section: Section) -> str:
        text, count = self._section(book, section, self.page_title(book), {})
        if not count:
            return existing_text
        # The new block starts on a line of its own, at the top level; every byte before it is
        # kept (a last `**Tags**: [[x]] ` line keeps its space).
        kept = existing_text if existing_text.strip() else ""
        if kept and not kept.endswith("\n"):
            kept += "\n"
        return kept + text.rstrip("\n")

    def _header(self, context: dict[str, object]) -> str:
        template = self.templates.get("highlights_header")
        if template is None:
            return logseq_block(render("logseq_header.md.j2", context), 0)
        return outline(template.render(logseq_values(context)), 0)

    def _section(
        self, book: Book, section: Section, page_title: str, blocks: dict[int, str]
    ) -> tuple[str, int]:
        """The section's header block with its live highlights as children, and their count."""
        highlights = section_highlights(book, section.highlight_ids)
        context = document_context(
            book,
            synced_at=section.synced_at,
            is_new_page=section.kind == "first",
            has_new_highlights=bool(highlights),
            style=self.style,
            page_title=page_title,
        )
        header = self._header(context)
        # Under the header block; top-level blocks when a user's header renders nothing.
        level = 1 if header else 0
        parts = [header]
        items = [highlight_variables(book, h, style=self.style) for h in highlights]
        template = self.templates.get("highlight")
        if template is None:
            rendered = render_each("logseq_highlight.md.j2", context, items)
            if level == 0:
                rendered = [_outdented(block) for block in rendered]
        else:
            shown = [logseq_values(item) for item in items]
            outputs = template.render_each(logseq_values(context), shown)
            rendered = [outline(text, level) for text in outputs]
        indent = "\t" * level
        for highlight, block in zip(highlights, rendered, strict=True):
            heading = heading_level(highlight)
            if heading and not self._own_headings:
                block = logseq_block(heading_text(highlight, heading), level)
            if block and self.block_ids:
                line = f"{indent}  id:: {stable_block_id('logseq', highlight.id)}\n"
                block = with_id_lines(block, [line])
            if block:
                blocks[highlight.id] = block
            parts.append(block)
        return "".join(parts), len(highlights)


def _outdented(block: str) -> str:
    """A default-template highlight (written one level under its header) at the top level."""
    return "".join(line.removeprefix("\t") for line in block.splitlines(keepends=True))
