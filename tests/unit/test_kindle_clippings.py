"""Kindle `My Clippings.txt` parsing: every dialect and quirk in tests/fixtures/devices/kindle."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from syncd.sources.kindle_clippings import parse_added, parse_clippings, split_title
from syncd.sources.local import LocalSourceError

KINDLE = Path(__file__).parents[1] / "fixtures" / "devices" / "kindle"


def _read(name: str) -> str:
    return (KINDLE / name).read_bytes().decode("utf-8")


@pytest.mark.parametrize(
    ("code", "title", "author", "text", "note"),
    [
        (
            "de",
            "Der Process",
            "Kafka, Franz",
            "Jemand mußte Josef K. verleumdet haben.",
            "Der berühmte erste Satz.",
        ),
        (
            "fr",
            "Du côté de chez Swann",
            "Proust, Marcel",
            "Longtemps, je me suis couché de bonne heure.",
            "La madeleine vient plus tard.",
        ),
        (
            "es",
            "Cien años de soledad",
            "García Márquez, Gabriel",
            "Muchos años después, frente al pelotón de fusilamiento...",
            "El hielo.",
        ),
        (
            "it",
            "Il nome della rosa",
            "Eco, Umberto",
            "Stat rosa pristina nomine, nomina nuda tenemus.",
            "Il finale.",
        ),
        (
            "pt",
            "Dom Casmurro",
            "Assis, Machado de",
            "Olhos de cigana oblíqua e dissimulada.",
            "Capitu.",
        ),
        (
            "nl",
            "Het Achterhuis",
            "Frank, Anne",
            "Ik hoop dat ik aan jou alles zal kunnen toevertrouwen.",
            "Het begin.",
        ),
        (
            "ja",
            "吾輩は猫である",
            "夏目 漱石",
            "吾輩は猫である。名前はまだ無い。",
            "有名な書き出し。",
        ),
        ("zh", "红楼梦", "曹雪芹", "假作真时真亦假，无为有处有还无。", "太虚幻境的对联。"),
        (
            "ru",
            "Война и мир",
            "Толстой, Лев",
            "Все счастливые семьи похожи друг на друга.",
            "Это из другой книги.",
        ),
    ],
)
def test_every_language_gives_one_highlight_with_its_note(
    code: str, title: str, author: str, text: str, note: str
) -> None:
    result = parse_clippings(_read(f"{code}.txt"))
    assert result.entries == 3  # highlight, note, bookmark
    assert result.skipped == 1  # the bookmark
    [book] = result.books
    assert (book.title, book.author) == (title, author)
    [highlight] = book.highlights
    assert highlight.text == text
    assert highlight.note == note  # attached: the note's location 171 is in 170-171
    assert (highlight.location, highlight.location_type) == (170, "location")
    assert highlight.highlighted_at == datetime(2019, 3, 4, 22, 32, 5)


def test_english_file_with_bom_crlf_and_every_quirk() -> None:
    result = parse_clippings(_read("en-crlf-bom.txt"))
    assert not result.incomplete_tail
    books = {book.title: book for book in result.books}
    assert set(books) == {
        "The Rise (and Fall) of the Third Reich",
        "Meditations",
        "Attention Is All You Need",
        "Collected Essays",
    }
    reich = books["The Rise (and Fall) of the Third Reich"]
    assert reich.author == "Shirer, William L."
    texts = [h.text for h in reich.highlights]
    # The bookmark is skipped; both neighbours at location 900 are kept; the extended
    # highlight replaced the shorter one.
    assert texts == [
        "The German Reich was proclaimed in the Hall of Mirrors.",
        "Short sentence one.",
        "A different sentence right after it.",
        "In the end, history is written by those who stay.",
    ]
    assert reich.highlights[0].note == "Check the date of this."
    assert [h.location for h in reich.highlights] == [170, 900, 900, 949]
    assert len({h.key for h in reich.highlights}) == 4
    meditations = books["Meditations"]
    assert [h.text for h in meditations.highlights] == [
        "You have power over your mind - not outside events.",
        "First line of the passage.\nSecond line of the passage.",
    ]  # the clipping-limit placeholder is not a highlight
    [pdf] = books["Attention Is All You Need"].highlights
    assert (pdf.location, pdf.location_type) == (3, "page")
    assert books["Collected Essays"].author == "Orwell, George (ed. Sonia Brownell)"
    assert "\ufeff" not in reich.title and all("\r" not in h.text for h in reich.highlights)


def test_an_extended_highlight_keeps_the_key_of_the_one_it_replaces() -> None:
    text = _read("en-crlf-bom.txt")
    marker = "In the end, history is written by those who stay."
    cut = text.index(marker)
    before = text[: text.rindex("==========", 0, cut) + len("==========\r\n")]
    short = {h.text: h.key for b in parse_clippings(before).books for h in b.highlights}
    full = {h.text: h.key for b in parse_clippings(text).books for h in b.highlights}
    assert full[marker] == short["history is written"]
    shortened = text + (
        "The Rise (and Fall) of the Third Reich (Shirer, William L.)\r\n"
        "- Your Highlight on page 60 | Location 950-951 | Added on Tuesday, March 5, 2019\r\n"
        "\r\nhistory is written by those\r\n==========\r\n"
    )
    again = {h.text: h.key for b in parse_clippings(shortened).books for h in b.highlights}
    assert marker not in again
    assert again["history is written by those"] == short["history is written"]


def test_a_reread_gives_the_same_keys_and_an_appended_clipping_adds_one() -> None:
    text = _read("en-crlf-bom.txt")
    first = parse_clippings(text)
    assert parse_clippings(text) == first
    appended = parse_clippings(
        text + "Meditations (Marcus Aurelius)\r\n- Your Highlight on Location 1600-1601 | "
        "Added on Sunday, January 7, 2024 9:00:00 AM\r\n\r\nWaste no more time.\r\n==========\r\n"
    )
    old = {h.key for b in first.books for h in b.highlights}
    new = {h.key for b in appended.books for h in b.highlights}
    assert old < new and len(new - old) == 1


def test_an_edited_note_replaces_the_earlier_one() -> None:
    text = _read("en-crlf-bom.txt") + (
        "The Rise (and Fall) of the Third Reich (Shirer, William L.)\r\n"
        "- Your Note on page 12 | Location 171 | Added on Monday, March 4, 2019 10:40:00 PM\r\n"
        "\r\nChecked: January 18, 1871.\r\n==========\r\n"
    )
    reich = next(b for b in parse_clippings(text).books if b.author.startswith("Shirer"))
    assert reich.highlights[0].note == "Checked: January 18, 1871."


def test_a_note_without_a_highlight_is_kept_as_its_own_highlight() -> None:
    text = (
        "Meditations (Marcus Aurelius)\n- Your Note on Location 50 | Added on Saturday, "
        "January 6, 2024 7:15:22 AM\n\nA thought of my own.\n==========\n"
    )
    [book] = parse_clippings(text).books
    [highlight] = book.highlights
    assert (highlight.text, highlight.note, highlight.location) == ("A thought of my own.", "", 50)


def test_a_truncated_file_yields_every_complete_entry() -> None:
    result = parse_clippings(_read("truncated.txt"))
    assert result.incomplete_tail
    [book] = result.books
    assert [h.text for h in book.highlights] == [
        "Waste no more time arguing.",
        "The best revenge is not to be like that.",
    ]


def test_a_file_cut_inside_its_first_entry_is_empty_not_an_error() -> None:
    result = parse_clippings("Meditations (Marcus Aurelius)\r\n- Your Highlight on Loc")
    assert result.books == () and result.incomplete_tail
    assert parse_clippings("").books == ()


@pytest.mark.parametrize("name", ["not-clippings.txt"])
def test_a_file_that_is_not_clippings_is_refused(name: str) -> None:
    with pytest.raises(LocalSourceError, match="not a Kindle clippings file"):
        parse_clippings(_read(name), where=name)


def test_nul_bytes_are_refused() -> None:
    with pytest.raises(LocalSourceError, match="binary data"):
        parse_clippings("Title (A)\n- Your Highlight on Location 1\x00\n")


@pytest.mark.parametrize(
    ("line", "title", "author"),
    [
        ("Dune (Frank Herbert)", "Dune", "Frank Herbert"),
        ("The Rise (and Fall) of Rome (Smith, John)", "The Rise (and Fall) of Rome", "Smith, John"),
        ("Essays (Orwell (ed.))", "Essays", "Orwell (ed.)"),
        ("A personal document", "A personal document", ""),
        ("(Untitled)", "(Untitled)", ""),
        ("Broken (paren", "Broken (paren", ""),
        ("\ufeffDune (Frank Herbert)", "Dune", "Frank Herbert"),
    ],
)
def test_split_title(line: str, title: str, author: str) -> None:
    assert split_title(line) == (title, author)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Added on Monday, March 4, 2019 10:32:05 PM", datetime(2019, 3, 4, 22, 32, 5)),
        ("Added on Monday, March 4, 2019 12:05:00 AM", datetime(2019, 3, 4, 0, 5)),
        ("Added on Sunday, 17 March 2013 13:32:44", datetime(2013, 3, 17, 13, 32, 44)),
        ("添加于 2019年3月4日星期一 上午9:02:05", datetime(2019, 3, 4, 9, 2, 5)),
        ("Added on sometime", None),
        ("Added on Monday, February 30, 2019 10:00 PM", None),
    ],
)
def test_parse_added(text: str, expected: datetime | None) -> None:
    assert parse_added(text) == expected
