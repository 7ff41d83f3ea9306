"""The export parser's fast path gives what the fully checked parser gives, for any highlight."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.errors import ApiDataError
from syncd.model import _full_highlight, _quick_highlight, book_from_json, highlight_from_json

_STAMPS = st.sampled_from(
    [
        None, "", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123Z",
        "2024-01-02T03:04:05.123456Z", "2024-01-02T03:04:05+02:00", "2024-01-02 03:04",
        "2024-13-02T03:04:05.123Z", "not a date", 17,
    ]
)  # fmt: skip
_TEXTISH = st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 5), st.booleans())
_INTISH = st.one_of(
    st.none(), st.integers(-(2**40), 2**40), st.just(""), st.just("12"), st.just(3.0),
    st.just(2.5), st.booleans(), st.just("x"),
)  # fmt: skip
_TAGS = st.one_of(
    st.none(),
    st.just("tag"),
    st.lists(
        st.one_of(st.fixed_dictionaries({"name": _TEXTISH}), st.text(max_size=4), st.none()),
        max_size=3,
    ),
)

_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": _INTISH,
    "book_id": _INTISH,
    "text": _TEXTISH,
    "note": _TEXTISH,
    "location": _INTISH,
    "location_type": _TEXTISH,
    "color": _TEXTISH,
    "url": _TEXTISH,
    "highlighted_at": _STAMPS,
    "created_at": _STAMPS,
    "updated_at": _STAMPS,
    "tags": _TAGS,
    "is_favorite": _TEXTISH,
    "is_discard": _TEXTISH,
    "is_deleted": _TEXTISH,
    "external_id": _TEXTISH,
    "readwise_url": _TEXTISH,
    "end_location": _INTISH,
}


@st.composite
def _highlights(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(_FIELDS)), unique=True))
    data = {name: draw(_FIELDS[name]) for name in names}
    if draw(st.booleans()):
        data["id"] = draw(st.integers(1, 10**9))  # mostly a valid id, so the rest is exercised
    return data


@settings(max_examples=1500, deadline=None)
@given(data=_highlights())
def test_fast_path_equals_the_checked_parser(data: dict[str, Any]) -> None:
    try:
        expected = _full_highlight(data, book_id=9, where="highlight")
    except ApiDataError:
        # The fast path never accepts what the checked parser refuses.
        assert _quick_highlight(data, 9) is None
        with pytest.raises(ApiDataError):
            highlight_from_json(data, book_id=9)
        return
    quick = _quick_highlight(data, 9)
    assert quick is None or quick == expected
    assert highlight_from_json(data, book_id=9) == expected


def test_a_bad_highlight_in_a_book_is_named_by_its_index() -> None:
    book = {"user_book_id": 3, "title": "T", "highlights": [{"id": 1}, {"id": 2, "text": []}]}
    with pytest.raises(ApiDataError, match=r"book 3 highlight\[1\] 2\.text"):
        book_from_json(book)
