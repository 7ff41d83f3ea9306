"""Logseq page text → Page, splitting blocks exactly where Logseq's parser (mldoc) does.

A block starts at a line that mldoc reads as a heading: `-` followed by a space, a tab or the end
of the line, or a run of `#` followed by the same, after any tabs and spaces. Its level is 1 + the
number of indent characters (a tab and a space count the same), and a block nests under the
nearest earlier block of lower level. Lines that do not start a block belong to the block above.
Lines inside a region that mldoc reads as one unit never start a block: the leading `---` front
matter, a closed code fence, a closed `#+BEGIN_x` ... `#+END_x`, a closed `$$` math block and a
`>` quote or a `* `/`1. ` list with the lines they take in.
An opener without its closer is plain text, as in mldoc.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from syncd.notes.page import Block, Page, line_body, split_lines

_BULLET_RE = re.compile(r"([ \t]*)(-(?:[ \t]|$))")
_HEADING_RE = re.compile(r"([ \t]*)#+(?:[ \t]|$)")
_LIST_RE = re.compile(r"(?:[*+]|\d+\.)[ \t]")
_H1_RE = re.compile(r"[ \t]*#(?: |$)")
_HEADING_MARK_RE = re.compile(r"#+[ \t]+")
_BEGIN_RE = re.compile(r"#\+begin_(\S+)", re.IGNORECASE)
# mldoc's property line: a key without spaces or colons, `::`, then a space or the line's end.
_PROPERTY_RE = re.compile(r"[ \t]*([^\s:]+)::(?:[ \t]+(.*)|[ \t]*)$")
_FRONT_MATTER_KEY_RE = re.compile(r"([A-Za-z0-9_-][^:]*):(?:[ \t]+(.*)|[ \t]*)$")
_FENCES = ("```", "~~~")


def parse_logseq(text: str) -> Page:
    """Parse a Logseq page; never raises, and `parse_logseq(t).render() == t` for every text."""
    lines = split_lines(text)
    top: list[Block] = []
    properties: dict[str, str] = {}
    front_matter: str | None = None

    start = 0
    front_end = _front_matter_end(lines)
    if front_end is not None:
        start = front_end + 1
        top.append(Block(kind="front_matter", lines=lines[:start]))
        front_matter = "".join(lines[1:front_end])
        properties.update(_front_matter_properties(lines[1:front_end]))

    starts, hidden = _scan(lines, start)
    first = starts[0] if starts else len(lines)
    if first > start:
        pre = Block(kind="pre", lines=lines[start:first])
        pre.properties = _properties(pre.lines, range(start, first), hidden, title_prefix=0)
        properties.update(pre.properties)
        top.append(pre)

    stack: list[Block] = []
    for n, index in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        block = _make_block(lines, index, end, hidden)
        while stack and stack[-1].level >= block.level:
            stack.pop()
        block.depth = len(stack)
        (stack[-1].children if stack else top).append(block)
        stack.append(block)
    return Page(format="logseq", blocks=top, properties=properties, front_matter=front_matter)


def _front_matter_end(lines: list[str]) -> int | None:
    """Index of the line closing a leading `---` front matter, if the file starts with one."""
    if not lines or line_body(lines[0]) != "---":
        return None
    for index in range(1, len(lines)):
        if line_body(lines[index]).rstrip(" \t") == "---":
            return index
    return None


def _front_matter_properties(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        match = _FRONT_MATTER_KEY_RE.match(line_body(line))
        if match:
            found[match[1].strip()] = (match[2] or "").strip()
    return found


def _scan(lines: list[str], start: int) -> tuple[list[int], set[int]]:
    """Indexes of the lines that start blocks, and of lines inside multi-line regions."""
    starts: list[int] = []
    hidden: set[int] = set()
    index = start
    while index < len(lines):
        body = line_body(lines[index])
        title = _block_title(body)
        if title is not None:
            starts.append(index)
        region_end = _region_end(
            lines, index, body.lstrip(" \t") if title is None else title, title is None
        )
        if region_end is None:
            index += 1
            continue
        hidden.update(range(index + 1, region_end + 1))
        index = region_end + 1
    return starts, hidden


def _block_title(body: str) -> str | None:
    """The text after the bullet (and any heading marks) if this line starts a block."""
    bullet = _BULLET_RE.match(body)
    if bullet:
        rest = body[bullet.end() :].lstrip(" \t")
        heading = _HEADING_MARK_RE.match(rest)
        return rest[heading.end() :] if heading else rest
    heading = _HEADING_RE.match(body)
    if heading:
        return body[heading.end() :].lstrip(" \t")
    return None


def _region_end(lines: list[str], index: int, text: str, bare: bool) -> int | None:
    """If `text` (on line `index`) opens a region that is closed later, the closing line's index.

    `bare` is false when `text` follows a bullet or heading marks, where lists do not start."""
    if text.startswith(_FENCES):
        return _find(lines, index, lambda body: body.lstrip(" \t").startswith(_FENCES))
    begin = _BEGIN_RE.match(text)
    if begin:
        end_mark = "#+end_" + begin[1].lower()
        return _find(lines, index, lambda body: body.lstrip(" \t").lower().startswith(end_mark))
    if text.startswith("$$") and "$$" not in text[2:]:
        return _find(lines, index, lambda body: "$$" in body)
    if text.startswith(">") and len(text) > 1:
        return _quote_end(lines, index)
    if bare and _LIST_RE.match(text):
        return _list_end(lines, index)
    return None


def _list_end(lines: list[str], index: int) -> int | None:
    """mldoc's `* `/`+ `/`1. ` list takes in the indented lines after it, headings included."""
    end = index
    while end + 1 < len(lines):
        body = line_body(lines[end + 1])
        if not body.startswith((" ", "\t")) or _BULLET_RE.match(body):
            break
        end += 1
    return end if end > index else None


def _quote_end(lines: list[str], index: int) -> int | None:
    """mldoc's `>` quote takes in the lines after it, even `## ` headings, up to a blank line,
    a bullet, a `# ` heading or an `id::` property."""
    end = index
    while end + 1 < len(lines):
        body = line_body(lines[end + 1])
        if not body.strip(" \t") or _BULLET_RE.match(body) or _H1_RE.match(body):
            break
        if (prop := _PROPERTY_RE.match(body)) and prop[1] == "id":  # a block ref id ends it too
            break
        end += 1
    return end if end > index else None


def _find(lines: list[str], index: int, closes: Callable[[str], bool]) -> int | None:
    for later in range(index + 1, len(lines)):
        if closes(line_body(lines[later])):
            return later
    return None


def _make_block(lines: list[str], start: int, end: int, hidden: set[int]) -> Block:
    body = line_body(lines[start])
    bullet = _BULLET_RE.match(body)
    if bullet:
        indent, mark = bullet[1], bullet[2]
        # Logseq's outline strips "- " (one space) from the first line, indent + two spaces after.
        marker = "- " if mark.startswith("- ") else mark
        block = Block(
            kind="bullet",
            lines=lines[start:end],
            level=len(indent) + 1,
            indent=indent,
            marker=marker,
            continuation=indent + "  ",
        )
        title_prefix = len(indent) + len(mark)
    else:
        heading = _HEADING_RE.match(body)
        indent = heading[1] if heading else ""
        # A heading keeps its `#` marks in its content, as in Logseq.
        block = Block(
            kind="heading", lines=lines[start:end], level=len(indent) + 1, continuation="  "
        )
        title_prefix = 0
    block.properties = _properties(block.lines, range(start, end), hidden, title_prefix)
    return block


def _properties(
    block_lines: list[str], numbers: range, hidden: set[int], title_prefix: int
) -> dict[str, str]:
    """`key:: value` lines of a block (its first line after the bullet and heading marks too)."""
    found: dict[str, str] = {}
    for offset, (line, number) in enumerate(zip(block_lines, numbers, strict=True)):
        if number in hidden:
            continue
        body = line_body(line)
        if offset == 0 and title_prefix:
            body = body[title_prefix:].lstrip(" \t")
            heading = _HEADING_MARK_RE.match(body)
            body = body[heading.end() :] if heading else body
        elif offset == 0:
            heading = _HEADING_RE.match(body)
            body = body[heading.end() :].lstrip(" \t") if heading else body
        match = _PROPERTY_RE.match(body)
        if match:
            found[match[1]] = (match[2] or "").strip()
    return found
