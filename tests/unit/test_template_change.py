"""A target's templates change, or fail on one book (issue 10):

- untouched pages are re-rendered with the new templates on the next pass (a dry run says so and
  changes nothing); a page the user touched is never rewritten: it keeps its blocks as they are
  and only gets new highlights, in the new format; Readwise's later edits of its old blocks still
  reach them;
- a template that raises for one book skips that book (error logged with the template's file
  and line, in the pass's errors that `syncd status` shows), writes the rest, and never leaves a
  torn or half-written page; the book is written once its data renders again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from syncd.notes.template_set import TemplateSet, load_template_set
from tests.harness import Harness
from tests.unit.template_cases import (
    CASE_IDS,
    CASES,
    TEMPLATES,
    Fmt,
    TemplateCase,
    core_lines,
    own_line,
    unit_span,
)

cases = pytest.mark.parametrize("case", CASES, ids=CASE_IDS)


def _switch(h: Harness, templates: TemplateSet | None) -> Harness:
    """The same target (vault, state, Readwise library) restarted with other templates."""
    h.store.close()
    policy = {
        "layout": h.policy.layout,
        "on_upstream_delete": h.policy.on_upstream_delete,
        "resync_deleted": h.policy.resync_deleted,
    }
    again = Harness(h.vault.parent, h.fmt, templates=templates, **policy)
    again.source = h.source
    again._clock = h._clock
    return again


def _library(h: Harness) -> list[int]:
    h.source.add_book(1, "The Book", ["Alpha highlight text here", "Bravo highlight text here"])
    h.source.add_book(2, "Other Book", ["Charlie highlight text here"])
    return h.source.live_ids(1)


def _rendered(h: Harness, book_id: int) -> str:
    """The page as syncd renders it now from its sections (what an untouched page must be)."""
    page = h.page(book_id)
    book = h.source.books[book_id]
    return h.adapter.render_parts(book, page.sections, page.page_title).text


def _check_switch(h: Harness, ids: list[int], old_blocks: dict[int, str]) -> Harness:
    """After the switch: book 1 was touched by the user, book 2 not."""
    touched = h.read(1)
    untouched = h.read(2)
    dry = h.sync(dry_run=True)
    plans = {p.book_id: p for p in dry.plan}
    assert plans[2].action == "rewrite" and "new templates" in plans[2].reason
    assert plans[1].action == "skip", plans[1]
    assert (h.read(1), h.read(2)) == (touched, untouched)  # a dry run writes nothing
    summary = h.sync()
    assert summary.updated == 1 and summary.failed == 0
    assert h.read(1) == touched  # never rewritten: the user touched it
    assert h.read(2) == _rendered(h, 2) != untouched  # re-rendered in the new format
    assert h.sync().updated == 0  # the templates are now the target's own: nothing more to do
    # New highlights come in the new format; the old blocks stay as they were written.
    new = h.source.add_highlight(1, "Delta is new")
    h.sync()
    text = h.read(1)
    assert text.startswith(touched.rstrip("\n"))
    unit_span(text[len(touched.rstrip("\n")) :].split("\n"), h.page(1).blocks[new].text)
    for hid in ids:
        unit_span(text.split("\n"), old_blocks[hid])
    # Readwise edits an old block the user left alone: it follows, no conflict.
    h.source.edit(ids[1], text="Bravo highlight, corrected upstream")
    summary = h.sync()
    text = h.read(1)
    assert "Bravo highlight, corrected upstream" in text and "Bravo highlight text" not in text
    assert summary.conflicts == 0 and h.store.conflicts("t") == []
    unit_span(text.split("\n"), old_blocks[ids[0]])  # its neighbour still as it was
    assert h.sync().updated == 0
    return h


@cases
def test_from_the_defaults_to_custom_templates(tmp_path: Path, case: TemplateCase) -> None:
    h = Harness(tmp_path, case.fmt)
    ids = _library(h)
    h.sync()
    h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    old = {hid: h.page(1).blocks[hid].text for hid in ids}
    h = _switch(h, case.templates())
    _check_switch(h, ids, old)
    h.store.close()


@cases
def test_from_custom_templates_back_to_the_defaults(tmp_path: Path, case: TemplateCase) -> None:
    h = Harness(tmp_path, case.fmt, templates=case.templates())
    ids = _library(h)
    h.sync()
    h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    old = {hid: h.page(1).blocks[hid].text for hid in ids}
    h = _switch(h, None)
    _check_switch(h, ids, old)
    h.store.close()


@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_from_one_custom_set_to_another(tmp_path: Path, fmt: Fmt) -> None:
    first, second = [case for case in CASES if case.fmt == fmt][:2]
    h = Harness(tmp_path, fmt, templates=first.templates())
    ids = _library(h)
    h.sync()
    h.write(1, h.read(1) + own_line(fmt, "mine"))
    old = {hid: h.page(1).blocks[hid].text for hid in ids}
    h = _switch(h, second.templates())
    _check_switch(h, ids, old)
    h.store.close()


# --- a template that fails on one book ---------------------------------------------------------

# Readwise's sandbox raises on a division by zero as Jinja does: this share is fine for every
# book but one with exactly two highlights.
_SHARE_LINE = '- Share: {{ "%.0f" | format(100 / (num_highlights - 2)) }}%\n'


def _failing_set(tmp_path: Path, fmt: Fmt) -> tuple[TemplateSet, Path]:
    folder = tmp_path / "templates"
    source = TEMPLATES / ("merge-obsidian-quote" if fmt == "obsidian" else "merge-logseq-quote")
    shutil.copytree(source, folder)
    metadata = folder / "page_metadata.j2"
    if fmt == "obsidian":
        metadata.write_text("## Metadata\n- Author: [[{{author}}]]\n" + _SHARE_LINE)
    else:
        metadata.write_text("author:: [[{{author}}]]\nshare:: {{ 100 // (num_highlights - 2) }}\n")
    return load_template_set(fmt, folder), metadata


@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
def test_a_template_failing_on_one_book_skips_that_book_only(tmp_path: Path, fmt: Fmt) -> None:
    templates, metadata = _failing_set(tmp_path, fmt)
    h = Harness(tmp_path, fmt, templates=templates)
    h.source.add_book(1, "Three Highlights", ["One a", "One b", "One c"])
    h.source.add_book(2, "Two Highlights", ["Two a", "Two b"])
    h.source.add_book(3, "Four Highlights", ["Four a", "Four b", "Four c", "Four d"])
    summary = h.sync()
    assert summary.created == 2 and summary.failed == 1
    [(kind, message)] = summary.errors
    assert kind == "TemplateProblem"
    line = 3 if fmt == "obsidian" else 2
    assert "book 2" in message and f"{metadata}:{line}:" in message
    assert "ZeroDivisionError" in message
    skipped = h.store.page("t", 2)
    assert skipped is None or skipped.status != "live"
    assert not any("Two a" in p.read_text(encoding="utf-8") for p in h.files_on_disk())
    # Book 1 (written) now fails too: its file stays exactly as it was, not torn.
    h.write(1, h.read(1) + own_line(fmt, "mine"))
    before = h.read(1)
    h.source.delete(h.source.live_ids(1)[0])
    summary = h.sync()
    assert summary.failed == 2 and h.read(1) == before
    assert {p.name for p in h.vault.rglob("*") if p.name.startswith(".syncd-")} == set()
    # Once their data renders again, both books are written on the next pass.
    h.source.add_highlight(1, "One d")
    h.source.add_highlight(2, "Two c")
    summary = h.sync()
    assert summary.failed == 0 and summary.errors == []
    assert "One d" in h.read(1) and "mine" in h.read(1) and "One a" not in h.read(1)
    assert [core_lines(h.read(2)).count(x) for x in ("Two a", "Two b")] == [0, 0]
    assert all(t in h.read(2) for t in ("Two a", "Two b", "Two c"))
    h.store.close()


@cases
def test_a_readwise_edit_made_with_the_templates_change_still_reaches_a_touched_page(
    tmp_path: Path, case: TemplateCase
) -> None:
    """The pass that first uses new templates also brings a Readwise edit of a highlight the
    user left alone, on a page the user touched: the edit reaches the page (in the new format);
    the highlights Readwise did not change stay as they were written."""
    h = Harness(tmp_path, case.fmt)
    ids = _library(h)
    h.sync()
    h.write(1, h.read(1) + own_line(case.fmt, "mine"))
    old = {hid: h.page(1).blocks[hid].text for hid in ids}
    h.source.edit(ids[1], text="Bravo highlight, corrected upstream")
    h = _switch(h, case.templates())
    summary = h.sync()
    text = h.read(1)
    assert "Bravo highlight, corrected upstream" in text and "Bravo highlight text" not in text
    unit_span(text.split("\n"), h.page(1).blocks[ids[1]].text)  # in the new format
    unit_span(text.split("\n"), old[ids[0]])  # its neighbour untouched, in the old one
    assert summary.conflicts == 0 and "mine" in text
    assert h.sync().updated == 0
    h.store.close()
