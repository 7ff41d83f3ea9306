"""The custom-template families of tests/fixtures/README.md (L5-L9, O2-O6) as test cases.

Each family has:
- `tests/templates/<name>/`: the `.j2` files a user would paste into Readwise's template boxes
  (Readwise's dialect only: Jinja2, `date(...)`, `pluralize`);
- `tests/fixtures/families/<name>.json`: the case. `book` is the export data behind the page, in
  the API's shape (`syncd.model.book_from_json` reads it), rebuilt from the visible page;
  `sections` are the syncs the page shows (times in UTC, shown in `tz`); `page` is the real
  page it comes from (under tests/fixtures, None for a family with no page in the sample) and
  `expected` the bytes syncd must write: the real page itself, or a faithful excerpt of it
  (`families/<name>.expected.md`, every line a line of the real page, in order) where the owner
  later edited the page or it is huge. `why` says what an excerpt left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from syncd.adapters.base import Adapter, Section
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.model import Book, book_from_json
from syncd.notes.template_set import TemplateSet, load_template_set
from tests.conftest import FIXTURES

TEMPLATES = Path(__file__).resolve().parent / "templates"
CASES = FIXTURES / "families"


@dataclass(frozen=True)
class FamilyCase:
    name: str
    family: str
    format: Literal["obsidian", "logseq"]
    templates: Path
    tz: ZoneInfo
    journal_format: str
    page: Path | None
    expected_path: Path
    sections: tuple[Section, ...]
    book: Book
    why: str
    # "page": the expected bytes are the whole page; "last_section": only what the last sync
    # added (a page Readwise created from an appended chunk alone).
    expected_part: str = "page"
    # The real file ends one blank line shorter than what Readwise (and syncd) render for it.
    final_blank_line_trimmed: bool = False

    @property
    def expected(self) -> str:
        """The page as it is in the vault (the real bytes, or the excerpt)."""
        return self.expected_path.read_text(encoding="utf-8")

    @property
    def rendered(self) -> str:
        """What syncd must write for it: the expected bytes, with the blank line the file lost
        at its end where `final_blank_line_trimmed` says so."""
        return self.expected + "\n" if self.final_blank_line_trimmed else self.expected

    def template_set(self, *, sync_log: bool = True) -> TemplateSet:
        """The user's templates; `sync_log=False` leaves Readwise's sync log page out (Logseq
        writes it by default), for tests that look only at the book's page."""
        templates = load_template_set(self.format, self.templates)
        return templates if sync_log else replace(templates, notification=None)

    def adapter(self, templates: TemplateSet | None = None) -> Adapter:
        chosen = self.template_set() if templates is None else templates
        if self.format == "logseq":
            return LogseqAdapter(self.journal_format, tz=self.tz, templates=chosen)
        return ObsidianAdapter(tz=self.tz, templates=chosen)

    def render(self) -> str:
        """What syncd writes for the case: the page, or the part `expected_part` names."""
        adapter = self.adapter()
        title = adapter.page_title(self.book)
        page = adapter.render_page(self.book, self.sections, title)
        if self.expected_part == "last_section":
            before = adapter.render_page(self.book, self.sections[:-1], title)
            assert page.startswith(before)
            return page[len(before) :]
        return page

    def __str__(self) -> str:  # pytest ids
        return self.name


def _section(data: dict[str, Any]) -> Section:
    return Section(
        kind=data["kind"],
        synced_at=datetime.fromisoformat(data["synced_at"]),
        highlight_ids=tuple(data["highlights"]),
    )


def load_case(path: Path) -> FamilyCase:
    data = json.loads(path.read_text(encoding="utf-8"))
    page = data.get("page")
    return FamilyCase(
        name=path.stem,
        family=data["family"],
        format=data["format"],
        templates=TEMPLATES / data["templates"],
        tz=ZoneInfo(data["tz"]),
        journal_format=data.get("journal_format") or "MMM do, yyyy",
        page=FIXTURES / page if page else None,
        expected_path=FIXTURES / data["expected"],
        sections=tuple(_section(s) for s in data["sections"]),
        book=book_from_json(data["book"]),
        why=data.get("why", ""),
        expected_part=data.get("expected_part", "page"),
        final_blank_line_trimmed=bool(data.get("final_blank_line_trimmed", False)),
    )


def all_cases() -> list[FamilyCase]:
    return [load_case(path) for path in sorted(CASES.glob("*.json"))]


def cases(fmt: str) -> list[FamilyCase]:
    return [case for case in all_cases() if case.format == fmt]
