"""What `syncd check` and every start do with a target's own templates: render a sample book
through them, so a template that raises, or names a file outside its folder, stops syncd with
exit 2 (file and line named) before any page is written; and list names Readwise never sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.adapters.base import Adapter, Section
from syncd.model import Book, Highlight
from syncd.notes.dialect import TemplateProblem, unknown_names
from syncd.notes.notification import BookCount, render_notification
from syncd.notes.template_set import TemplateSet

_SAMPLE_TIME = datetime(2024, 11, 20, 9, 45, tzinfo=UTC)


def sample_book() -> Book:
    """A book with every field a template can print, and highlights of every kind."""
    highlights = (
        Highlight(
            id=1,
            book_id=7,
            text="A first highlight",
            note="A note\non two lines",
            location=599,
            location_type="location",
            tags=("orange", "two words"),
            highlighted_at=_SAMPLE_TIME,
        ),
        Highlight(id=2, book_id=7, text="A heading", note=".h2", location=600),
        Highlight(
            id=3,
            book_id=7,
            text="A second highlight\n\nin two paragraphs",
            location=601,
            location_type="location",
            highlighted_at=_SAMPLE_TIME + timedelta(days=1),
        ),
    )
    return Book(
        id=7,
        title="A Sample Book: with a subtitle",
        author="Ann Author",
        category="books",
        source="kindle",
        cover_image_url="https://example.org/cover.jpg",
        source_url="https://example.org/book",
        readwise_url="https://readwise.io/bookreview/7",
        document_note="A document note",
        summary="A summary",
        asin="B000000000",
        tags=("favorite", "to read"),
        highlights=highlights,
    )


def name_warnings(templates: TemplateSet) -> list[str]:
    """Names the user's templates use that Readwise never sets (they print as "")."""
    mine = [*templates.custom.values()]
    if templates.notification is not None and templates.folder is not None:
        mine.append(templates.notification)
    return [warning for template in mine for warning in unknown_names(template)]


def check_templates(templates: TemplateSet, adapter: Adapter) -> None:
    """Render a sample page through every template; raises TemplateProblem for one that fails."""
    if not templates.custom and templates.notification is None:
        return
    book = sample_book()
    title = adapter.page_title(book)
    file_name = templates.get("file_name")
    if file_name is not None and (not title.strip() or ".." in title.split("/")):
        shown = title if title.strip() else "an empty name"
        raise TemplateProblem(
            file_name.path, None, f"renders {shown!r}: a file name must name a file in its folder"
        )
    sections = (
        Section("first", _SAMPLE_TIME, (1, 2)),
        Section("new", _SAMPLE_TIME + timedelta(days=2), (3,)),
    )
    adapter.render_page(book, sections, title)
    adapter.append_section("", book, sections[1])
    if templates.notification is not None:
        render_notification(
            templates, [BookCount(book.display_title, book.author, 3)], _SAMPLE_TIME, adapter
        )
