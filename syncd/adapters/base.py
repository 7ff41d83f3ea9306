"""The one interface every vault format implements, and the section record the engine keeps.

A page is rendered from a Book plus its sections: the first section ("Highlights first synced by"
/ "## Highlights") and every later one ("New highlights added ..."). The state store remembers
which highlight ids each section holds, so an untouched page can be re-rendered in full from
current data, and a touched page only gets new sections appended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Literal, Protocol

from syncd.model import Book
from syncd.notes.render import DateStyle
from syncd.notes.template_set import TemplateSet

SectionKind = Literal["first", "new"]


@dataclass(frozen=True, slots=True)
class Section:
    kind: SectionKind
    # When the section was first written; aware datetime. Rendered in local time for the
    # journal link / "New highlights added <date> at <time>" header.
    synced_at: datetime
    highlight_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """A whole page and the pieces the block-level merge compares: the head (everything before
    the first section) and each live highlight's block, by highlight id."""

    text: str
    head: str
    blocks: dict[int, str]


class Adapter(Protocol):
    """A vault format: where a book's page lives, and the exact text of that page."""

    name: str  # "obsidian" | "logseq"
    # True when a user's highlight template renders the highlights: the merge then tracks each
    # as the exact lines it rendered (syncd.sync.merge.SpanMatcher).
    tracks_spans: bool
    templates: TemplateSet
    style: DateStyle  # how dates print in this vault
    notification_path: PurePosixPath  # the sync log page (Logseq `Readwise`, Obsidian's)

    def folder_for(self, book: Book) -> PurePosixPath:
        """Folder, relative to the vault root, that holds this book's page."""
        ...

    def page_title(self, book: Book) -> str:
        """The page's name before de-duplication (Logseq: "<title> (highlights)")."""
        ...

    def file_name(self, page_title: str, disambiguator: str = "") -> str:
        """A safe file name (with ".md") for the page; `disambiguator` (e.g. " (123)") is kept
        whole even when the title must be truncated to the length limit."""
        ...

    def render_page(self, book: Book, sections: Sequence[Section], page_title: str) -> str:
        """The whole page: header, metadata, then every section with its live highlights in
        reading order. Sections left with no live highlights are omitted, except the first."""
        ...

    def render_parts(
        self, book: Book, sections: Sequence[Section], page_title: str
    ) -> RenderedPage:
        """`render_page` with its pieces (head and per-highlight blocks)."""
        ...

    def append_section(self, existing_text: str, book: Book, section: Section) -> str:
        """The existing (user-touched) text with one new section appended, as Readwise does."""
        ...
