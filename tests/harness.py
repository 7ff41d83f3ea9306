"""An in-process sync target for fast engine tests: a real state store, a real vault folder and
real adapters, fed by an in-memory library instead of HTTP (the e2e suites cover HTTP)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from syncd.adapters.base import Adapter
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.adapters.vault import VaultFiles
from syncd.model import Book, Highlight
from syncd.notes.template_set import TemplateSet
from syncd.sync.engine import TargetRuntime, TargetSummary, run_pass
from syncd.sync.plan import TargetPolicy
from syncd.sync.state import PageRow, StateStore

SECTION_TIME = datetime(2024, 3, 5, 9, 15, tzinfo=UTC)


@dataclass
class _Page:
    books: list[Book]


class MemorySource:
    """The export as a dict of books; every pass sees every book (upserts are idempotent)."""

    def __init__(self) -> None:
        self.books: dict[int, Book] = {}
        self._next_highlight = 1000

    def check_token(self) -> None:
        return None

    def export_pages(
        self,
        *,
        updated_after: datetime | None,
        include_deleted: bool = True,
        ids: Sequence[int] | None = None,
    ) -> Iterator[_Page]:
        yield _Page(list(self.books.values()))

    # --- upstream changes --------------------------------------------------------------------

    def add_book(self, book_id: int, title: str, texts: Sequence[str] = (), **fields: Any) -> Book:
        book = Book(id=book_id, title=title, author=fields.pop("author", "Ann Author"), **fields)
        self.books[book_id] = book
        for text in texts:
            self.add_highlight(book_id, text)
        return self.books[book_id]

    def add_highlight(self, book_id: int, text: str, **fields: Any) -> int:
        self._next_highlight += 1
        hid = self._next_highlight
        location = fields.pop("location", hid)
        book = self.books[book_id]
        highlight = Highlight(
            id=hid,
            book_id=book_id,
            text=text,
            location=location,
            location_type="order",
            url=fields.pop("url", f"https://read.readwise.io/read/h{hid}"),
            **fields,
        )
        self.books[book_id] = book.with_highlights((*book.highlights, highlight))
        return hid

    def _update(self, hid: int, **changes: Any) -> None:
        for book_id, book in self.books.items():
            if any(h.id == hid for h in book.highlights):
                self.books[book_id] = book.with_highlights(
                    replace(h, **changes) if h.id == hid else h for h in book.highlights
                )
                return
        raise KeyError(hid)

    def edit(self, hid: int, **changes: Any) -> None:
        self._update(hid, **changes)

    def delete(self, hid: int) -> None:
        self._update(hid, is_deleted=True)

    def edit_book(self, book_id: int, **changes: Any) -> None:
        self.books[book_id] = replace(self.books[book_id], **changes)

    def live_ids(self, book_id: int) -> list[int]:
        return [h.id for h in self.books[book_id].live_highlights()]


class Harness:
    def __init__(self, root: Path, fmt: Literal["obsidian", "logseq"], **policy: Any) -> None:
        self.fmt = fmt
        self.vault = root / "vault"
        self.vault.mkdir(parents=True, exist_ok=True)
        self.store = StateStore.open(root / "state")
        self.source = MemorySource()
        block_ids = bool(policy.pop("block_ids", False))
        # The templates under test (default: Readwise's defaults). Readwise's sync log page is
        # left out unless a test asks for it: each test here looks at the book pages it makes.
        templates = policy.pop("templates", None) or TemplateSet(format=fmt)
        self.adapter: Adapter = (
            LogseqAdapter(block_ids=block_ids, templates=templates)
            if fmt == "logseq"
            else ObsidianAdapter(block_ids=block_ids, templates=templates)
        )
        self.files = VaultFiles(self.vault)
        self.policy = TargetPolicy(name="t", vault=self.vault, **policy)
        self.now = SECTION_TIME
        self._clock = datetime(2030, 1, 1, tzinfo=UTC)

    def runtime(self) -> TargetRuntime:
        folder = "pages" if self.fmt == "logseq" else ""
        return TargetRuntime(
            policy=self.policy,
            adapter=self.adapter,
            read_file=self.files.read,
            write_file=self.files.write,
            write_batch=self.files.write_batch,
            cleanup_temp=self.files.cleanup_temp,
            list_files=functools.partial(self.files.list_markdown, folder),
        )

    def sync(self, **options: Any) -> TargetSummary:
        self._clock += timedelta(hours=1)
        clock = self._clock
        summary = run_pass(
            self.store,
            self.source,
            [self.runtime()],
            base_url="memory://",
            overlap=timedelta(0),
            now=lambda: self.now,
            clock=lambda: clock,
            **options,
        )
        return summary.targets[0]

    def page(self, book_id: int) -> PageRow:
        page = self.store.page("t", book_id)
        assert page is not None, f"no page for book {book_id}"
        return page

    def path(self, book_id: int) -> Path:
        return self.vault / self.page(book_id).path

    def read(self, book_id: int) -> str:
        return self.path(book_id).read_text(encoding="utf-8")

    def write(self, book_id: int, text: str) -> None:
        self.path(book_id).write_text(text, encoding="utf-8")

    def files_on_disk(self) -> list[Path]:
        return sorted(p for p in self.vault.rglob("*") if p.is_file())
