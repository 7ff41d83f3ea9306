"""Decide, per target and book, what to do with its page: a list of actions, each with a reason.

Rules (the block-level merge of a later issue refines the "touched" branch):
- new book: create its page under a name unique in its folder (case-insensitive);
- page untouched since syncd wrote it: re-render it in full from current data, keeping the
  sections (new highlights get a new "New highlights added" section);
- page touched by the user: only append a new section with the new highlights, never change a
  line the user has;
- page deleted by the user: not recreated;
- unchanged result: skip, no write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from syncd.adapters._fs import fold_name, unique_name
from syncd.adapters.base import Adapter, Section
from syncd.model import Book
from syncd.sync.state import (
    PAGE_DELETED_BY_USER,
    PAGE_DELETED_UPSTREAM,
    PAGE_LIVE,
    PageRow,
    text_hash,
)

Action = Literal["create", "rewrite", "append", "skip"]

PAGE_FILTERED = "filtered"
PAGE_EMPTY = "empty"  # no live highlight yet: nothing to write


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """What the engine needs to know of a target (not the whole config)."""

    name: str
    vault: Path
    categories: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Planned:
    book_id: int
    action: Action
    reason: str
    path: str
    text: str | None  # the new file text for create/rewrite/append
    page: PageRow  # the row as it will be once the action is done
    highlights_added: int


ReadFile = Callable[[str], str | None]


class FolderNames:
    """Names taken per folder (case-insensitively): files on disk plus pages syncd owns."""

    def __init__(self, vault: Path, owned_paths: list[str]) -> None:
        self._vault = vault
        self._taken: dict[str, set[str]] = {}
        self._owned = owned_paths

    def taken(self, folder: PurePosixPath) -> set[str]:
        key = folder.as_posix()
        names = self._taken.get(key)
        if names is None:
            names = set()
            try:
                with_disk = (self._vault / folder).iterdir()
                names.update(fold_name(entry.name) for entry in with_disk)
            except FileNotFoundError:
                pass
            for owned in self._owned:
                path = PurePosixPath(owned)
                if path.parent == folder:
                    names.add(fold_name(path.name))
            self._taken[key] = names
        return names


def _pick_name(
    adapter: Adapter, book: Book, folder: PurePosixPath, taken: set[str]
) -> tuple[str, str]:
    """(page title, file name): the plain title if free, else one made unique with the book id."""
    base_title = adapter.page_title(book)
    name, disambiguator = unique_name(
        lambda extra: adapter.file_name(base_title, extra), taken, book.id
    )
    taken.add(fold_name(name))
    return base_title + disambiguator, name


def plan_book(
    *,
    book: Book,
    rev: int,
    page: PageRow | None,
    policy: TargetPolicy,
    adapter: Adapter,
    names: FolderNames,
    read_file: ReadFile,
    now: datetime,
) -> Planned:
    live = book.live_highlights()
    if policy.categories is not None and book.category not in policy.categories and page is None:
        row = PageRow(policy.name, book.id, "", "", PAGE_FILTERED, False, (), None, None, rev)
        return Planned(book.id, "skip", "category not selected", "", None, row, 0)

    if page is None or page.status in (PAGE_FILTERED, PAGE_EMPTY):
        if book.is_deleted or not live:
            row = PageRow(policy.name, book.id, "", "", PAGE_EMPTY, False, (), None, None, rev)
            return Planned(book.id, "skip", "no live highlights", "", None, row, 0)
        folder = adapter.folder_for(book)
        title, file_name = _pick_name(adapter, book, folder, names.taken(folder))
        sections: tuple[Section, ...] = (Section("first", now, tuple(h.id for h in live)),)
        text = adapter.render_page(book, sections, title)
        path = (folder / file_name).as_posix()
        row = PageRow(
            policy.name,
            book.id,
            path,
            title,
            PAGE_LIVE,
            False,
            sections,
            text,
            text_hash(text),
            rev,
        )
        return Planned(book.id, "create", "new book", path, text, row, len(live))

    if page.status in (PAGE_DELETED_BY_USER, PAGE_DELETED_UPSTREAM):
        return Planned(
            book.id,
            "skip",
            page.status.replace("_", " "),
            page.path,
            None,
            replace(page, rendered_rev=rev),
            0,
        )

    current = read_file(page.path)
    if current is None:
        return Planned(
            book.id,
            "skip",
            "deleted by the user; not recreated",
            page.path,
            None,
            replace(page, status=PAGE_DELETED_BY_USER, rendered_rev=rev),
            0,
        )
    if book.is_deleted:
        return Planned(
            book.id,
            "skip",
            "book deleted in Readwise; page kept",
            page.path,
            None,
            replace(page, status=PAGE_DELETED_UPSTREAM, rendered_rev=rev),
            0,
        )

    known = {hid for section in page.sections for hid in section.highlight_ids}
    new_ids = tuple(h.id for h in live if h.id not in known)
    touched = page.user_modified or text_hash(current) != page.written_hash
    if touched:
        if not new_ids:
            return Planned(
                book.id,
                "skip",
                "edited by the user; nothing new",
                page.path,
                None,
                replace(page, user_modified=True, rendered_rev=rev),
                0,
            )
        section = Section("new", now, new_ids)
        text = adapter.append_section(current, book, section)
        row = replace(page, user_modified=True, sections=(*page.sections, section))
        return Planned(
            book.id,
            "append",
            "edited by the user; new highlights appended",
            page.path,
            text,
            row.with_write(text, rendered_rev=rev),
            len(new_ids),
        )

    sections = tuple(page.sections)
    if new_ids:
        sections = (*sections, Section("new", now, new_ids))
    text = adapter.render_page(book, sections, page.page_title)
    row = replace(page, sections=sections).with_write(text, rendered_rev=rev)
    if text == current:
        return Planned(book.id, "skip", "unchanged", page.path, None, row, 0)
    return Planned(
        book.id,
        "rewrite",
        "untouched since last write; re-rendered",
        page.path,
        text,
        row,
        len(new_ids),
    )
