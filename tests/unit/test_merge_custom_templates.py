"""Every row of the README's merge table ("How your edits and Readwise's edits meet") for pages
written with custom templates in which a highlight is not a `- ` list item (tests/templates/,
described in tests/unit/template_cases.py): the unit the engine tracks is what `highlight.j2`
rendered for that highlight."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.notes.blockids import stable_block_id
from tests.harness import Harness
from tests.unit.template_cases import (
    CASE_IDS,
    CASES,
    TemplateCase,
    core_lines,
    insert_after_unit,
    own_line,
    remove_unit,
    unit_span,
)

HIGHLIGHTED = datetime(2024, 2, 1, 8, 30, tzinfo=UTC)
cases = pytest.mark.parametrize("case", CASES, ids=CASE_IDS)


def _setup(tmp_path: Path, case: TemplateCase, **policy: object) -> tuple[Harness, list[int]]:
    h = Harness(tmp_path, case.fmt, templates=case.templates(), **policy)
    h.source.add_book(1, "The Book")
    for text, note, tags in (
        ("Alpha highlight text here", "", ()),
        ("Bravo highlight text here", "a note on bravo", ("favorite",)),
        ("Charlie highlight text here", "", ()),
    ):
        h.source.add_highlight(1, text, note=note, tags=tags, highlighted_at=HIGHLIGHTED)
    h.source.add_book(2, "Other Book", ["Delta highlight text here"])
    h.sync()
    return h, h.source.live_ids(1)


def _block(h: Harness, hid: int, book_id: int = 1) -> str:
    """The highlight's unit as syncd last wrote or found it (the state store's record)."""
    return h.page(book_id).blocks[hid].text


def _nonblank(text: str) -> Counter[str]:
    return Counter(line for line in text.split("\n") if line.strip())


@cases
def test_new_highlight_appends_a_section_to_an_edited_page(
    tmp_path: Path, case: TemplateCase
) -> None:
    h, _ids = _setup(tmp_path, case)
    edited = h.read(1) + own_line(case.fmt, "my own closing thought")
    h.write(1, edited)
    new = h.source.add_highlight(1, "Echo highlight arrives later", highlighted_at=HIGHLIGHTED)
    summary = h.sync()
    text = h.read(1)
    assert text.startswith(edited.rstrip("\n"))
    tail = text[len(edited.rstrip("\n")) :]
    assert tail.count("Echo highlight arrives later") == 1
    # In the template's own format: the new unit is what highlight.j2 rendered, whole.
    unit_span(tail.split("\n"), _block(h, new))
    assert summary.updated == 1 and summary.highlights_added == 1
    assert h.sync().updated == 0


@cases
def test_new_highlight_goes_in_reading_order_with_layout_rewrite(
    tmp_path: Path, case: TemplateCase
) -> None:
    h, ids = _setup(tmp_path, case, layout="rewrite")
    h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    between = h.source.books[1].highlights[0].location or 0
    new = h.source.add_highlight(1, "Between alpha and bravo", location=between)
    h.sync()
    text = h.read(1)
    lines = text.split("\n")
    alpha = unit_span(lines, _block(h, ids[0]))
    middle = unit_span(lines, _block(h, new))
    bravo = unit_span(lines, _block(h, ids[1]))
    assert alpha[1] <= middle[0] and middle[1] <= bravo[0]
    assert text.count("Between alpha and bravo") == 1 and "New highlights added" not in text


@cases
def test_upstream_edit_replaces_an_untouched_block_in_place(
    tmp_path: Path, case: TemplateCase
) -> None:
    h, ids = _setup(tmp_path, case)
    page = h.read(1) + own_line(case.fmt, "my line at the end")
    page = insert_after_unit(case.fmt, page, _block(h, ids[0]), "my child under alpha", child=True)
    h.write(1, page)
    before = _block(h, ids[0])
    h.source.edit(ids[0], text="Alpha highlight, as corrected in Readwise")
    summary = h.sync()
    text = h.read(1)
    after = _block(h, ids[0])
    assert "Alpha highlight text here" not in text and after != before
    # The unit's lines were swapped for the new render's, nothing else moved.
    assert _nonblank(text) == _nonblank(page) - _nonblank(before) + _nonblank(after)
    _start, end = unit_span(text.split("\n"), after)
    assert end <= text.split("\n").index(next(ln for ln in text.split("\n") if "my child" in ln))
    assert "my line at the end" in text
    assert h.store.conflicts("t") == [] and summary.conflicts == 0


@cases
def test_edit_on_both_sides_keeps_the_users_text_and_records_a_conflict(
    tmp_path: Path, case: TemplateCase
) -> None:
    h, ids = _setup(tmp_path, case)
    page = h.read(1).replace("Alpha highlight text here", "Alpha highlight, my wording")
    h.write(1, page)
    h.source.edit(ids[0], text="Alpha highlight, Readwise wording")
    h.source.edit(ids[1], text="Bravo highlight, fixed upstream")
    summary = h.sync()
    text = h.read(1)
    assert "Alpha highlight, my wording" in text and "Readwise wording" not in text
    assert "Bravo highlight, fixed upstream" in text and "Bravo highlight text" not in text
    conflicts = h.store.conflicts("t")
    assert [(book, c.highlight_id) for book, c in conflicts] == [(1, ids[0])]
    assert "my wording" in conflicts[0][1].theirs and "Readwise wording" in conflicts[0][1].upstream
    assert summary.conflicts == 1
    # A later Readwise edit of the other highlight still goes through; the user's text stays.
    h.source.edit(ids[2], text="Charlie highlight, fixed upstream")
    h.sync()
    assert "Alpha highlight, my wording" in h.read(1)
    assert "Charlie highlight, fixed upstream" in h.read(1)


@cases
@pytest.mark.parametrize("touched", [False, True])
def test_upstream_delete_removes_an_untouched_block(
    tmp_path: Path, case: TemplateCase, touched: bool
) -> None:
    h, ids = _setup(tmp_path, case)
    if touched:
        h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    before = h.read(1)
    removed = _block(h, ids[1])
    h.source.delete(ids[1])
    h.sync()
    text = h.read(1)
    assert "Bravo highlight" not in text and "a note on bravo" not in text
    # Exactly the unit's lines went (a `---` separator or a `**Date**` child with it).
    assert _nonblank(text) == _nonblank(before) - _nonblank(removed)
    assert ("mine" in text) == touched


@cases
def test_upstream_delete_with_keep_policy_keeps_the_block(
    tmp_path: Path, case: TemplateCase
) -> None:
    h, ids = _setup(tmp_path, case, on_upstream_delete="keep")
    h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    kept = _block(h, ids[1])
    h.source.delete(ids[1])
    h.sync()
    unit_span(h.read(1).split("\n"), kept)


@cases
def test_upstream_delete_of_a_block_edited_here_keeps_it(
    tmp_path: Path, case: TemplateCase
) -> None:
    h, ids = _setup(tmp_path, case)
    h.write(
        1, h.read(1).replace("Bravo highlight text here", "Bravo highlight text here, annotated")
    )
    h.source.delete(ids[1])
    h.sync()
    text = h.read(1)
    assert "Bravo highlight text here, annotated" in text and "a note on bravo" in text


@cases
def test_block_deleted_by_the_user_stays_deleted(tmp_path: Path, case: TemplateCase) -> None:
    h, ids = _setup(tmp_path, case)
    h.write(1, remove_unit(h.read(1), _block(h, ids[1])))
    h.source.edit(ids[1], text="Bravo highlight text here, edited upstream")
    h.source.add_highlight(1, "Foxtrot is new")
    h.sync()
    h.sync()
    text = h.read(1)
    assert "Bravo" not in text and text.count("Foxtrot is new") == 1
    assert ids[1] in h.page(1).tombstones


@cases
def test_resync_deleted_brings_a_deleted_block_back(tmp_path: Path, case: TemplateCase) -> None:
    h, ids = _setup(tmp_path, case, resync_deleted=True)
    gone = _block(h, ids[1])
    h.write(1, remove_unit(h.read(1), gone))
    h.source.add_highlight(1, "Lima makes the book due")
    h.sync()
    text = h.read(1)
    assert text.count("Bravo highlight text here") == 1
    unit_span(text.split("\n"), gone)


@cases
def test_everything_the_user_adds_is_kept_in_place(tmp_path: Path, case: TemplateCase) -> None:
    h, ids = _setup(tmp_path, case)
    page = h.read(1)
    if case.fmt == "obsidian":
        if page.startswith("---\n"):  # the template writes front matter: a key of the user's
            page = "---\nstatus: reading\n" + page[len("---\n") :]
        else:
            page = "---\nstatus: reading\n---\n" + page
        page = page.replace("## Highlights\n", "## Highlights\nA paragraph of mine.\n\n", 1)
        mine = ["status: reading", "A paragraph of mine.", "a paragraph of mine between"]
    else:
        page = page.replace("category:: #articles\n", "category:: #articles\nstatus:: reading\n")
        mine = ["status:: reading", "a block of mine between"]
    page = insert_after_unit(case.fmt, page, _block(h, ids[0]), mine[-1], child=False)
    h.write(1, page)
    h.source.add_highlight(1, "Golf is new")
    h.source.edit(ids[2], text="Charlie highlight, corrected")
    h.sync()
    text = h.read(1)
    for line in mine:
        assert text.count(line) == 1, line
    lines = text.split("\n")
    assert (
        unit_span(lines, _block(h, ids[0]))[1]
        <= lines.index(next(ln for ln in lines if mine[-1] in ln))
        < unit_span(lines, _block(h, ids[1]))[0]
    )
    assert "Charlie highlight, corrected" in text and text.count("Golf is new") == 1


@cases
def test_metadata_follows_readwise_where_untouched(tmp_path: Path, case: TemplateCase) -> None:
    h, _ids = _setup(tmp_path, case)
    h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    old_path = h.page(1).path
    h.source.edit_book(1, author="Bea Newauthor", title="The Book, Renamed")
    h.source.add_highlight(1, "Hotel is new")
    h.sync()
    text = h.read(1)
    assert "Bea Newauthor" in text and "Ann Author" not in text
    assert h.page(1).path == old_path
    h.write(1, h.read(1).replace("Bea Newauthor", "Bea N. (my spelling)"))
    h.source.edit_book(1, author="Bea Newerauthor")
    h.source.add_highlight(1, "India is new")
    h.sync()
    assert "Bea N. (my spelling)" in h.read(1) and "Newerauthor" not in h.read(1)


@cases
def test_file_deleted_by_the_user_is_not_recreated_until_resync(
    tmp_path: Path, case: TemplateCase
) -> None:
    h, _ids = _setup(tmp_path, case)
    path = h.path(1)
    path.unlink()
    h.source.add_highlight(1, "Juliet is new")
    h.sync()
    assert not path.exists() and h.page(1).status == "deleted_by_user"
    h.sync(resync=frozenset({1}))
    text = path.read_text(encoding="utf-8")
    assert text.count("Juliet is new") == 1 and text.count("Alpha highlight") == 1


@cases
def test_moved_file_is_followed_and_never_duplicated(tmp_path: Path, case: TemplateCase) -> None:
    h, _ids = _setup(tmp_path, case)
    old = h.path(1)
    if case.fmt == "obsidian":
        new = h.vault / "Elsewhere" / "my copy.md"
    else:
        new = old.with_name("My Book.md")
    new.parent.mkdir(parents=True, exist_ok=True)
    old.rename(new)
    h.source.add_highlight(1, "Kilo is new")
    h.sync()
    assert not old.exists()
    assert new.read_text(encoding="utf-8").count("Kilo is new") == 1
    assert h.page(1).path == new.relative_to(h.vault).as_posix()
    assert sum("Kilo is new" in p.read_text(encoding="utf-8") for p in h.files_on_disk()) == 1


@cases
def test_a_pass_with_nothing_to_change_writes_nothing(tmp_path: Path, case: TemplateCase) -> None:
    h, _ids = _setup(tmp_path, case)
    h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    stamps = {p: p.stat().st_mtime_ns for p in h.files_on_disk()}
    h.source.edit_book(2, summary="")
    summary = h.sync()
    assert summary.created == summary.updated == 0
    assert {p: p.stat().st_mtime_ns for p in h.files_on_disk()} == stamps


@cases
def test_a_save_between_plan_and_write_is_planned_again(tmp_path: Path, case: TemplateCase) -> None:
    h, ids = _setup(tmp_path, case)
    target = h.path(1)
    real_write_batch = h.files.write_batch
    saved = {"done": False}

    def typing_user(items: list[tuple[str, str, str | None]]) -> list[Exception | None]:
        for relative, _text, _expected in items:
            if not saved["done"] and (h.vault / relative) == target:
                saved["done"] = True
                target.write_text(
                    target.read_text(encoding="utf-8") + own_line(case.fmt, "typed just now"),
                    encoding="utf-8",
                )
        return real_write_batch(items)

    h.files.write_batch = typing_user  # type: ignore[method-assign]
    h.source.edit(ids[0], text="Alpha highlight, corrected meanwhile")
    h.sync()
    text = target.read_text(encoding="utf-8")
    assert "typed just now" in text and "Alpha highlight, corrected meanwhile" in text
    assert "Alpha highlight text here" not in text


@cases
def test_block_ids_survive_upstream_edits(tmp_path: Path, case: TemplateCase) -> None:
    """Obsidian: the callout template writes `^rw<id>` itself; Logseq: `block_ids = true` adds
    `id::` to each highlight's first block. Either way the id stays, once, through an edit."""
    h, ids = _setup(tmp_path, case, block_ids=case.fmt == "logseq")
    marker = stable_block_id(case.fmt, ids[0])
    if marker not in h.read(1):
        assert case.fmt == "obsidian"  # a template without block ids: nothing to keep
        return
    assert h.read(1).count(marker) == 1
    h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    h.source.edit(ids[0], text="Alpha highlight, corrected")
    h.sync()
    text = h.read(1)
    assert text.count(marker) == 1 and "Alpha highlight, corrected" in text
    assert h.store.conflicts("t") == []


@pytest.mark.parametrize("case", [c for c in CASES if c.fmt == "logseq"], ids=str)
def test_logseq_block_reference_ids_are_kept_once(tmp_path: Path, case: TemplateCase) -> None:
    """An `id::` Logseq added to the highlight's block when the user referenced it."""
    h, ids = _setup(tmp_path, case)
    lines = h.read(1).split("\n")
    start, _end = unit_span(lines, _block(h, ids[0]))
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip("\t"))]
    ref = "id:: 6571c0de-0000-4000-8000-000000000001"
    lines.insert(start + 1, f"{indent}  {ref}")
    h.write(1, "\n".join(lines))
    h.source.edit(ids[0], text="Alpha highlight, corrected upstream")
    h.sync()
    text = h.read(1)
    assert "Alpha highlight, corrected upstream" in text and text.count(ref) == 1
    assert text.index("corrected upstream") < text.index(ref)
    assert h.store.conflicts("t") == []


def test_the_cases_are_not_list_items() -> None:
    """The point of these templates: a highlight's first line is no `- ` item of its own text
    (Obsidian) or is more than one block (Logseq)."""
    for case in CASES:
        rendered = case.templates().get("highlight")
        assert rendered is not None, case
    obsidian = [c for c in CASES if c.fmt == "obsidian"]
    assert len(obsidian) >= 3 and len(CASES) - len(obsidian) >= 2
    assert core_lines("\n\n- a\n  id:: x\n\n") == ["- a"]


@cases
@pytest.mark.parametrize("block_ids", [False, True], ids=["", "block_ids"])
def test_a_new_highlight_goes_after_the_whole_of_an_edited_one_with_layout_rewrite(
    tmp_path: Path, case: TemplateCase, block_ids: bool
) -> None:
    """Found writing these tests: a highlight the user edited is found by its link (or id, or
    words) alone, and was taken to be that one line. With layout = "rewrite" a new highlight
    that follows it was put after that line, inside the edited highlight (between a quote and
    its note); a conflict showed only the link line as the user's text."""
    h, ids = _setup(tmp_path, case, layout="rewrite", block_ids=block_ids)
    h.write(1, h.read(1).replace("Bravo highlight text here", "Bravo highlight, my wording"))
    edited = _block(h, ids[1]).replace("Bravo highlight text here", "Bravo highlight, my wording")
    bravo = h.source.books[1].highlights[1].location or 0
    new = h.source.add_highlight(1, "After bravo comes this", location=bravo)
    h.source.edit(ids[1], text="Bravo highlight, Readwise wording")
    h.sync()
    lines = [line for line in h.read(1).split("\n") if "id:: " not in line]
    _start, end = unit_span(lines, edited)  # the user's highlight is whole, as they left it
    assert end <= unit_span(lines, _block(h, new))[0]
    [(_book, conflict)] = h.store.conflicts("t")
    assert core_lines(conflict.theirs) == core_lines(edited)


@cases
def test_upstream_edit_of_a_tagged_highlight_once_a_section_was_appended_after_it(
    tmp_path: Path, case: TemplateCase
) -> None:
    """Appending to a touched page trims the page's end (as Readwise's plugin does): a last
    line ending in a space (a tags line) loses it. The highlight is still syncd's own."""
    h = Harness(tmp_path, case.fmt, templates=case.templates())
    h.source.add_book(1, "The Book", ["Alpha highlight text here"])
    tagged = h.source.add_highlight(1, "Bravo tagged", tags=("favorite",), note="a note")
    h.sync()
    h.write(1, h.read(1).replace("Alpha highlight text here", "Alpha, my wording"))
    h.source.add_highlight(1, "Charlie is new")
    h.sync()
    h.source.edit(tagged, text="Bravo tagged, corrected")
    summary = h.sync()
    assert "Bravo tagged, corrected" in h.read(1) and "Alpha, my wording" in h.read(1)
    assert summary.conflicts == 0 and h.store.conflicts("t") == []


@cases
def test_a_page_saved_with_crlf_line_endings_merges_and_stays_crlf(
    tmp_path: Path, case: TemplateCase
) -> None:
    h, ids = _setup(tmp_path, case)
    page = (h.read(1) + own_line(case.fmt, "mine")).replace("\n", "\r\n")
    h.path(1).write_bytes(page.encode("utf-8"))
    h.source.edit(ids[0], text="Alpha highlight, corrected")
    h.source.add_highlight(1, "Echo is new")
    summary = h.sync()
    data = h.path(1).read_bytes().decode("utf-8")
    assert "Alpha highlight, corrected" in data and "Alpha highlight text" not in data
    assert data.count("Echo is new") == 1 and "mine" in data
    assert data.count("\n") == data.count("\r\n")
    assert summary.conflicts == 0
