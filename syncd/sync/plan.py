"""Decide, per target and book, what to do with its page: one action with a reason.

- new book: adopt the page Readwise's own plugin already wrote for it, if there is one (its
  highlights are recognised, nothing in it changes, only new highlights are appended); else create
  a page under a name unique in its folder (case-insensitively);
- page exactly as syncd last wrote it: re-render it in full from current data, keeping its sections
  (new highlights get a "New highlights added" section);
- page the user changed: block-level three-way merge (syncd.sync.merge);
- page the user deleted: not recreated (unless resync); page moved: followed;
- unchanged result: skip, no write.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from syncd.adapters._fs import disambiguators, fold_name, unique_name
from syncd.adapters.base import Adapter, RenderedPage, Section
from syncd.model import Book, fold_tag
from syncd.notes.blockids import stable_block_id
from syncd.notes.render import heading_level
from syncd.sources.target_view import target_view
from syncd.sync.dated_spans import PROBE_SHIFT
from syncd.sync.locate import OwnedPaths
from syncd.sync.merge import (
    BlockRecord,
    Conflict,
    Format,
    Ours,
    adopt_blocks,
    merge_page,
    render_hash,
)
from syncd.sync.state import (
    PAGE_DELETED_BY_USER,
    PAGE_DELETED_UPSTREAM,
    PAGE_LIVE,
    PAGE_PENDING,
    PageRow,
    text_hash,
)
from syncd.wording import counted
from syncd.writeback.echo import settle_echoes, settle_span_echoes

Action = Literal["create", "adopt", "rewrite", "merge", "append", "skip", "conflict"]

PAGE_FILTERED = "filtered"
PAGE_EMPTY = "empty"  # no live highlight yet: nothing to write


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """What the engine needs to know of a target (not the whole config)."""

    name: str
    vault: Path
    categories: frozenset[str] | None = None
    on_upstream_delete: Literal["remove", "keep"] = "remove"
    layout: Literal["append", "rewrite"] = "append"
    resync_deleted: bool = False
    write_back: frozenset[str] = frozenset()  # fields sent back to Readwise (syncd.writeback)
    sources: frozenset[str] | None = None  # "readwise" and device source names; None: all
    only_tags: frozenset[str] = frozenset()  # folded document tags (model.fold_tag)
    skip_tags: frozenset[str] = frozenset()

    def unselected(self, book: Book) -> str | None:
        """Why a book is not for this target (category or document tags), or None."""
        if self.categories is not None and book.category not in self.categories:
            return "category not selected"
        if self.only_tags or self.skip_tags:
            tags = {fold_tag(tag) for tag in book.tags}
            if self.only_tags and not tags & self.only_tags:
                return "no document tag from only_tags"
            if tags & self.skip_tags:
                return "has a document tag from skip_tags"
        return None


@dataclass(frozen=True, slots=True)
class Planned:
    book_id: int
    action: Action
    reason: str
    path: str
    text: str | None  # the new file text, when there is something to write
    page: PageRow  # the row as it will be once the action is done
    highlights_added: int
    expected_hash: str | None = None  # the file's hash when planned (None: must not exist)
    blocks_affected: int = 0
    highlights_removed: int = 0
    conflicts: tuple[Conflict, ...] = field(default=())
    book_title: str = ""  # set where there is no path to name the book by (a skipped book)


ReadFile = Callable[[str], str | None]
# (book, desired relative path) -> (relative path, text) of a page someone else wrote for it
FindExisting = Callable[[Book, str], tuple[str, str] | None]
# page row whose file is gone -> its new relative path if it was moved or renamed
FindMoved = Callable[[PageRow, Book], str | None]


class FolderNames:
    """Names taken per folder (case-insensitively): files on disk plus pages syncd owns."""

    def __init__(self, vault: Path, owned: OwnedPaths) -> None:
        self._vault = vault
        self._taken: dict[str, set[str]] = {}
        self._owned = owned

    def taken(self, folder: PurePosixPath) -> set[str]:
        key = folder.as_posix()
        names = self._taken.get(key)
        if names is None:
            names = set()
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                names.update(fold_name(entry.name) for entry in (self._vault / folder).iterdir())
            for owned in self._owned.paths():
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


def _records(parts: RenderedPage) -> dict[int, BlockRecord]:
    return {
        hid: BlockRecord(block.rstrip("\n") + "\n", render_hash(block))
        for hid, block in parts.blocks.items()
    }


def _ours(adapter: Adapter, book: Book, sections: tuple[Section, ...], title: str) -> Ours:
    parts = adapter.render_parts(book, sections, title)
    order = tuple(h.id for h in book.live_highlights())
    fmt: Format = "logseq" if adapter.name == "logseq" else "obsidian"
    ids = {hid: stable_block_id(fmt, hid) for hid in order}
    spans = adapter.tracks_spans or any(heading_level(h) for h in book.live_highlights())
    texts = {h.id: h.text for h in book.live_highlights()}  # the SpanMatcher's words
    return Ours(
        head=parts.head, blocks=parts.blocks, order=order, block_ids=ids, spans=spans, texts=texts
    )


@dataclass(frozen=True, slots=True)
class PlanContext:
    policy: TargetPolicy
    adapter: Adapter
    names: FolderNames
    read_file: ReadFile
    now: datetime
    find_existing: FindExisting | None = None
    find_moved: FindMoved | None = None
    resync: frozenset[int] = frozenset()  # book ids the user asked to restore
    # book id -> first-section time of a page a killed pass was creating (its create marker)
    first_synced: Mapping[int, datetime] = field(default_factory=dict)
    # The target's templates differ from those its pages were written with: untouched pages are
    # re-rendered, touched ones keep their blocks and only get new highlights in the new format.
    templates_changed: bool = False


def plan_book(*, book: Book, rev: int, page: PageRow | None, ctx: PlanContext) -> Planned:
    policy = ctx.policy
    book = target_view(book, policy.sources, page)  # its sources only, each passage once
    live = book.live_highlights()
    restoring: PageRow | None = None
    if page is not None and book.id in ctx.resync and page.status == PAGE_DELETED_BY_USER:
        restoring, page = page, None  # restore: plan it as a new page again, at its old path
    unselected = policy.unselected(book) if page is None else None
    if unselected is not None:
        row = PageRow(policy.name, book.id, "", "", PAGE_FILTERED, False, (), None, None, rev)
        return Planned(book.id, "skip", unselected, "", None, row, 0, book_title=book.display_title)

    if page is None or page.status in (PAGE_FILTERED, PAGE_EMPTY, PAGE_PENDING):
        if book.is_deleted or not live:
            row = PageRow(policy.name, book.id, "", "", PAGE_EMPTY, False, (), None, None, rev)
            return Planned(
                book.id, "skip", "no live highlights", "", None, row, 0,
                book_title=book.display_title,
            )  # fmt: skip
        return _new_page(book, rev, ctx, restoring)

    if page.status == PAGE_DELETED_UPSTREAM and not book.is_deleted and live:
        page = replace(page, status=PAGE_LIVE)  # the book came back in Readwise
    if page.status == PAGE_DELETED_BY_USER and policy.resync_deleted and live:
        return _new_page(book, rev, ctx, page)
    if page.status in (PAGE_DELETED_BY_USER, PAGE_DELETED_UPSTREAM):
        reason = page.status.replace("_", " ")
        return Planned(book.id, "skip", reason, page.path, None, replace(page, rendered_rev=rev), 0)

    current = ctx.read_file(page.path)
    if current is None and ctx.find_moved is not None:
        moved_to = ctx.find_moved(page, book)
        if moved_to is not None:
            page = replace(page, path=moved_to)
            current = ctx.read_file(moved_to)
    if current is None:
        if policy.resync_deleted and live:
            return _new_page(book, rev, ctx, page)
        row = replace(page, status=PAGE_DELETED_BY_USER, rendered_rev=rev)
        return Planned(
            book.id, "skip", "deleted by the user; not recreated", page.path, None, row, 0
        )
    if book.is_deleted:
        row = replace(page, status=PAGE_DELETED_UPSTREAM, rendered_rev=rev)
        return Planned(
            book.id,
            "skip",
            "book deleted in Readwise; page kept",
            page.path,
            None,
            row,
            0,
            text_hash(current),
        )

    known = {hid for section in page.sections for hid in section.highlight_ids} | set(page.blocks)
    new_ids = tuple(h.id for h in live if h.id not in known and h.id not in page.tombstones)
    current_hash = text_hash(current)
    if not page.user_modified and current_hash == page.written_hash:
        return _rerender(book, rev, page, new_ids, current, ctx)
    return _merge(book, rev, page, new_ids, current, ctx)


def _new_page(book: Book, rev: int, ctx: PlanContext, previous: PageRow | None = None) -> Planned:
    """A page for a book this target has none of (or one the user deleted and wants back:
    `previous`, whose path is used again when it is free)."""
    adapter = ctx.adapter
    live = book.live_highlights()
    folder = adapter.folder_for(book)
    first = (Section("first", ctx.now, tuple(h.id for h in live)),)
    if previous is not None and previous.path and ctx.read_file(previous.path) is None:
        return _created(
            book,
            rev,
            previous.path,
            previous.page_title,
            first,
            ctx,
            "restored at the user's request",
        )
    if ctx.find_existing is not None:
        desired = (folder / adapter.file_name(adapter.page_title(book))).as_posix()
        existing = ctx.find_existing(book, desired)
        if existing is not None:
            adopted = _adopt(book, rev, existing[0], existing[1], first, ctx)
            if adopted is not None:
                return adopted
    title, file_name = _pick_name(adapter, book, folder, ctx.names.taken(folder))
    return _created(book, rev, (folder / file_name).as_posix(), title, first, ctx, "new book")


def _pristine_row(
    book: Book,
    rev: int,
    path: str,
    title: str,
    first: tuple[Section, ...],
    ctx: PlanContext,
    parts: RenderedPage,
) -> PageRow:
    """The row of a page exactly as syncd renders it (new, restored, or found unrecorded)."""
    return PageRow(
        ctx.policy.name,
        book.id,
        path,
        title,
        PAGE_LIVE,
        False,
        first,
        parts.text,
        text_hash(parts.text),
        rev,
        _records(parts),
        frozenset(),
        parts.head,
    )


def _created(
    book: Book,
    rev: int,
    path: str,
    title: str,
    first: tuple[Section, ...],
    ctx: PlanContext,
    reason: str,
) -> Planned:
    parts = ctx.adapter.render_parts(book, first, title)
    row = _pristine_row(book, rev, path, title, first, ctx, parts)
    count = len(first[0].highlight_ids)
    return Planned(book.id, "create", reason, path, parts.text, row, count, blocks_affected=count)


def _title_for_name(adapter: Adapter, book: Book, name: str) -> str:
    """The page title that goes with file `name`: a page syncd created for a book whose title
    clashed carries the book id (see _pick_name), in its title as in its name."""
    base = adapter.page_title(book)
    for extra in itertools.islice(disambiguators(book.id), 10):
        if fold_name(adapter.file_name(base, extra)) == fold_name(name):
            return base + extra
    return base


def _adopt(
    book: Book, rev: int, path: str, text: str, first: tuple[Section, ...], ctx: PlanContext
) -> Planned | None:
    """Take over a page that Readwise's plugin (or an earlier install) wrote for this book."""
    adapter = ctx.adapter
    title = _title_for_name(adapter, book, PurePosixPath(path).name)
    created_at = ctx.first_synced.get(book.id)
    if created_at is not None:
        # A killed pass was creating it, maybe on another day: with that pass's date, the page
        # renders as written (a Logseq page shows the date).
        hinted = (replace(first[0], synced_at=created_at),)
        parts = adapter.render_parts(book, hinted, title)
        if parts.text == text:
            first = hinted
    if created_at is None or parts.text != text:
        parts = adapter.render_parts(book, first, title)
    if parts.text == text:
        # Exactly the page syncd would create: one it created itself and did not get to record
        # (a crash between the write and the commit). It is syncd's own, untouched.
        row = _pristine_row(book, rev, path, title, first, ctx, parts)
        ctx.names.taken(PurePosixPath(path).parent).add(fold_name(PurePosixPath(path).name))
        return Planned(
            book.id, "adopt", "syncd's own page, recorded now", path, None, row, 0, text_hash(text)
        )
    ours = _ours(adapter, book, first, title)
    if ours.spans:  # see syncd.sync.dated_spans
        probe = (replace(first[0], synced_at=first[0].synced_at + PROBE_SHIFT),)
        ours = replace(ours, probe=adapter.render_parts(book, probe, title).blocks)
    fmt: Format = "logseq" if adapter.name == "logseq" else "obsidian"
    blocks, found = adopt_blocks(fmt=fmt, theirs=text, ours=ours)
    if found == 0:
        return None  # same name, but not this book's highlights: leave that file alone
    later = Section("new", ctx.now, ())
    merged = merge_page(
        fmt=fmt,
        theirs=text,
        base_head=ours.head,
        blocks=blocks,
        tombstones=frozenset(),
        ours=ours,
        append_section=_appender(adapter, book, later),
        on_upstream_delete=ctx.policy.on_upstream_delete,
        layout=ctx.policy.layout,
    )
    sections = (replace(later, highlight_ids=merged.added),) if merged.added else ()
    row = PageRow(
        ctx.policy.name,
        book.id,
        path,
        title,
        PAGE_LIVE,
        True,
        sections,
        merged.text,
        text_hash(merged.text),
        rev,
        merged.blocks,
        merged.tombstones,
        ours.head,
    )
    ctx.names.taken(PurePosixPath(path).parent).add(fold_name(PurePosixPath(path).name))
    changed = merged.text != text
    reason = f"adopted an existing page ({counted(found, 'highlight')} recognised)"
    if merged.added:
        reason += f", {len(merged.added)} new appended"
    return Planned(
        book.id,
        "adopt",
        reason,
        path,
        merged.text if changed else None,
        row,
        len(merged.added),
        text_hash(text),
        merged.blocks_affected,
        merged.removed,
    )


def _rerender(
    book: Book,
    rev: int,
    page: PageRow,
    new_ids: tuple[int, ...],
    current: str,
    ctx: PlanContext,
) -> Planned:
    sections = tuple(page.sections)
    if new_ids:
        sections = (*sections, Section("new", ctx.now, new_ids))
    parts = ctx.adapter.render_parts(book, sections, page.page_title)
    records = _records(parts)
    removed = sum(1 for hid in page.blocks if hid not in records)
    row = replace(page, sections=sections, blocks=records, head=parts.head).with_write(
        parts.text, rendered_rev=rev
    )
    if parts.text == current:
        return Planned(book.id, "skip", "unchanged", page.path, None, row, 0, text_hash(current))
    changed = sum(
        1
        for hid, rec in records.items()
        if hid in page.blocks and page.blocks[hid].render != rec.render
    )
    reason = "as syncd wrote it; re-rendered from current data"
    if ctx.templates_changed:
        reason = "as syncd wrote it; re-rendered with the target's new templates"
    return Planned(
        book.id,
        "rewrite",
        reason,
        page.path,
        parts.text,
        row,
        len(new_ids),
        text_hash(current),
        changed + removed + len(new_ids),
        removed,
    )


def _merge(
    book: Book,
    rev: int,
    page: PageRow,
    new_ids: tuple[int, ...],
    current: str,
    ctx: PlanContext,
) -> Planned:
    adapter, policy = ctx.adapter, ctx.policy
    later = Section("new", ctx.now, new_ids)
    if len(current) > MERGE_LIMIT_CHARS:
        return _append_only(book, rev, page, later, current, ctx)
    # Every live highlight's block, whichever section (if any) it ends up in.
    everything = (Section("first", ctx.now, tuple(h.id for h in book.live_highlights())),)
    ours = _ours(adapter, book, everything, page.page_title)
    fmt: Format = "logseq" if adapter.name == "logseq" else "obsidian"
    blocks = page.blocks
    if not blocks and page.sections:
        # A page from before block records: its sections say which highlights it holds.
        blocks = _legacy_records(page, adapter, book)
    if policy.write_back and ours.spans:
        blocks = settle_span_echoes(fmt, current, blocks, ours)
    merged = merge_page(
        fmt=fmt,
        theirs=current,
        base_head=page.head,
        blocks=blocks,
        tombstones=page.tombstones,
        ours=ours,
        append_section=_appender(adapter, book, later),
        on_upstream_delete=policy.on_upstream_delete,
        layout=policy.layout,
        resync_deleted=policy.resync_deleted,
        rebase=ctx.templates_changed,
    )
    if policy.write_back:
        merged = settle_echoes(fmt, merged)
    sections = tuple(page.sections)
    if merged.added and policy.layout == "append":
        sections = (*sections, replace(later, highlight_ids=merged.added))
    row = replace(
        page,
        user_modified=True,
        sections=sections,
        blocks=merged.blocks,
        tombstones=merged.tombstones,
        head=ours.head,
    ).with_write(merged.text, rendered_rev=rev)
    if merged.text == current:
        if merged.conflicts:
            return Planned(
                book.id,
                "conflict",
                "edited here and in Readwise; your text kept",
                page.path,
                None,
                row,
                0,
                text_hash(current),
                conflicts=tuple(merged.conflicts),
            )
        reason = "edited by the user; nothing new"
        return Planned(book.id, "skip", reason, page.path, None, row, 0, text_hash(current))
    only_added = merged.added and not (merged.replaced or merged.removed or merged.metadata_updated)
    action: Action = "append" if only_added else "merge"
    reason = (
        f"edited by the user; merged per block ({merged.replaced} replaced, "
        f"{merged.removed} removed, {len(merged.added)} added, "
        f"{merged.metadata_updated} metadata lines, {len(merged.conflicts)} conflicts)"
    )
    return Planned(
        book.id,
        action,
        reason,
        page.path,
        merged.text,
        row,
        len(merged.added),
        text_hash(current),
        merged.blocks_affected,
        merged.removed,
        tuple(merged.conflicts),
    )


# Above this size a page is not parsed for a block merge (a pasted image or a PDF dump made it
# hundreds of MB of parser state); new highlights are only appended, as Readwise's plugin does.
MERGE_LIMIT_CHARS = 8_000_000


def _append_only(
    book: Book, rev: int, page: PageRow, later: Section, current: str, ctx: PlanContext
) -> Planned:
    reason = (
        f"larger than {MERGE_LIMIT_CHARS // 1_000_000} MB: new highlights appended, "
        "upstream edits not merged"
    )
    row = replace(page, user_modified=True, rendered_rev=rev)
    if not later.highlight_ids:
        return Planned(book.id, "skip", reason, page.path, None, row, 0, text_hash(current))
    text = ctx.adapter.append_section(current, book, later)
    # Block records for what was appended, so a later block merge knows them (not new again).
    appended = _records(ctx.adapter.render_parts(book, (later,), page.page_title))
    row = replace(
        row, sections=(*page.sections, later), blocks={**page.blocks, **appended}
    ).with_write(text, rendered_rev=rev)
    added = len(later.highlight_ids)
    return Planned(
        book.id, "append", reason, page.path, text, row, added, text_hash(current), added
    )


def _appender(
    adapter: Adapter, book: Book, section: Section
) -> Callable[[str, Sequence[int]], str]:
    def append(text: str, ids: Sequence[int]) -> str:
        return adapter.append_section(text, book, replace(section, highlight_ids=tuple(ids)))

    return append


def _legacy_records(page: PageRow, adapter: Adapter, book: Book) -> dict[int, BlockRecord]:
    if page.written_text is None:
        return {}
    fmt: Format = "logseq" if adapter.name == "logseq" else "obsidian"
    ours = _ours(adapter, book, page.sections, page.page_title)
    records, _found = adopt_blocks(fmt=fmt, theirs=page.written_text, ours=ours)
    return records
