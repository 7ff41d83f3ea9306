"""Adopting every real page Readwise's own plugins wrote (tests/fixtures): syncd recognises the
highlights already in the page, appends only what is new, and from then on merges per block.

For each fixture the export data is rebuilt from the page itself (tests/fixture_export.py), the
page is put where Readwise put it, and one new highlight is added upstream.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.adapters.base import Section
from syncd.model import Highlight
from syncd.sync.merge import find_units, parse
from tests.fixture_export import BOOK_ID, FixtureCase, fixture_names, load_case
from tests.harness import Harness

NEW_TEXT = "A highlight made upstream after adoption, in words no fixture uses"
NEW_URL = "https://read.readwise.io/read/01hadoptedpagenewhighlight"
REVISED = " (revised in Readwise)"

CASES = {name: load_case(name) for name in fixture_names()}
ADOPTABLE = [name for name, case in CASES.items() if case.adoptable]
LEFT_ALONE = [name for name, case in CASES.items() if not case.adoptable]

_OBSIDIAN_SECTION = r"## New highlights added [A-Z][a-z]+ \d{1,2}, \d{4} at \d{1,2}:\d{2} [AP]M"
_LOGSEQ_SECTION = r"- New highlights added \[\[[^\]\n]+\]\] at \d{1,2}:\d{2} [AP]M"


def _vault(tmp_path: Path, case: FixtureCase) -> tuple[Harness, Path, int]:
    """A target holding only the fixture, at Readwise's path; its book plus one new highlight."""
    h = Harness(tmp_path, case.fmt)
    page = h.vault / case.vault_path
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_bytes(case.text.encode("utf-8"))
    h.source.books[BOOK_ID] = case.book
    new_id = h.source.add_highlight(BOOK_ID, NEW_TEXT, url=NEW_URL)
    return h, page, new_id


def _appended_section(case: FixtureCase) -> re.Pattern[str]:
    """What the one new highlight's section must look like, in Readwise's default format."""
    link = "View Tweet" if case.book.category == "tweets" else "View Highlight"
    item = re.escape(f"{NEW_TEXT} ([{link}]({NEW_URL}))")
    # A line break first only when the page did not end its last line.
    if case.fmt == "obsidian":
        return re.compile(rf"\n?{_OBSIDIAN_SECTION}\n- {item}\n")
    return re.compile(rf"\n?{_LOGSEQ_SECTION}\n\t- {item}")  # Logseq files end without "\n"


def _rendered(h: Harness, highlight_ids: list[int]) -> dict[int, str]:
    """syncd's own render of each highlight's block, as it would write it now."""
    book = h.source.books[BOOK_ID]
    section = (Section("first", h.now, tuple(highlight_ids)),)
    parts = h.adapter.render_parts(book, section, h.page(BOOK_ID).page_title)
    return {hid: block.rstrip("\n") for hid, block in parts.blocks.items()}


def recognition(h: Harness, case: FixtureCase) -> tuple[list[int], list[int], list[int]]:
    """The fixture's highlights syncd recognised exactly (a block of the page, with its Tags and
    Note children, is byte for byte what syncd renders for it), fuzzily (by id, link or words:
    the block differs) and not at all."""
    records = h.page(BOOK_ID).blocks
    rendered = _rendered(h, case.highlight_ids)
    _lines, units = find_units(parse(case.fmt, case.text), case.fmt)
    blocks = {unit.text.rstrip("\n") for unit in units}
    # Reader heading highlights are heading lines, not list items: each line is its block.
    blocks |= {line for line in case.text.split("\n") if line.startswith("###")}
    exact, fuzzy, missing = [], [], []
    for hid in case.highlight_ids:
        if hid not in records:
            missing.append(hid)
        elif rendered[hid] in blocks:
            exact.append(hid)
        else:
            fuzzy.append(hid)
    return exact, fuzzy, missing


def _assert_second_pass_writes_nothing(h: Harness, page: Path) -> None:
    before = page.read_bytes()
    summary = h.sync()
    assert (summary.created, summary.updated, summary.failed) == (0, 0, 0)
    assert page.read_bytes() == before


@pytest.mark.parametrize("name", ADOPTABLE)
def test_adopting_a_readwise_page_appends_only_the_new_highlight(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    h, page, new_id = _vault(tmp_path, case)
    summary = h.sync()
    result = page.read_text(encoding="utf-8")

    assert h.files_on_disk() == [page], "a page was created beside the adopted one"
    assert h.page(BOOK_ID).path == case.vault_path
    assert summary.highlights_added == 1
    # The page is the original, byte for byte (a last `Tags: [[x]] ` line keeps its space,
    # which the plugin's own `existing.rstrip() + "\n" + section` would strip), then exactly one
    # new section.
    kept = case.text
    assert result.startswith(kept), "a line that was in the page changed"
    tail = result[len(kept) :]
    assert _appended_section(case).fullmatch(tail), f"unexpected appended text: {tail!r}"
    # Every highlight of the page was recognised (none re-added, none taken as user-deleted).
    _exact, _fuzzy, missing = recognition(h, case)
    assert missing == [], f"{len(missing)} of {len(case.highlight_ids)} not recognised"
    assert not h.page(BOOK_ID).tombstones
    assert new_id in h.page(BOOK_ID).blocks
    _assert_second_pass_writes_nothing(h, page)


def _occurrences(text: str, part: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(part), text)]


@pytest.mark.parametrize("name", ADOPTABLE)
def test_upstream_edit_after_adoption_replaces_exact_blocks_and_keeps_fuzzy_ones(
    tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    h, page, _new_id = _vault(tmp_path, case)
    h.sync()
    exact, fuzzy, _missing = recognition(h, case)
    before = page.read_text(encoding="utf-8")
    records = h.page(BOOK_ID).blocks
    highlights: dict[int, Highlight] = {x.id: x for x in h.source.books[BOOK_ID].highlights}
    for hid in exact[:1] + fuzzy[:1]:
        h.source.edit(hid, text=highlights[hid].text + REVISED)
    summary = h.sync()
    after = page.read_text(encoding="utf-8")

    if exact:
        # Replaced in place: the block as recognised becomes syncd's render of the new text,
        # and nothing else in the page changes.
        old = records[exact[0]].text.rstrip("\n")
        new = _rendered(h, case.highlight_ids)[exact[0]]
        assert REVISED in new
        choices = [before[:i] + new + before[i + len(old) :] for i in _occurrences(before, old)]
        assert after in choices
    else:
        assert after == before
    # A block recognised only fuzzily differs from syncd's render: it counts as the user's
    # text, kept as it is, and the upstream change is recorded as a conflict.
    assert sorted(c.highlight_id for _book, c in h.store.conflicts("t")) == fuzzy[:1]
    assert summary.conflicts == len(fuzzy[:1])
    assert h.files_on_disk() == [page]
    _assert_second_pass_writes_nothing(h, page)


@pytest.mark.parametrize("name", LEFT_ALONE)
def test_pages_without_highlights_are_left_alone(tmp_path: Path, name: str) -> None:
    """A sync log, an empty page or a Full Document companion is not the book's highlights page:
    syncd must not write into it (its highlights go to a page of their own)."""
    case = CASES[name]
    h, page, new_id = _vault(tmp_path, case)
    h.sync()
    assert page.read_bytes() == case.text.encode("utf-8")
    assert h.page(BOOK_ID).path != case.vault_path
    assert NEW_TEXT in h.read(BOOK_ID) and new_id in h.page(BOOK_ID).blocks
    _assert_second_pass_writes_nothing(h, page)
