"""Obsidian note text → Page: headings as sections, list items nested by indentation, raw rest.

The reading follows CommonMark where it decides block boundaries, kept simple and total:
- a heading (`#`..`######`) opens a section that holds everything up to the next heading of the
  same or a higher rank;
- a list item (`- `, `* `, `+ `, `1. `, `1) `) holds its continuation lines: lazy text right
  after it, and after blank lines any text indented past the item's own indentation; an item
  indented deeper than the one above nests under it;
- anything else is a raw block: a paragraph, a `>` quote or callout, a `---` rule, or a fenced
  code block, which always stays whole (an unclosed fence runs to the end of the file);
- blank lines belong to the block above them (or form a raw block at the top of the file).
"""

from __future__ import annotations

import re

from syncd.notes.page import Block, Page, line_body, split_lines

_HEADING_RE = re.compile(r" {0,3}(#{1,6})(?:[ \t]|$)")
_ITEM_RE = re.compile(r"([ \t]*)([-*+]|\d{1,9}[.)])(?:([ \t])|$)")
_FENCE_RE = re.compile(r"([ \t]*)(`{3,}|~{3,})")
_RULE_RE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_QUOTE_RE = re.compile(r" {0,3}>")
_METADATA_ITEM_RE = re.compile(r"([^:\n]+):[ \t]*(.*)", re.DOTALL)
_YAML_KEY_RE = re.compile(r"([^\s#:\-][^:]*):(?:[ \t]+(.*)|[ \t]*)$")
_TAB_WIDTH = 4


def parse_obsidian(text: str) -> Page:
    """Parse an Obsidian note; never raises, and `parse_obsidian(t).render() == t` always."""
    return _Parser(split_lines(text)).parse()


def _width(indent: str) -> int:
    return len(indent.expandtabs(_TAB_WIDTH))


def _top_fence(body: str) -> re.Match[str] | None:
    """A fence opener that starts a block of its own (indented at most three columns)."""
    fence = _FENCE_RE.match(body)
    return fence if fence and _width(fence[1]) <= 3 else None


def _is_blank(body: str) -> bool:
    return not body.strip(" \t")


class _Parser:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.top: list[Block] = []
        self.sections: list[Block] = []  # open headings, outermost first
        self.items: list[Block] = []  # open list items, outermost first
        self.last: Block | None = None  # the block created last: the end of the file so far

    def parse(self) -> Page:
        index, front_matter = self._front_matter()
        while index < len(self.lines):
            index = self._next_block(index)
        return Page(
            format="obsidian",
            blocks=self.top,
            properties={**_yaml_keys(front_matter), **self._metadata()},
            front_matter=front_matter,
        )

    def _body(self, index: int) -> str:
        return line_body(self.lines[index])

    def _front_matter(self) -> tuple[int, str | None]:
        if not self.lines or self._body(0) != "---":
            return 0, None
        for index in range(1, len(self.lines)):
            if self._body(index).rstrip(" \t") in ("---", "..."):
                self._add(Block(kind="front_matter", lines=self.lines[: index + 1]), parent=None)
                return index + 1, "".join(self.lines[1:index])
        return 0, None

    def _add(self, block: Block, parent: Block | None) -> None:
        if parent is None:
            block.depth = 0
            self.top.append(block)
        else:
            block.depth = parent.depth + 1
            parent.children.append(block)
        self.last = block

    def _next_block(self, index: int) -> int:
        """Read the block starting at `index`; return the index just after it."""
        body = self._body(index)
        if _is_blank(body):
            if self.last is None:
                self._add(Block(kind="raw", lines=[]), parent=None)
            assert self.last is not None
            self.last.lines.append(self.lines[index])
            return index + 1
        heading = _HEADING_RE.match(body)
        if heading:
            return self._heading(index, len(heading[1]))
        item = _ITEM_RE.match(body)
        if item and not _RULE_RE.match(body):
            return self._item(index, item)
        self.items.clear()
        end = self._raw_end(index)
        self._add(Block(kind="raw", lines=self.lines[index:end]), parent=self._section())
        return end

    def _section(self) -> Block | None:
        return self.sections[-1] if self.sections else None

    def _heading(self, index: int, rank: int) -> int:
        self.items.clear()
        while self.sections and self.sections[-1].level >= rank:
            self.sections.pop()
        block = Block(kind="heading", lines=[self.lines[index]], level=rank)
        self._add(block, parent=self._section())
        self.sections.append(block)
        return index + 1

    def _item(self, index: int, match: re.Match[str]) -> int:
        indent, bullet, space = match[1], match[2], match[3] or ""
        column = _width(indent)
        while self.items and self.items[-1].level >= column:
            self.items.pop()
        parent = self.items[-1] if self.items else self._section()
        marker = bullet + space
        end = self._item_end(index, column)
        block = Block(
            kind="list_item",
            lines=self.lines[index:end],
            level=column,
            indent=indent,
            marker=marker,
            continuation=indent + " " * len(marker),
        )
        self._add(block, parent)
        self.items.append(block)
        return end

    def _item_end(self, index: int, column: int) -> int:
        """The index after an item's last continuation line (blank lines before it included)."""
        end = index + 1
        scan = index + 1
        after_blank = False
        while scan < len(self.lines):
            body = self._body(scan)
            if _is_blank(body):
                after_blank = True
                scan += 1
                continue
            if _HEADING_RE.match(body) or (_ITEM_RE.match(body) and not _RULE_RE.match(body)):
                break
            indented = _width(body[: len(body) - len(body.lstrip(" \t"))]) > column
            if after_blank and not indented:
                break
            if not indented and (_RULE_RE.match(body) or _QUOTE_RE.match(body)):
                break
            fence = _FENCE_RE.match(body)
            if fence and not indented:
                break
            scan = self._fence_end(scan, fence) if fence else scan + 1
            end = scan
            after_blank = False
        return end

    def _raw_end(self, index: int) -> int:
        """The index after a raw block: a fence, a rule, or a run of text lines."""
        body = self._body(index)
        fence = _top_fence(body)
        if fence:
            return self._fence_end(index, fence)
        if _RULE_RE.match(body):
            return index + 1
        # A `>` line interrupts a paragraph; a quote goes on through lazy text lines.
        in_quote = bool(_QUOTE_RE.match(body))
        end = index + 1
        while end < len(self.lines):
            body = self._body(end)
            if (
                _is_blank(body)
                or _HEADING_RE.match(body)
                or _ITEM_RE.match(body)
                or _RULE_RE.match(body)
                or _top_fence(body)
                or (not in_quote and _QUOTE_RE.match(body))
            ):
                break
            end += 1
        return end

    def _fence_end(self, index: int, fence: re.Match[str]) -> int:
        """The index after the line closing the fence opened at `index` (or the file's end)."""
        mark = fence[2]
        for later in range(index + 1, len(self.lines)):
            stripped = self._body(later).strip(" \t")
            if stripped.startswith(mark[0] * len(mark)) and not stripped.strip(mark[0]):
                return later + 1
        return len(self.lines)

    def _metadata(self) -> dict[str, str]:
        """`- Key: value` items of the `## Metadata` section (the first one found)."""
        for block in self.top:
            for node in block.walk():
                if node.kind == "heading" and node.content.lstrip("#").strip() == "Metadata":
                    return _metadata_items(node)
        return {}


def _metadata_items(section: Block) -> dict[str, str]:
    found: dict[str, str] = {}
    for child in section.children:
        match = _METADATA_ITEM_RE.match(child.content) if child.kind == "list_item" else None
        if match:
            found[match[1].strip()] = match[2].strip()
    return found


def _yaml_keys(front_matter: str | None) -> dict[str, str]:
    """Top-level `key: value` pairs of YAML front matter (best effort; no YAML library)."""
    found: dict[str, str] = {}
    for line in split_lines(front_matter or ""):
        match = _YAML_KEY_RE.match(line_body(line))
        if match:
            found[match[1].strip()] = (match[2] or "").strip()
    return found
