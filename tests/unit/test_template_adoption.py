"""Adoption with a user's templates: a page Readwise wrote with the user's custom templates (the
families of tests/template_families.py) is taken over by syncd when the same templates are
configured: no second file, no line changed, each highlight recorded once; a new upstream
highlight is appended in the user's own format; and a second pass writes nothing.

Without the templates configured, the same page is still adopted as today: no second file, no
line of it changed, no highlight of it written twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.adapters.base import Section
from syncd.notes.template_set import TemplateSet
from tests.harness import SECTION_TIME, Harness
from tests.template_families import FamilyCase, all_cases

NEW_TEXT = "A highlight made upstream after adoption, in words no family page uses"
NEW_URL = "https://read.readwise.io/read/01hadoptedfamilypagenewhighlight"
REVISED = " (revised in Readwise)"

CASES = all_cases()


def _page_ids(case: FamilyCase) -> list[int]:
    """The highlights the page shows (O4 v2's page is its last sync's chunk alone)."""
    shown = case.sections[-1:] if case.expected_part == "last_section" else case.sections
    return [hid for section in shown for hid in section.highlight_ids]


def _vault(tmp_path: Path, case: FamilyCase, templates: TemplateSet | None) -> tuple[Harness, Path]:
    """A target holding only the family page, where Readwise put it, and the page's book."""
    chosen = templates if templates is not None else TemplateSet(format=case.format)
    h = Harness(tmp_path, case.format, templates=chosen)
    h.adapter = case.adapter(chosen)
    name = case.page.name.split(" ", 1)[1] if case.page is not None else _syncd_name(case)
    page = h.vault / h.adapter.folder_for(case.book) / name
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(case.expected, encoding="utf-8")
    shown = set(_page_ids(case))
    h.source.books[case.book.id] = case.book.with_highlights(
        x for x in case.book.highlights if x.id in shown
    )
    return h, page


def _syncd_name(case: FamilyCase) -> str:
    adapter = case.adapter()
    return adapter.file_name(adapter.page_title(case.book))


def _assert_second_pass_writes_nothing(h: Harness, page: Path) -> None:
    before = page.read_bytes()
    summary = h.sync()
    assert (summary.created, summary.updated, summary.failed) == (0, 0, 0)
    assert page.read_bytes() == before


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_family_page_is_adopted_with_the_users_templates(
    tmp_path: Path, case: FamilyCase
) -> None:
    h, page = _vault(tmp_path, case, case.template_set(sync_log=False))

    summary = h.sync()

    assert h.files_on_disk() == [page], "a page was created beside the adopted one"
    assert page.read_text(encoding="utf-8") == case.expected, "a line of the page changed"
    assert summary.highlights_added == 0
    row = h.page(case.book.id)
    assert sorted(row.blocks) == sorted(_page_ids(case)), "a highlight was not recognised"
    assert not row.tombstones
    # Each highlight's recorded block is in the page once: recognised, not taken twice.
    text = page.read_text(encoding="utf-8")
    for hid, record in row.blocks.items():
        assert text.count(record.text.strip("\n")) == 1, f"highlight {hid}"
    _assert_second_pass_writes_nothing(h, page)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_new_highlight_is_appended_in_the_users_format(tmp_path: Path, case: FamilyCase) -> None:
    h, page = _vault(tmp_path, case, case.template_set(sync_log=False))
    h.sync()
    new_id = h.source.add_highlight(case.book.id, NEW_TEXT, url=NEW_URL, location=10**6)

    summary = h.sync()

    assert summary.highlights_added == 1
    assert h.files_on_disk() == [page]
    book = h.source.books[case.book.id]
    # The page as it was, then what Readwise itself appends to a touched page: the user's
    # header and highlight templates. (Readwise trims the page's trailing whitespace first;
    # syncd keeps every byte of the page, so only the whitespace between may differ.)
    section = Section("new", SECTION_TIME, (new_id,))
    kept = case.expected.rstrip()
    appended = h.adapter.append_section(case.expected, book, section)[len(kept) :]
    result = page.read_text(encoding="utf-8")
    assert result.startswith(kept)
    assert result[len(kept) :].lstrip() == appended.lstrip()
    assert NEW_TEXT in appended
    assert new_id in h.page(case.book.id).blocks
    _assert_second_pass_writes_nothing(h, page)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_without_the_templates_the_page_is_still_adopted(tmp_path: Path, case: FamilyCase) -> None:
    h, page = _vault(tmp_path, case, None)

    h.sync()

    assert h.files_on_disk() == [page], "a page was created beside the adopted one"
    text = page.read_text(encoding="utf-8")
    assert text.startswith(case.expected.rstrip()), "a line of the page changed"
    for highlight in case.book.live_highlights():
        first_line = highlight.text.split("\n", 1)[0]
        assert text.count(first_line) == case.expected.count(first_line), (
            f"highlight {highlight.id} was written again"
        )
    _assert_second_pass_writes_nothing(h, page)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_an_upstream_edit_after_adoption_rewrites_that_highlight_only(
    tmp_path: Path, case: FamilyCase
) -> None:
    """Adopted highlights are recognised exactly (dates Readwise printed included), so an edit
    in Readwise replaces the highlight in place, in the user's format, without a conflict."""
    h, page = _vault(tmp_path, case, case.template_set(sync_log=False))
    h.sync()
    target = _page_ids(case)[-1]
    old_text = next(x.text for x in case.book.highlights if x.id == target)
    old_block = h.page(case.book.id).blocks[target].text.strip("\n")
    h.source.edit(target, text=old_text + REVISED)

    summary = h.sync()

    result = page.read_text(encoding="utf-8")
    assert summary.conflicts == 0 and not list(h.store.conflicts("t"))
    assert old_block not in result
    new_block = h.page(case.book.id).blocks[target].text.strip("\n")
    assert REVISED.strip() in new_block and result.count(new_block) == 1
    assert result == case.expected.replace(old_block, new_block, 1)
    _assert_second_pass_writes_nothing(h, page)
