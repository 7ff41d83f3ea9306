"""The sync notification: one entry per pass that added highlights, appended to a log page.

As Readwise does by default: Logseq appends a block to the `Readwise` page (unless the target's
sync_notification template is an empty file); Obsidian appends to `<folder>/Readwise Syncs.md`
only when the target has a sync_notification template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from syncd.notes.dates import format_clock
from syncd.notes.dialect import logseq_values, obsidian_values, outline
from syncd.notes.render import DateStyle
from syncd.notes.template_set import TemplateSet


@dataclass(frozen=True, slots=True)
class BookCount:
    title: str
    author: str
    num_highlights_added: int


class _Styled(Protocol):
    style: DateStyle


def render_notification(
    templates: TemplateSet, books: Sequence[BookCount], moment: datetime, adapter: _Styled
) -> str:
    """The entry for a pass that added highlights to `books` ("" when notifications are off)."""
    template = templates.notification
    if template is None:
        return ""
    style = adapter.style
    context: dict[str, Any] = {
        "date": style.rendered(moment),
        "time": format_clock(style.local(moment)),
        "num_highlights": sum(book.num_highlights_added for book in books),
        "num_books": len(books),
        "books": [
            {"title": b.title, "author": b.author, "num_highlights_added": b.num_highlights_added}
            for b in books
        ],
    }
    if templates.format == "logseq":
        return outline(template.render(logseq_values(context)), 0)
    text = template.render(obsidian_values(context))
    return text if not text.strip() or text.endswith("\n") else text + "\n"


def appended(existing: str | None, entry: str, *, logseq: bool) -> str:
    """The log page with `entry` at its end (Logseq pages end without a newline)."""
    kept = (existing or "").rstrip()
    text = (kept + "\n" if kept else "") + entry
    return text.rstrip("\n") if logseq else text
