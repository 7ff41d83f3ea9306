"""The note parsers read every text back losslessly and build the block tree the formats mean."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.notes.page import Block, Page
from syncd.notes.parse_logseq import parse_logseq
from syncd.notes.parse_obsidian import parse_obsidian
from tests.conftest import FIXTURES

ALL_FIXTURES = [*sorted(FIXTURES.glob("*/*.md")), FIXTURES / "readwise-logseq-tweet-thread.md"]
PARSERS: list[Callable[[str], Page]] = [parse_logseq, parse_obsidian]
NBSP = "\u00a0"
Tree: TypeAlias = list[tuple[str, "Tree"]]  # (content, children) per block


def shape(blocks: list[Block]) -> Tree:
    return [(block.content, shape(block.children)) for block in blocks]


def check_tree(page: Page) -> None:
    """Depths match the nesting and every block owns at least one line."""

    def visit(block: Block, depth: int) -> None:
        assert block.depth == depth
        assert block.lines
        for child in block.children:
            visit(child, depth + 1)

    for block in page.blocks:
        visit(block, 0)


@pytest.mark.parametrize("parse", PARSERS, ids=["logseq", "obsidian"])
@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_every_fixture_round_trips(path: Path, parse: Callable[[str], Page]) -> None:
    text = path.read_bytes().decode("utf-8")
    page = parse(text)
    assert page.render() == text
    check_tree(page)


# Fragments that meet at line starts in random orders: bullets at tab and space levels, Logseq
# continuations, headings, fences, properties, CR, BOM, trailing blanks and odd whitespace.
FRAGMENTS = [
    "- ",
    "-",
    "* ",
    "+ ",
    "1. ",
    "2) ",
    "\t",
    "  ",
    "    ",
    " ",
    "\t  ",
    "\t- ",
    "\t\t- ",
    "# ",
    "## ",
    "###### ",
    "####### ",
    "#tag",
    "```",
    "```md",
    "~~~",
    "$$",
    "#+BEGIN_QUOTE",
    "#+END_QUOTE",
    "---",
    "--- ",
    "...",
    "> ",
    ">[!note]- ",
    "key:: value",
    "id:: 6400a",
    "::",
    "title: x",
    "text",
    "é 漢字",
    NBSP,
    "\u200b",
    "\ufeff",
    "\r",
    "\r\n",
    "\n",
    "\n\n",
    " \n",
    "([Location\u00a012](https://readwise.io/to_kindle?location=12))",
    " ^rw1",
    "(Page\u00a03)",
    "[[Nov 18th, 2022]]",
    "**Note**: ",
    "\\-",
    "|",
]
texts = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join) | st.text(max_size=200)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_logseq_round_trips_any_text(text: str) -> None:
    page = parse_logseq(text)
    assert page.render() == text
    check_tree(page)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_obsidian_round_trips_any_text(text: str) -> None:
    page = parse_obsidian(text)
    assert page.render() == text
    check_tree(page)


# --- Logseq structure --------------------------------------------------------------------------


def test_logseq_default_page() -> None:
    text = (
        "title:: Meditations (highlights)\n"
        "author:: [[Marcus Aurelius]]\n"
        "\n"
        "- Highlights first synced by [[Readwise]] [[Nov 18th, 2022]]\n"
        f"\t- first line\n\t  \n\t  second ([Location{NBSP}147](https://readwise.io/to_kindle?location=147))\n"
        "\t\t- **Note**: a note\n"
        "\t- short\n"
        "- New highlights added [[Feb 14th, 2023]] at 7:04 AM\n"
        "\t- later ([View Highlight](https://read.readwise.io/read/01gs))\n"
        "\t  id:: 6400a5e5-1b2c-4d3e-8f00-112233445566"
    )
    page = parse_logseq(text)
    assert page.properties == {"title": "Meditations (highlights)", "author": "[[Marcus Aurelius]]"}
    pre, first, later = page.blocks
    assert (
        pre.kind == "pre"
        and pre.source == "title:: Meditations (highlights)\nauthor:: [[Marcus Aurelius]]\n\n"
    )
    assert shape([first, later]) == [
        ("Highlights first synced by [[Readwise]] [[Nov 18th, 2022]]", [
            (f"first line\n\nsecond ([Location{NBSP}147](https://readwise.io/to_kindle?location=147))",
             [("**Note**: a note", [])]),
            ("short", []),
        ]),
        ("New highlights added [[Feb 14th, 2023]] at 7:04 AM", [
            ("later ([View Highlight](https://read.readwise.io/read/01gs))\n"
             "id:: 6400a5e5-1b2c-4d3e-8f00-112233445566", []),
        ]),
    ]  # fmt: skip
    highlight = first.children[0]
    assert highlight.kind == "bullet" and highlight.depth == 1 and highlight.level == 2
    assert highlight.lines[0] == "\t- first line\n" and highlight.indent == "\t"
    location = highlight.location()
    assert location is not None
    assert location.label == f"Location{NBSP}147"
    assert location.url == "https://readwise.io/to_kindle?location=147"
    assert highlight.children[0].location() is None
    assert later.children[0].logseq_id() == "6400a5e5-1b2c-4d3e-8f00-112233445566"
    assert later.children[0].location() is None  # the link is not at the end any more
    assert page.render() == text


def test_logseq_old_style_front_matter_and_unindented_continuation() -> None:
    text = (
        "---\ntitle: Tweets (highlights)\n---\n\n- Author:: [[@x on Twitter]]\n\n"
        "- Highlights first synced by #Readwise [[May 25th, 2021]]\n"
        "\t - first tweet line\nhttps://t.co/z\n- looks like a bullet\n"
    )
    page = parse_logseq(text)
    assert page.front_matter == "title: Tweets (highlights)\n"
    assert page.properties == {"title": "Tweets (highlights)"}
    front, pre, author, header, bullet = page.blocks
    assert (front.kind, pre.source) == ("front_matter", "\n")
    assert author.properties == {"Author": "[[@x on Twitter]]"}
    assert shape([header]) == [
        ("Highlights first synced by #Readwise [[May 25th, 2021]]",
         [("first tweet line\nhttps://t.co/z", [])]),
    ]  # fmt: skip
    assert header.children[0].level == 3  # tab + space
    assert bullet.content == "looks like a bullet"


def test_logseq_roam_headings_are_flat_blocks_keeping_their_marks() -> None:
    text = (
        "## Highlights first synced by #Readwise [[October 1st, 2020]]\n"
        "### a highlight\n\n#### **Note**: n\n"
    )
    page = parse_logseq(text)
    assert [(b.kind, b.content, b.children) for b in page.blocks] == [
        ("heading", "## Highlights first synced by #Readwise [[October 1st, 2020]]", []),
        ("heading", "### a highlight", []),
        ("heading", "#### **Note**: n", []),
    ]


def test_logseq_code_fence_hides_bullets_only_when_closed() -> None:
    closed = parse_logseq("- a\n\t- ```\n\t  - not a block\n\t  ```\n- b\n")
    assert shape(closed.blocks) == [("a", [("```\n- not a block\n```", [])]), ("b", [])]
    unclosed = parse_logseq("\t- ```md\n\t- text\n\t- ```\n")
    assert [b.content for b in unclosed.walk()] == ["```md", "text", "```"]


def test_logseq_crlf_and_bom() -> None:
    page = parse_logseq("- a\r\n\t- b\r\n\t  c\r\n")
    assert shape(page.blocks) == [("a", [("b\nc", [])])]
    bom = parse_logseq("\ufeff- a\n")  # mldoc does not see a bullet behind a BOM
    assert [b.kind for b in bom.blocks] == ["pre"]


# --- Obsidian structure ------------------------------------------------------------------------


def test_obsidian_default_page() -> None:
    text = (
        "# Meditations\n\n![rw-book-cover](https://images/x.jpg)\n\n## Metadata\n"
        "- Author: [[Marcus Aurelius]]\n- Full Title: Meditations\n- Category: #books\n"
        "- Document Note: first\n   second\n\n## Highlights\n"
        f"- text ([Location{NBSP}599](https://readwise.io/to_kindle?location=599))\n"
        "    - Tags: [[orange]] \n    - Note: a note\n"
        "- two\n  paragraphs ([View Highlight](https://read.readwise.io/read/01))\n"
        "## New highlights added June 15, 2026 at 6:59 PM\n- third\n"
    )
    page = parse_obsidian(text)
    assert page.properties == {
        "Author": "[[Marcus Aurelius]]",
        "Full Title": "Meditations",
        "Category": "#books",
        "Document Note": "first\n second",  # only the item's 2-column prefix is structure
    }
    (title,) = page.blocks
    cover, metadata, highlights, added = title.children
    assert (title.kind, title.level, cover.kind) == ("heading", 1, "raw")
    assert (metadata.content, highlights.content) == ("## Metadata", "## Highlights")
    assert shape(highlights.children) == [
        (f"text ([Location{NBSP}599](https://readwise.io/to_kindle?location=599))",
         [("Tags: [[orange]]", []), ("Note: a note", [])]),
        ("two\nparagraphs ([View Highlight](https://read.readwise.io/read/01))", []),
    ]  # fmt: skip
    assert highlights.children[0].children[0].depth == 3
    assert shape(added.children) == [("third", [])]
    location = highlights.children[1].location()
    assert location is not None and location.label == "View Highlight"


def test_obsidian_front_matter_callout_and_block_ids() -> None:
    text = (
        "---\nauthor: x\ntags: [a, b]\n---\n# Title\n![rw-book-cover](c)\n<br>\n"
        ">[!note]- Readwise Information\n>Title:: Title\n--- \n"
        "## Linked Notes\n```dataview\n- not an item\n## not a heading\n```\n\n"
        "## Highlights\n- quote [View Highlight](https://readwise.io/open/48) ^rw48\n"
        "- See also: [[x]] \n"
    )
    page = parse_obsidian(text)
    assert page.front_matter == "author: x\ntags: [a, b]\n"
    assert page.properties == {"author": "x", "tags": "[a, b]"}
    front, title = page.blocks
    assert front.kind == "front_matter"
    assert [b.content for b in title.children] == [
        "![rw-book-cover](c)\n<br>",
        ">[!note]- Readwise Information\n>Title:: Title",
        "---",
        "## Linked Notes",
        "## Highlights",
    ]
    linked, highlights = title.children[3:]
    assert [b.content for b in linked.children] == [
        "```dataview\n- not an item\n## not a heading\n```"
    ]
    quote = highlights.children[0]
    assert quote.block_id() == "rw48"
    location = quote.location()
    assert location is not None
    assert (location.url, location.text) == (
        "https://readwise.io/open/48",
        "[View Highlight](https://readwise.io/open/48)",
    )
    assert highlights.children[1].block_id() is None


def test_obsidian_fence_inside_an_item_stays_in_it() -> None:
    page = parse_obsidian("- item\n  ```\n- inside\n\n  ```\n- next\n")
    assert shape(page.blocks) == [("item\n```\n- inside\n\n```", []), ("next", [])]


def test_obsidian_unclosed_fence_runs_to_the_end() -> None:
    page = parse_obsidian("text\n```\n# h\n- i\n")
    assert [b.content for b in page.blocks] == ["text", "```\n# h\n- i"]


def test_obsidian_blockquote_entries_with_rules_and_page_location() -> None:
    text = (
        "# New highlights added June 30, 2024 at 9:43 PM\n\n"
        f"> a quote (Page{NBSP}3)\n\n---\n\nNote: mine\n"
    )
    (header,) = parse_obsidian(text).blocks
    quote, rule, note = header.children
    assert (quote.kind, rule.content, note.content) == ("raw", "---", "Note: mine")
    location = quote.location()
    assert location is not None and (location.label, location.url) == (f"Page{NBSP}3", None)


def test_obsidian_pages_without_title_and_leading_blank_lines() -> None:
    page = parse_obsidian("\n\n- a\n  - b\n- c")
    blank, first, last = page.blocks
    assert (blank.kind, blank.source) == ("raw", "\n\n")
    assert shape([first, last]) == [("a", [("b", [])]), ("c", [])]
    assert page.render() == "\n\n- a\n  - b\n- c"


# --- Generated Logseq outlines parse back into the tree they were written from -----------------

WORDS = st.sampled_from(
    ["word", "Readwise", "[[Nov 18th, 2022]]", "#[[tag]]", "**Note**:", "a::b", "é", "漢字", "(x)",
     f"([Location{NBSP}9](https://readwise.io/to_kindle?location=9))", "`code`", "> quote"]
)  # fmt: skip
LINE = st.lists(WORDS, min_size=1, max_size=4).map(" ".join)


@st.composite
def outlines(draw: st.DrawFn, depth: int = 0) -> Tree:
    count = draw(st.integers(min_value=0 if depth else 1, max_value=3 if depth < 3 else 0))
    return [
        (
            "\n".join(
                draw(
                    st.lists(LINE | st.just(""), min_size=1, max_size=3).filter(
                        lambda ls: ls[0] != "" and ls[-1] != ""
                    )
                )
            ),
            draw(outlines(depth + 1)),
        )
        for _ in range(count)
    ]


def render_outline(nodes: Tree, depth: int = 0) -> str:
    """Write an outline the way Readwise does: tabs, `- ` bullets, `\\t  ` continuations."""
    out = []
    for content, children in nodes:
        first, *rest = content.split("\n")
        out.append("\t" * depth + "- " + first + "\n")
        out.extend("\t" * depth + "  " + line + "\n" for line in rest)
        out.append(render_outline(children, depth + 1))
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(outlines(), st.booleans())
def test_generated_logseq_outline_parses_back(tree: Tree, props: bool) -> None:
    text = ("title:: Generated\n\n" if props else "") + render_outline(tree)
    page = parse_logseq(text)
    blocks = [b for b in page.blocks if b.kind != "pre"]
    assert shape(blocks) == tree
    assert page.render() == text
