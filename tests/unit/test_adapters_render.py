"""The Obsidian and Logseq adapters: where pages go, their names, and the text rules behind the
golden pages (locations, continuation lines, escaping, filters, template variables)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from syncd.adapters.base import Section
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter, obsidian_file_stem
from syncd.errors import ConfigError
from syncd.model import Book, Highlight
from syncd.notes.render import (
    DateStyle,
    RenderedDate,
    date_filter,
    document_context,
    highlight_context,
    highlight_location,
    pluralize,
    render,
)
from tests.mldoc import outline_text

NBSP = "\u00a0"
WHEN = datetime(2023, 2, 1, 9, 45, tzinfo=UTC)


def hl(hid: int, text: str = "text", **fields: Any) -> Highlight:
    values: dict[str, Any] = {"location": hid, "location_type": "order"}
    values.update(fields)
    return Highlight(id=hid, book_id=1, text=text, **values)


def make_book(*highlights: Highlight, **fields: Any) -> Book:
    values: dict[str, Any] = {"id": 1, "title": "Title", "author": "Author", "category": "articles"}
    values.update(fields)
    return Book(highlights=highlights, **values)


def first(*ids: int, when: datetime = WHEN) -> Section:
    return Section(kind="first", synced_at=when, highlight_ids=ids)


def new(*ids: int, when: datetime = WHEN) -> Section:
    return Section(kind="new", synced_at=when, highlight_ids=ids)


# --- where pages go and what they are called ------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "folder"),
    [
        ("books", "Readwise/Books"),
        ("articles", "Readwise/Articles"),
        ("tweets", "Readwise/Tweets"),
        ("podcasts", "Readwise/Podcasts"),
        ("supplementals", "Readwise/Supplementals"),
        ("videos", "Readwise/Videos"),
        ("../etc/pdf", "Readwise/-etc-pdf"),
    ],
)
def test_obsidian_category_folders(category: str, folder: str) -> None:
    adapter = ObsidianAdapter()
    assert adapter.folder_for(make_book(category=category)) == PurePosixPath(folder)


def test_obsidian_folder_is_configurable_and_logseq_uses_pages() -> None:
    assert ObsidianAdapter("Notes/RW").folder_for(make_book()) == PurePosixPath("Notes/RW/Articles")
    assert LogseqAdapter().folder_for(make_book()) == PurePosixPath("pages")


def test_page_titles() -> None:
    titled = make_book(title="Raw", readable_title="Tidy\nTitle")
    assert ObsidianAdapter().page_title(titled) == "Tidy Title"
    assert LogseqAdapter().page_title(titled) == "Tidy Title (highlights)"


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("A Testing Pattern: Adding Switches?", "A Testing Pattern Adding Switches.md"),
        ('Say "hi"', "Say hi.md"),
        ("and/or \\ a|b", "and-or - a-b.md"),
        ("[[Link]] #tag ^block *star* <html>", "((Link)) tag block star html.md"),
        ("#401 —  Gary Keller", "401 —  Gary Keller.md"),
    ],
)
def test_obsidian_file_names(title: str, name: str) -> None:
    assert ObsidianAdapter().file_name(title) == name


def test_obsidian_stem_keeps_what_readwise_keeps() -> None:
    # safe_file_name may still trim the trailing dots; Readwise wrote "Supe....md".
    assert obsidian_file_stem("GPT-4 Will Make You Supe...") == "GPT-4 Will Make You Supe..."


@pytest.mark.parametrize(
    ("title", "name"),
    [
        (  # tests/fixtures/logseq/026
            "Real-Time Object Detection Part 1: Understanding SSD (highlights)",
            "Real-Time Object Detection Part 1%3A Understanding SSD (highlights).md",
        ),
        (  # tests/fixtures/logseq/005, less the leading space every OS-safe name drops
            "// Algorithm Distillation, Explained // (highlights)",
            "Algorithm Distillation, Explained ______ (highlights).md",
        ),
        ("Readwise/Kubernetes (highlights)", "Readwise___Kubernetes (highlights).md"),
        ('a#b|c"d?e*f<g>h\\i', "a%23b%7Cc%22d%3Fe%2Af%3Cg%3Eh%5Ci.md"),
        ("100%25 sure", "100%2525 sure.md"),
        ("snake___case a_/b", "snake%5F%5F%5Fcase a%5F___b.md"),
        ("[[x]] ^y", "[[x]] ^y.md"),
    ],
)
def test_logseq_file_names(title: str, name: str) -> None:
    assert LogseqAdapter().file_name(title) == name


def test_file_names_keep_the_disambiguator_when_truncating() -> None:
    long_title = "word " * 100
    for adapter in (ObsidianAdapter(), LogseqAdapter()):
        name = adapter.file_name(long_title, " (123)")
        assert name.endswith(" (123).md")
        assert len(name.encode("utf-8")) <= 200


def test_bad_journal_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="journal_format"):
        LogseqAdapter("MMM Do, YYYY")


# --- locations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "book_fields", "expected"),
    [
        (
            {"location": 599, "location_type": "location"},
            {"asin": "B0017SWPNO", "category": "books"},
            (
                f"Location{NBSP}599",
                "https://readwise.io/to_kindle?action=open&asin=B0017SWPNO&location=599",
            ),
        ),
        (
            {"location": 599, "location_type": "location"},
            {"category": "books"},
            (f"Location{NBSP}599", ""),
        ),
        ({"location": 12, "location_type": "page"}, {"category": "books"}, (f"Page{NBSP}12", "")),
        (
            {"location": 12, "location_type": "page", "url": "https://x.test/p"},
            {},
            (f"Page{NBSP}12", "https://x.test/p"),
        ),
        (
            {"location": 3725, "location_type": "time_offset", "url": "https://share.snipd.com/snip/1"},
            {"category": "podcasts"},
            (f"Time{NBSP}1:02:05", "https://share.snipd.com/snip/1"),
        ),
        (
            {"location": 3, "location_type": "order", "url": "https://x.com/a/status/1"},
            {"category": "tweets"},
            ("View Tweet", "https://x.com/a/status/1"),
        ),
        (
            {"location": 3, "location_type": "offset", "url": "https://read.readwise.io/read/01"},
            {},
            ("View Highlight", "https://read.readwise.io/read/01"),
        ),
        ({"location": None, "location_type": "", "url": "https://u.test"}, {}, ("View Highlight", "https://u.test")),
        ({"location": 3, "location_type": "order"}, {"category": "tweets"}, ("", "")),
    ],
)  # fmt: skip
def test_highlight_locations(
    fields: dict[str, Any], book_fields: dict[str, Any], expected: tuple[str, str]
) -> None:
    highlight = Highlight(id=1, book_id=1, text="t", **fields)
    assert highlight_location(make_book(**book_fields), highlight) == expected


def test_bare_location_renders_in_parentheses() -> None:
    kindle = make_book(hl(1, "x", location_type="page"), category="books")
    page = ObsidianAdapter(tz=UTC).render_page(kindle, [first(1)], "Title")
    assert page.endswith(f"- x (Page{NBSP}1)\n")


# --- Obsidian text rules -------------------------------------------------------------------------


def test_obsidian_metadata_without_cover_author_or_url() -> None:
    bare = make_book(hl(1, "x"), author="", title="T")
    page = ObsidianAdapter(tz=UTC).render_page(bare, [first(1)], "T")
    assert page == (
        "# T\n\n## Metadata\n- Author: \n- Full Title: T\n- Category: #articles\n"
        "\n## Highlights\n- x\n"
    )


def test_obsidian_metadata_tags_document_note_and_one_line_fields() -> None:
    noted = make_book(
        hl(1, "x"),
        title="Long\ntitle",
        author="A\nB",
        tags=("dev", "two words"),
        document_note="First line\n\nsecond line",
        unique_url="https://read.readwise.io/read/1",
    )
    page = ObsidianAdapter(tz=UTC).render_page(noted, [first(1)], "x")
    assert page.startswith(
        "# Long title\n\n## Metadata\n- Author: [[A B]]\n- Full Title: Long title\n"
        "- Category: #articles\n- Document Tags: [[dev]] [[two words]] \n"
        "- Document Note: First line\n   second line\n"
        "- URL: https://read.readwise.io/read/1\n\n## Highlights\n"
    )


def test_obsidian_highlight_continuations_tags_then_note() -> None:
    item = hl(1, "para one\r\n\r\npara two\n  \nthree", tags=("a", "b c"), note="n1\n\nn2")
    page = ObsidianAdapter(tz=UTC).render_page(make_book(item), [first(1)], "x")
    assert page.endswith(
        "## Highlights\n- para one\n  para two\n  three\n"
        "    - Tags: [[a]] [[b c]] \n    - Note: n1\n      n2\n"
    )


def test_obsidian_sections_dates_use_the_vault_time_zone() -> None:
    pacific = timezone(timedelta(hours=-8))
    late = datetime(2024, 11, 21, 4, 30, tzinfo=UTC)  # still Nov 20 in the evening there
    page = ObsidianAdapter(tz=pacific).append_section(
        "# T\n\n- old\n\n\n", make_book(hl(2, "new")), new(2, when=late)
    )
    assert page == "# T\n\n- old\n\n\n## New highlights added November 20, 2024 at 8:30 PM\n- new\n"


def test_deleted_and_discarded_highlights_and_emptied_sections() -> None:
    gone = make_book(
        hl(1, "kept"), hl(2, "deleted", is_deleted=True), hl(3, "gone", is_discard=True)
    )
    adapter = ObsidianAdapter(tz=UTC)
    page = adapter.render_page(gone, [first(2), new(1, 3), new(3)], "x")
    assert page.endswith(
        "\n## Highlights\n## New highlights added February 1, 2023 at 9:45 AM\n- kept\n"
    )
    assert adapter.append_section("body\n", gone, new(2, 3)) == "body\n"


def test_highlight_text_is_never_template_source() -> None:
    hostile = hl(1, "{{ title }} {% if true %}x{% endif %} {# c #}", note="{{ 7 * 7 }}")
    page = ObsidianAdapter(tz=UTC).render_page(make_book(hostile), [first(1)], "x")
    assert "- {{ title }} {% if true %}x{% endif %} {# c #}\n    - Note: {{ 7 * 7 }}\n" in page


# --- Logseq text rules ---------------------------------------------------------------------------


def test_logseq_properties_tags_summary_cover_and_later_section() -> None:
    rich = make_book(
        hl(1, "one"),
        hl(2, "two", note="why", tags=("t",)),
        author="Multi\nAuthor",
        tags=("neural networks", "ai"),
        summary="Sum\nmary",
        document_note="Doc note",
        source_url="https://example.test/a",
        cover_image_url="https://example.test/c.png",
    )
    adapter = LogseqAdapter("yyyy-MM-dd", tz=UTC)
    sections = [first(1, when=datetime(2025, 6, 20, tzinfo=UTC)), new(2)]
    page = adapter.render_page(rich, sections, "Title (highlights)")
    assert page == (
        "title:: Title (highlights)\n"
        "author:: [[Multi Author]]\n"
        'full-title:: "Title"\n'
        "category:: #articles\n"
        "url:: https://example.test/a\n"
        "document_note:: Doc note\n"
        "tags:: #[[neural networks]] #[[ai]]\n"
        "summary:: Sum mary\n"
        "![](https://example.test/c.png)\n"
        "\n"
        "- Highlights first synced by [[Readwise]] [[2025-06-20]]\n"
        "\t- one\n"
        "- New highlights added [[2023-02-01]] at 9:45 AM\n"
        "\t- two\n"
        "\t\t- **Tags**: #[[t]]\n"
        "\t\t- **Note**: why"
    )


def test_logseq_page_with_only_properties_has_no_final_newline() -> None:
    page = LogseqAdapter(tz=UTC).render_page(make_book(), [], "Title (highlights)")
    assert page.endswith("category:: #articles") and "\n\n" not in page


@pytest.mark.parametrize(
    ("existing", "expected_head"),
    [
        ("title:: T\n\n- Highlights\n\t- a", "title:: T\n\n- Highlights\n\t- a\n"),
        # Every byte of the page stays, trailing blank lines and spaces included.
        ("title:: T\n\n- a\n\n\n", "title:: T\n\n- a\n\n\n"),
        ("\t- user block\t  ", "\t- user block\t  \n"),
        ("", ""),
    ],
)  # fmt: skip
def test_logseq_append_starts_a_top_level_block_on_its_own_line(
    existing: str, expected_head: str
) -> None:
    appended = LogseqAdapter(tz=UTC).append_section(existing, make_book(hl(5, "new")), new(5))
    assert (
        appended == expected_head + "- New highlights added [[Feb 1st, 2023]] at 9:45 AM\n\t- new"
    )


def test_logseq_journal_day_is_the_local_day() -> None:
    tokyo = timezone(timedelta(hours=9))
    late = datetime(2022, 11, 17, 20, 0, tzinfo=UTC)  # Nov 18, 5 AM in Tokyo
    page = LogseqAdapter(tz=tokyo).render_page(make_book(hl(1)), [first(1, when=late)], "T")
    assert "- Highlights first synced by [[Readwise]] [[Nov 18th, 2022]]\n" in page


def test_logseq_escapes_like_readwise_and_beyond() -> None:
    text = "- first line stays\n- dash\n  - indented\n# heading\nid:: 64f\n:PROPERTIES:\n$$\n<div>"
    page = LogseqAdapter(tz=UTC).render_page(make_book(hl(1, text)), [first(1)], "T")
    assert page.endswith(
        "\t- - first line stays\n\t  \\- dash\n\t    \\- indented\n\t  \\# heading\n"
        "\t  id:\\: 64f\n\t  \\:PROPERTIES:\n\t  \\$$\n\t  \\<div>"
    )


def test_logseq_keeps_closed_code_fences_and_escapes_an_unclosed_one() -> None:
    closed = "code:\n```\n# not a heading\nkey:: v\n```\nafter"
    unclosed = "a\n```py\nx\n~~~\n```"
    adapter = LogseqAdapter(tz=UTC)
    page = adapter.render_page(make_book(hl(1, closed), hl(2, unclosed)), [first(1, 2)], "T")
    assert "\t  ```\n\t  # not a heading\n\t  key:: v\n\t  ```\n\t  after\n" in page
    assert page.endswith("\t- a\n\t  ```py\n\t  x\n\t  ~~~\n\t  \\```")


# --- mldoc: Logseq reads back what syncd wrote ---------------------------------------------------

HOSTILE_LINES = [
    "- looks like a block", "  - nested look-alike", "\t- tab bullet", "-", "--", "* star",
    "+ plus", "1. numbered", "# heading", "###### deep", "#tag only", "key:: value", "id:: 6400",
    "键:: 值",
    "a::b", ":PROPERTIES:", ":LOGBOOK:", ":END:", ":foo: bar", "```", "```python", "~~~", "  ```",
    "$$", "$$ x", "$x$", "#+BEGIN_SRC", "#+end_quote", "\\begin{equation}", "\\end{equation}",
    "<div>", "</div>", "<!--", "-->", "<pre>", "<3 love", "{{embed [[x]]}}", "[[link]]",
    "((64f0a1b2-0000-0000-0000-000000000000))", "> quote", "> - quoted dash", "---", "TODO task",
    "|a|b|", "![img](https://x.test/i.png)", "", "   ", "plain words", "trailing space ",
    "**bold** _it_ `code [[x` ~~s~~", "\u00a0nbsp lead", "DONE done",
]  # fmt: skip
# The escapes syncd adds: a backslash before these characters where a line starts (see render).
UNESCAPE = re.compile(r"\\(?=[-#:$<`~\\])")


def expected_content(text: str) -> str:
    return text.strip()


def hostile_texts() -> list[str]:
    chooser = random.Random(20221118)  # fixed seed: the same 120 texts every run
    texts = [f"first {line}\n{line}" for line in HOSTILE_LINES]
    texts += [line for line in HOSTILE_LINES if line.strip()]
    for _ in range(120 - len(texts)):
        lines = chooser.choices(HOSTILE_LINES, k=chooser.randint(1, 6))
        texts.append("start\n" + "\n".join(lines))
    return texts


@pytest.mark.mldoc
def test_mldoc_reads_one_block_per_hostile_highlight(tmp_path: Path) -> None:
    texts = hostile_texts()
    highlights = [
        hl(n + 1, text, note=f"note {n}\n- {texts[-1 - n]}", tags=("tag", f"t {n}"))
        for n, text in enumerate(texts)
    ]
    adapter = LogseqAdapter(tz=UTC)
    page = adapter.render_page(make_book(*highlights), [first(*range(1, len(texts) + 1))], "T")

    parsed = outline_text(page, tmp_path)

    assert parsed["page_properties"]["title"] == "T"
    [header] = parsed["blocks"]
    assert header["content"] == "Highlights first synced by [[Readwise]] [[Feb 1st, 2023]]"
    assert len(header["children"]) == len(texts)
    for n, (text, block) in enumerate(zip(texts, header["children"], strict=True)):
        assert block["properties"] == {}, text
        assert UNESCAPE.sub("", block["content"]) == expected_content(text).rstrip(), text
        tags, note = block["children"]
        assert tags["content"] == f"**Tags**: #[[tag]] #[[t {n}]]"
        assert tags["children"] == [] and note["children"] == []
        assert UNESCAPE.sub("", note["content"]) == f"**Note**: note {n}\n- {texts[-1 - n]}".strip()


@pytest.mark.mldoc
def test_mldoc_reads_an_appended_section_as_a_new_top_level_block(tmp_path: Path) -> None:
    adapter = LogseqAdapter(tz=UTC)
    existing = adapter.render_page(make_book(hl(1, "a\n```")), [first(1)], "T")
    page = adapter.append_section(existing, make_book(hl(2, "b\n- c")), new(2))

    blocks = outline_text(page, tmp_path)["blocks"]

    assert [block["content"] for block in blocks] == [
        "Highlights first synced by [[Readwise]] [[Feb 1st, 2023]]",
        "New highlights added [[Feb 1st, 2023]] at 9:45 AM",
    ]
    assert [child["content"] for child in blocks[1]["children"]] == ["b\n\\- c"]


# --- filters and template variables --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "arg", "expected"),
    [
        (1, "s", ""), (2, "s", "s"), (0, "s", "s"), ("1", "s", ""), (1.0, "es", ""),
        (3, "es", "es"), (1, "y,ies", "y"), (2, "y,ies", "ies"), ([1], "s", ""),
        ([1, 2], "s", "s"), ("abc", "s", ""), (None, "s", ""), (2, "a,b,c", ""),
    ],
)  # fmt: skip
def test_pluralize_like_django(value: object, arg: str, expected: str) -> None:
    assert pluralize(value, arg) == expected


def test_date_filter_accepts_rendered_dates_datetimes_and_iso_strings() -> None:
    stamp = RenderedDate(datetime(2024, 11, 20, 0, 15), lambda _moment: "Nov 20th, 2024")
    assert str(stamp) == "Nov 20th, 2024"
    assert date_filter(stamp, "F j, Y") == "November 20, 2024"
    assert date_filter("2024-11-20T00:15:00", "Y-m-d") == "2024-11-20"
    assert date_filter("not a date", "Y") == "" and date_filter(None, "Y") == ""


def test_every_readwise_variable_is_in_the_context() -> None:
    kindle = make_book(
        hl(1, "t", note="n", tags=("x",), highlighted_at=datetime(2023, 1, 2, 3, 4, tzinfo=UTC)),
        hl(2, "u", highlighted_at=datetime(2023, 1, 5, tzinfo=UTC), is_discard=True),
        readwise_url="https://readwise.io/bookreview/1",
        source="kindle",
    )
    style = DateStyle(tz=UTC, show=lambda moment: moment.strftime("%Y-%m-%d"))
    document = document_context(
        kindle, synced_at=WHEN, is_new_page=False, has_new_highlights=True, style=style
    )
    item = highlight_context(document, kindle, kindle.highlights[0], style=style)
    names = {
        "title", "full_title", "author", "category", "url", "image_url", "document_tags",
        "summary", "document_note", "source", "book_id", "published_date",
        "last_highlighted_date", "highlights_url", "num_highlights", "date", "time",
        "is_new_page", "has_new_highlights", "highlight_text", "highlight_location",
        "highlight_location_url", "highlight_note", "highlight_tags", "highlight_id",
        "highlight_date",
    }  # fmt: skip
    assert names <= set(item)
    assert item["num_highlights"] == 1
    assert item["last_highlighted_date"] == datetime(2023, 1, 2, 3, 4, tzinfo=UTC)
    assert item["highlights_url"] == "https://readwise.io/bookreview/1"
    assert str(item["date"]) == "2023-02-01" and item["time"] == "9:45 AM"
    assert str(item["highlight_date"]) == "2023-01-02"
    assert item["highlight_tags"] == ["x"] and item["highlight_note"] == "n"


def test_user_templates_see_the_variables_and_undefined_prints_empty() -> None:
    from syncd.notes.render import environment

    template = environment().from_string(
        "{{ num_highlights }} highlight{{ num_highlights|pluralize }} on {{ date|date('Y-m-d') }}"
        " [{{ nope }}{{ nope.deeper }}]"
    )
    style = DateStyle(tz=UTC, show=str)
    context = document_context(
        make_book(hl(1), hl(2)), synced_at=WHEN, is_new_page=True, has_new_highlights=True,
        style=style,
    )  # fmt: skip
    assert template.render(context) == "2 highlights on 2023-02-01 []"
    assert render("obsidian_title.md.j2", {"title": "A\nB"}) == "# A B\n"
