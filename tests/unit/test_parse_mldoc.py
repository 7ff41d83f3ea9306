"""parse_logseq splits and nests blocks exactly as Logseq's own parser (mldoc) does.

Each comparison covers the whole outline: block count and nesting, each block's content (trailing
whitespace trimmed, the way tests/tools/logseq-outline/outline.js prints it), each block's
properties, and the page properties. mldoc runs once per batch of pages to keep this fast.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.notes.page import Block, Page
from syncd.notes.parse_logseq import parse_logseq
from tests.conftest import FIXTURES
from tests.mldoc import outline

pytestmark = pytest.mark.mldoc

LOGSEQ_FIXTURES = [
    *sorted((FIXTURES / "logseq").glob("*.md")),
    FIXTURES / "readwise-logseq-tweet-thread.md",
]


def as_outline(page: Page) -> dict[str, Any]:
    """Our parse in outline.js's shape (the pre-block and front matter are not blocks there)."""

    def node(block: Block) -> dict[str, Any]:
        children = [node(child) for child in block.children]
        return {"content": block.content, "properties": block.properties, "children": children}

    pre = [block for block in page.blocks if block.kind == "pre"]
    return {
        "page_properties": pre[0].properties if pre else {},
        "blocks": [
            node(block) for block in page.blocks if block.kind not in ("pre", "front_matter")
        ],
    }


def mldoc_outlines(texts: list[str]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"page{n}.md" for n in range(len(texts))]
        for path, text in zip(paths, texts, strict=True):
            path.write_bytes(text.encode("utf-8"))
        found = outline(paths)
    return [
        {"page_properties": o["page_properties"], "blocks": _crlf_to_lf(o["blocks"])} for o in found
    ]


def _crlf_to_lf(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """outline.js splits lines on LF only and so leaves a CR inside multi-line content; our
    content drops each line's whole ending. The block split itself is the same."""
    return [
        {**b, "content": b["content"].replace("\r\n", "\n"), "children": _crlf_to_lf(b["children"])}
        for b in blocks
    ]


def test_every_logseq_fixture_matches_mldoc() -> None:
    expected = outline(LOGSEQ_FIXTURES)
    for path, want in zip(LOGSEQ_FIXTURES, expected, strict=True):
        got = as_outline(parse_logseq(path.read_bytes().decode("utf-8")))
        assert got == {"page_properties": want["page_properties"], "blocks": want["blocks"]}, (
            path.name
        )


def test_fixture_agreement_is_not_vacuous() -> None:
    """The fixtures hold the patterns the agreement is about (guards against an empty parse)."""
    pages = {
        path.name[:3]: parse_logseq(path.read_text(encoding="utf-8")) for path in LOGSEQ_FIXTURES
    }
    assert sum(1 for page in pages.values() for _ in page.walk()) > 500
    assert [b.kind for b in pages["032"].blocks][:3] == ["front_matter", "pre", "heading"]  # L4
    l3_tweet = pages["009"].blocks[6].children[0]  # L3: a continuation line at column 0
    assert l3_tweet.content == "高等教育出版社把所有教材都放到了线上\nhttps://t.co/zStQx7vA7Q"
    assert all(b.kind == "bullet" for b in pages["039"].blocks[1].children)  # L9 unclosed fences


# Pages that pin down mldoc's rules one at a time (found by probing mldoc).
RULES = {
    "tab and space indents count one level each": (
        "- a\n\t- b\n\t\t- c\n  - d\n    - e\n\t - f\n \t- g\n"
    ),
    "bullet forms": "- a\n-\n- \n\t-\n- b\n-c\n",
    "star, plus and numbers are not blocks": "- a\n* b\n+ c\n1. d\n\t* e\n\t\t- f\n",
    "headings are blocks at level 1 + indent": (
        "- a\n## h\n   ## h2\n#\n##x\n####### x\n\t### y\n- ## z\n"
    ),
    "unindented continuation (L3)": "- h\n\t - a\ncontinued\n- new\n\n\t - b\n",
    "closed fence hides bullets": "- a\n\t  ```\n\t  - b\n\t  ```\n\t- c\n",
    "fence on a bullet line": "- ```\n  - b\n  ```\n- c\n",
    "unclosed fence is text": "- a\n```\n- b\n- c\n",
    "fence closed by a longer or other fence": "- a\n````\n- b\n~~~ x\n- c\n```\n- d\n",
    "bullet fences never close (L9)": "- a\n\t- ```md\n\t- b\n\t- ```\n",
    "quote block": "- a\n  #+BEGIN_QUOTE\n  - b\n  #+END_QUOTE\n- c\n#+BEGIN_QUOTE\n- d\n",
    "display math": "- a\n  $$\n  - b\n  $$\n- c\n  $$ x $$\n- d\n",
    "front matter": "---\ntitle: x\n- a\n---  \n\n- b\n",
    "no front matter without its end": "---\ntitle: x\n\n- b\n",
    "page properties": "title:: a\nk:: b\n![](x)\n\nlate:: c\n- a\n",
    "block properties": (
        "- Author:: x\n  id:: 1\n  Full Title:: no\n  k:: \n  e::\n  f::x\n  text\n  d:: y\n"
    ),
    "blank lines and trailing whitespace": "\n\n- a  \n\t  \n\n\t- b\t\n\n",
    "quote takes in lines, even ## headings": (
        "- a\n> q\n## h\n  - b\n> q\n# h\n- > q\n  ### i\n\n## j\n"
    ),
    "an id:: property ends a quote": "- > q\n  tags:: v\n  id:: 1\n  ## h\n",
    "list takes in indented lines, headings too": (
        "- a\n* x\n  ## h\n\n  ## i\n\t- 1. y\n\t  ## j\n"
    ),
    "a bare > is not a quote": "- a\n\t  >\n## h\n",
    "crlf": "- a\r\n\t- b\r\n\t  c\r\n",
    "no final newline": "- a\n\t- b",
    "bom hides the first bullet": "\ufeff- a\n- b\n",
}


@pytest.fixture(scope="module")
def rule_outlines() -> dict[str, dict[str, Any]]:
    return dict(zip(RULES, mldoc_outlines(list(RULES.values())), strict=True))


@pytest.mark.parametrize("rule", RULES)
def test_rule_matches_mldoc(rule: str, rule_outlines: dict[str, dict[str, Any]]) -> None:
    assert as_outline(parse_logseq(RULES[rule])) == rule_outlines[rule]


# --- Generated pages: Readwise-style outlines (tab indents, `\t  ` continuations) carrying the
# oddities of real pages: quotes, lists, headings, fences, properties, blank continuation lines.

WORDS = [
    "text",
    "[[Nov 18th, 2022]]",
    "#[[tag]]",
    "a::b",
    "漢字",
    "`x`",
    "(Page\u00a01)",
    "• point",
    "\\- x",
]
TITLES = [
    "Highlights first synced by [[Readwise]] [[Nov 18th, 2022]]", "**Note**: a note",
    "**Tags**: #[[pink]]", "> quoted text", "![](https://pbs.twimg.com/media/x.jpg)", "```md",
    "```", "## Chapter 1", "Author:: [[x]]",
    "text ([Location\u00a012](https://readwise.io/to_kindle?location=12))",
]  # fmt: skip
CONTINUATIONS = [
    "", "id:: 6400a5e5-1b2c-4d3e-8f00-112233445566", "tags:: [[mind]]", "> quote", "1. item",
    "* star", "### heading in a highlight", "#tag", "```", "```py", "$$", "#+BEGIN_QUOTE",
    "#+END_QUOTE", "---",
]  # fmt: skip


@st.composite
def pages(draw: st.DrawFn) -> str:
    lines: list[str] = []
    if draw(st.booleans()):
        lines += ["title:: Generated (highlights)", "category:: #books"]
        lines += draw(st.sampled_from([[""], [], ["![](https://x/c.png)", ""]]))
    level = 0
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        level = draw(st.integers(min_value=0, max_value=min(level + 1, 4)))
        words = " ".join(draw(st.lists(st.sampled_from(WORDS), max_size=3)))
        lines.append("\t" * level + "- " + draw(st.sampled_from(TITLES) | st.just(words)))
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            text = draw(st.sampled_from(CONTINUATIONS) | st.sampled_from(WORDS))
            lines.append("\t" * level + "  " + text)
        if draw(st.integers(min_value=0, max_value=4)) == 0:
            lines.append("")
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(pages(), min_size=30, max_size=30))
def test_generated_pages_match_mldoc(batch: list[str]) -> None:
    for text, want in zip(batch, mldoc_outlines(batch), strict=True):
        assert as_outline(parse_logseq(text)) == want, text
