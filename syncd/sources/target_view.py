"""A cached book as one target sees it: only the sources it gets, each passage once.

The cache keeps every source's copy of a highlight (Readwise's and a device's of the same
passage), so each target decides for itself, at plan time:

- `sources`: a target that leaves a source out does not see its highlights;
- one copy per passage: highlights of different origins with the same text (whitespace
  normalised) are shown once. The copy kept is the one the page already has (written, or
  deleted by the user), else Readwise's, else the first: a passage synced from the Kindle and
  imported by Readwise hours later stays where it is on the page, and one the user deleted
  stays deleted whichever source brings it back. Copies from one origin are all kept (Readwise
  itself may hold a passage twice).
"""

from __future__ import annotations

from syncd.model import Book, Highlight
from syncd.sources.local import READWISE_ORIGIN, normalize_text, origin_of
from syncd.sync.state import PageRow


def _on_page(page: PageRow | None) -> tuple[set[int], frozenset[int]]:
    """(ids the page shows or showed, ids the user deleted from it)."""
    if page is None:
        return set(), frozenset()
    ids = {hid for section in page.sections for hid in section.highlight_ids}
    return ids | set(page.blocks), page.tombstones


def target_view(book: Book, sources: frozenset[str] | None, page: PageRow | None) -> Book:
    highlights = book.highlights
    if sources is not None:
        highlights = tuple(h for h in highlights if origin_of(h) in sources)
    origins = {origin_of(h) for h in highlights}
    if len(origins) > 1:
        highlights = _one_copy_each(highlights, *_on_page(page))
    return book if highlights == book.highlights else book.with_highlights(highlights)


def _one_copy_each(
    highlights: tuple[Highlight, ...], on_page: set[int], deleted_by_user: frozenset[int]
) -> tuple[Highlight, ...]:
    copies: dict[str, list[Highlight]] = {}
    for highlight in highlights:
        if highlight.is_live or highlight.id in deleted_by_user:
            copies.setdefault(normalize_text(highlight.text), []).append(highlight)
    hidden: set[int] = set()
    for group in copies.values():
        origins = {origin_of(h) for h in group}
        if len(origins) < 2:
            continue
        keeper = next((h for h in group if h.id in on_page and h.is_live), None)
        keeper = keeper or next((h for h in group if h.id in deleted_by_user), None)
        keep = (
            origin_of(keeper)
            if keeper is not None
            else (READWISE_ORIGIN if READWISE_ORIGIN in origins else origin_of(group[0]))
        )
        hidden.update(h.id for h in group if origin_of(h) != keep)
    if not hidden:
        return highlights
    return tuple(h for h in highlights if h.id not in hidden)
