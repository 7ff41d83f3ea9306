"""The parsed form of a note file: a Page holding a tree of Blocks over the file's own lines.

Every Block owns a contiguous run of source lines, kept with their line endings, and the tree is
only a view over them: walking the tree in pre-order visits the lines in file order, so
`page.render()` gives back the exact text that was parsed, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal[
    "front_matter",  # a leading `---` ... `---` YAML block
    "pre",  # Logseq: the text before the first block (page properties live here)
    "bullet",  # Logseq: an outline block (`- ` at some indentation) with its continuation lines
    "heading",  # a `#`..`######` line (Obsidian: the section node; Logseq: a heading block)
    "list_item",  # Obsidian: `- `, `* `, `+ `, `1. ` item with its continuation lines
    "raw",  # Obsidian: a paragraph, callout, rule, fenced code block or blank lines
]

# JavaScript's `\s` (what Logseq's tooling trims with), not Python's wider str.isspace().
_JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_URL = r"(?P<url>[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)"
_LABEL = r"(?P<label>(?:Location|Time|Page)[\u00a0 ][^\]\n]+|View Highlight|View Tweet)"
_BLOCK_ID_TAIL = r"(?:[ \t]+\^[A-Za-z0-9-]+)?[ \t]*$"
# `([Location N](url))` (Readwise's default), `[View Highlight](url)` (O3 callout template, often
# followed by a `^blockid`), and the link-less `(Page N)`.
_LOCATION_RE = re.compile(
    rf"(?P<text>\(\[{_LABEL}\]\({_URL}\)\)|\[{_LABEL.replace('label', 'label2')}\]\("
    rf"{_URL.replace('url', 'url2')}\)|\((?P<page>Page[\u00a0 ]\d+)\)){_BLOCK_ID_TAIL}"
)
_BLOCK_ID_RE = re.compile(r"(?:^|[ \t])\^(?P<id>[A-Za-z0-9-]+)[ \t]*$")


def line_body(line: str) -> str:
    """A source line without its line ending (`\\n` or `\\r\\n`)."""
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    return line


@dataclass(frozen=True)
class Location:
    """A highlight's trailing location link, as written."""

    label: str  # "Location\u00a0599", "Time\u00a00:10:20", "Page\u00a03", "View Highlight", ...
    url: str | None  # None for the link-less `(Page N)`
    text: str  # the exact source text of the link, e.g. "([View Tweet](https://...))"


@dataclass(eq=False)
class Block:
    """One node of a page: its own source lines plus the blocks nested under it.

    `indent` + `marker` is the prefix of the first line that is not content ("\\t- ", "  1. ", or
    "" for headings and raw text); continuation lines lose `continuation` ("\\t  ") when they
    start with it, else `indent`, else their leading whitespace, as Logseq's outline does.
    """

    kind: BlockKind
    lines: list[str]
    depth: int = 0
    level: int = (
        0  # Logseq: mldoc's level (1 + indent chars); Obsidian: heading rank or indent column
    )
    indent: str = ""
    marker: str = ""
    continuation: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    children: list[Block] = field(default_factory=list)

    @property
    def source(self) -> str:
        """This block's own lines, exactly as in the file (children excluded)."""
        return "".join(self.lines)

    @property
    def content(self) -> str:
        """The text without bullet, indentation and continuation prefix; trailing space trimmed."""
        if not self.lines:
            return ""
        first = line_body(self.lines[0])[len(self.indent) + len(self.marker) :]
        rest = [self._dedent(line_body(line)) for line in self.lines[1:]]
        return "\n".join([first, *rest]).rstrip(_JS_SPACE)

    def _dedent(self, body: str) -> str:
        if self.continuation and body.startswith(self.continuation):
            return body[len(self.continuation) :]
        if body.startswith(self.indent):
            return body[len(self.indent) :]
        return body.lstrip(_JS_SPACE)

    def render(self) -> str:
        """This block and everything nested under it, exactly as in the file."""
        return "".join(line for block in self.walk() for line in block.lines)

    def walk(self) -> Iterator[Block]:
        """This block, then its descendants, in file order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def location(self) -> Location | None:
        """The location link at the very end of the content, if there is one."""
        match = _LOCATION_RE.search(self.content)
        if match is None:
            return None
        if match["page"] is not None:
            return Location(label=match["page"], url=None, text=match["text"])
        label = match["label"] or match["label2"]
        url = match["url"] if match["label"] else match["url2"]
        return Location(label=label, url=url, text=match["text"])

    def block_id(self) -> str | None:
        """An Obsidian `^blockid` ending the content, without the caret."""
        match = _BLOCK_ID_RE.search(self.content)
        return None if match is None else match["id"]

    def logseq_id(self) -> str | None:
        """The Logseq `id::` block property (a UUID that block references point at)."""
        return self.properties.get("id")


@dataclass(eq=False)
class Page:
    """A parsed note file.

    `blocks` are the top-level blocks in file order, including any front matter and the Logseq
    pre-block, so that rendering them gives back the whole file. `properties` are the page's own
    key/value pairs: Logseq `key:: value` lines of the pre-block and old `---` front matter keys;
    Obsidian front matter keys (best effort: scalar values only) and `## Metadata` items.
    """

    format: Literal["logseq", "obsidian"]
    blocks: list[Block]
    properties: dict[str, str] = field(default_factory=dict)
    front_matter: str | None = None  # the raw YAML between the `---` lines, if any

    def walk(self) -> Iterator[Block]:
        """Every block in file order (pre-order over the tree)."""
        for block in self.blocks:
            yield from block.walk()

    def render(self) -> str:
        """The page's text, byte for byte what was parsed."""
        return "".join(line for block in self.walk() for line in block.lines)


def split_lines(text: str) -> list[str]:
    """Lines with their endings; only `\\n` ends a line (a lone `\\r` is ordinary text)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out
