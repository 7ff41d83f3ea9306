"""The hand-compiled default templates give Jinja's bytes for every context."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.notes import render as render_module
from syncd.notes.compiled import COMPILED
from syncd.notes.dates import format_php_date
from syncd.notes.render import RenderedDate, environment, render, render_each, render_jinja

# Text that exercises every branch the templates and their filters have: line breaks of each
# kind, blank and whitespace-only lines, Logseq constructs, Jinja syntax, non-ASCII.
_PIECES = st.sampled_from(
    [
        "a", "word", " ", "\t", "\n", "\r\n", "\r", "\n\n", "- ", "-", "#", "# ", "::", "key:: v",
        ":NAME:", "$$", "```", "~~~", "#+BEGIN_QUOTE", "\\begin{x}", "<div>", "{{", "}}", "{%",
        "%}", "[[", "]]", "^", "\u00a0", "é", "🙂", "\x1e", "**",
    ]
)  # fmt: skip
_TEXT = st.lists(_PIECES, max_size=12).map("".join)
_TAGS = st.lists(_TEXT, max_size=3)
_MOMENT = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


def _date(moment: datetime) -> RenderedDate:
    return RenderedDate(moment, lambda m: format_php_date(m, "F j, Y"))


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "title": _TEXT,
    "full_title": _TEXT,
    "author": _TEXT,
    "category": _TEXT,
    "url": _TEXT,
    "image_url": _TEXT,
    "document_tags": _TAGS,
    "summary": _TEXT,
    "document_note": _TEXT,
    "page_title": _TEXT,
    "date": _MOMENT.map(_date),
    "time": _TEXT,
    "is_new_page": st.booleans(),
    "has_new_highlights": st.booleans(),
    "highlight_text": _TEXT,
    "highlight_location": _TEXT,
    "highlight_location_url": _TEXT,
    "highlight_note": _TEXT,
    "highlight_tags": _TAGS,
}


@st.composite
def _contexts(draw: st.DrawFn) -> dict[str, Any]:
    # Any subset of the variables: a missing one must behave as Jinja's undefined.
    names = draw(st.lists(st.sampled_from(sorted(_VALUES)), unique=True))
    return {name: draw(_VALUES[name]) for name in names}


@pytest.mark.parametrize("name", sorted(COMPILED))
@settings(max_examples=300, deadline=None)
@given(context=_contexts())
def test_compiled_template_gives_jinjas_bytes(name: str, context: dict[str, Any]) -> None:
    _digest, compiled = COMPILED[name]
    assert compiled(context) == render_jinja(name, context)


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_each_compiled_template_mirrors_the_shipped_file(name: str) -> None:
    env = environment()
    assert env.loader is not None
    source, _filename, _uptodate = env.loader.get_source(env, name)
    assert hashlib.sha256(source.encode("utf-8")).hexdigest() == COMPILED[name][0], (
        f"{name} changed: update syncd/notes/compiled.py to match, then its digest"
    )


def test_an_edited_template_goes_through_jinja(monkeypatch: pytest.MonkeyPatch) -> None:
    def marker(context: Any) -> str:
        return "compiled output"

    name = "obsidian_title.md.j2"
    digest = COMPILED[name][0]
    try:
        monkeypatch.setitem(COMPILED, name, (digest, marker))
        render_module._compiled.cache_clear()
        assert render(name, {"title": "T"}) == "compiled output"  # the file is the one mirrored
        monkeypatch.setitem(COMPILED, name, ("0" * 64, marker))
        render_module._compiled.cache_clear()
        assert render(name, {"title": "T"}) == "# T\n"  # it is not: Jinja renders it
    finally:
        monkeypatch.undo()
        render_module._compiled.cache_clear()


def test_render_each_uses_the_compiled_template() -> None:
    items = [{"highlight_text": "one"}, {"highlight_text": "two\nlines", "highlight_note": "n"}]
    got = render_each("obsidian_highlight.md.j2", {}, items)
    assert got == [render_jinja("obsidian_highlight.md.j2", item) for item in items]
    assert got == ["- one\n", "- two\n  lines\n    - Note: n\n"]
