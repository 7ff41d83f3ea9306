"""KOReader sidecars and the Lua data reader: tests/fixtures/devices/koreader."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from syncd.sources.koreader import parse_sidecar
from syncd.sources.local import LocalSourceError
from syncd.sources.lua_data import LuaDataError, read_lua_data

KOREADER = Path(__file__).parents[1] / "fixtures" / "devices" / "koreader"


def _sidecar(relative: str) -> str:
    return (KOREADER / relative).read_text(encoding="utf-8")


def test_annotations_table() -> None:
    book = parse_sidecar(_sidecar("Books/Dune.sdr/metadata.epub.lua"), where="Dune")
    assert (book.title, book.author, book.complete) == ("Dune", "Frank Herbert", True)
    # The first item has no drawer: a page bookmark, skipped.
    assert [h.text for h in book.highlights] == [
        "I must not fear. Fear is the mind-killer.",
        "A beginning is the time for taking the most delicate care "
        '"that the balances are correct".',
    ]
    litany = book.highlights[0]
    assert litany.note == "The litany.\nSay it twice."  # backslash-newline in a Lua string
    assert (litany.location, litany.location_type) == (14, "page")
    assert (litany.color, litany.chapter) == ("yellow", "Book One: Dune")
    assert litany.highlighted_at == datetime(2024, 1, 5, 21, 14, 40)
    assert litany.key == "t:2024-01-05 21:14:40"


def test_pdf_annotations_and_several_authors() -> None:
    book = parse_sidecar(_sidecar("Books/Papers/attention.sdr/metadata.pdf.lua"), where="pdf")
    assert book.author == "Ashish Vaswani, Noam Shazeer"
    [highlight] = book.highlights
    assert (highlight.location, highlight.location_type) == (3, "page")


def test_old_bookmarks_and_highlight_tables() -> None:
    book = parse_sidecar(_sidecar("Books/Old.sdr/metadata.epub.lua"), where="old")
    assert (book.title, book.author) == ("A Tale of Two Cities", "Charles Dickens")
    by_text = {h.text: h for h in book.highlights}
    assert set(by_text) == {
        "It was the best of times, it was the worst of times",
        "a far, far better thing",
        "Recalled to life",  # in `highlight` only (saved before 2014)
    }
    assert by_text["It was the best of times, it was the worst of times"].note == (
        "Dickens at his most quoted"
    )
    assert by_text["a far, far better thing"].note == ""  # KOReader's automatic text
    assert by_text["a far, far better thing"].location == 310
    assert by_text["Recalled to life"].location == 2


def test_an_edited_or_extended_highlight_keeps_its_key_and_a_removed_one_is_gone() -> None:
    text = _sidecar("Books/Dune.sdr/metadata.epub.lua")
    before = parse_sidecar(text, where="Dune")
    edited = text.replace("Say it twice.", "Say it three times.").replace(
        "Fear is the mind-killer.", "Fear is the mind-killer. Fear is the little-death."
    )
    after = parse_sidecar(edited, where="Dune")
    assert [h.key for h in after.highlights] == [h.key for h in before.highlights]
    assert after.highlights[0].note.endswith("three times.")
    start = text.index("        [3] = {")
    end = text.index('        },\n    },\n    ["doc_path"]')
    removed = parse_sidecar(text[:start] + text[end + len("        },\n") :], where="Dune")
    assert [h.key for h in removed.highlights] == [before.highlights[0].key]


def test_a_sidecar_with_code_is_refused_and_never_run(tmp_path: Path) -> None:
    with pytest.raises(LocalSourceError, match=r"line 5, column 24: 'os' is code"):
        parse_sidecar(_sidecar("code/metadata.epub.lua"), where="code/metadata.epub.lua")
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("return { a = f() }", "'f' is code"),
        ("x = 1 return {}", "starts with 'return'"),
        ("return {} ; os.exit()", "more after the returned value"),
        ("return { [1] = 1 + 2 }", "expected ',' or '}'"),
        ('return { "unfinished }', "unfinished string"),
        ("return { -x }", "operator"),
        ("return " + "{" * 100 + "}" * 100, "nested deeper"),
        ("return { [nil] = 1 }", "cannot be nil"),
        ("\x00\x01binary", "starts with 'return'"),
    ],
)
def test_lua_that_is_not_data_is_refused(text: str, message: str) -> None:
    with pytest.raises(LuaDataError, match=message):
        read_lua_data(text)


def test_lua_data_values() -> None:
    text = r"""-- comment
    --[[ long
    comment ]]
    return {
        ["s"] = "a\tb\"c\\d\65\x42\u{e9}\z
                 e",
        ['q'] = 'it\'s',
        long = [==[raw ]] text]==],
        [1] = 1, [2] = -2.5, [3] = 0x10, [4] = 1e3, [5] = true, [6] = false, [7] = nil,
        "positional",
        [2.0] = "two",
        nested = { { 1 }, {} };
    }"""
    value = read_lua_data(text)
    assert isinstance(value, dict)
    assert value["s"] == 'a\tb"c\\dABée'
    assert value["long"] == "raw ]] text"
    assert value[1] == "positional"  # the positional item takes index 1, as in Lua
    assert value[2] == "two" and value[3] == 16 and value[4] == 1000.0
    assert value[5] is True and value[6] is False and value[7] is None
    assert value["nested"] == {1: {1: 1}, 2: {}}
