"""What the user changed in one highlight's block, as Readwise fields: a pure function over text.

A highlight's block is read into `BlockFields`: its text (without the location link, the block
id and the escaping syncd adds), its note and its tags, in both formats:

    Obsidian                                   Logseq
    - text ([Location 12](url)) ^rw123         - text ([Location 12](url))
        - Tags: [[a]] [[to read]]                id:: 5f0c...
        - Note: first line                     	- **Tags**: #[[a]] #b
          second line                          	- **Note**: first line
                                                         second line

Three readings of the block are compared per field: the base (the block syncd last wrote, its
`BlockRecord`), the user's block as it is now, and syncd's render of Readwise's current data:

    user left it as the base                   nothing
    user emptied it (note, text)               not sent: deletions stay local
    field not in `write_back`                  nothing
    user's value is Readwise's already         nothing (an echo, or both made the same edit)
    Readwise changed it too since the base     conflict, nothing sent
    otherwise                                  sent: the user's value

Both readings go through the same parser, so whatever a template adds (the location link, the
`Tags:` label, the escaping) cancels out and is never sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from syncd.notes.blockids import ID_LINE
from syncd.notes.page import Block, line_body
from syncd.sync.merge import Format, parse

Field = Literal["note", "tags", "text"]
FIELDS: tuple[Field, ...] = ("note", "tags", "text")

_OBSIDIAN_CHILD = re.compile(r"^(Tags|Note):[ \t]?")
_LOGSEQ_CHILD = re.compile(r"^\*\*(Tags|Note)\*\*:[ \t]?")
_TAG = re.compile(r"#?\[\[(?P<long>[^\]\n]+?)\]\]|(?<![^\s,])#(?P<short>[^\s#\[\],]+)")
_BLOCK_ID_TAIL = re.compile(r"[ \t]+\^[A-Za-z0-9-]+[ \t]*$")
# A location without a link: `(Location 599)`, `(Time 0:10:20)` (the linked forms and `(Page N)`
# are what Block.location() knows).
_PLAIN_LOCATION = re.compile(r"[ \t]*(\((?:Location|Time|Page)[\u00a0 ][^()\n]+\))$")
_HIGHLIGHT_KINDS = frozenset({"bullet", "list_item"})
# The reverse of syncd.notes.render.logseq_escape: a backslash syncd put before what would
# start a Logseq construct at the start of a line.
_UNESCAPE_DASH = re.compile(r"^(\s*)\\-")
_UNESCAPE = (
    re.compile(r"^(\s*)\\(#+(?:\s|$))"),
    re.compile(r"^(\s*[^\s:]+:)\\(:(?:\s|$))"),
    re.compile(r"^(\s*)\\(:[^\s:]+:\s*)$"),
    re.compile(r"^(\s*)\\(\$\$|#\+|\\begin\{|<[A-Za-z!/?])"),
    re.compile(r"^(\s*)\\(```|~~~)"),
)


@dataclass(frozen=True, slots=True)
class BlockFields:
    """A highlight block read as Readwise fields (plus the location link, never sent)."""

    text: str
    note: str
    tags: tuple[str, ...]
    location: str = ""

    def value(self, name: Field) -> str:
        return " ".join(f"[[{t}]]" for t in self.tags) if name == "tags" else getattr(self, name)


@dataclass(frozen=True, slots=True)
class Change:
    """One field to send: `value` for note and text; `added` / `removed` tag names for tags."""

    highlight_id: int
    field: Field
    value: str = ""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """Both the user and Readwise changed this field since syncd last wrote the block."""

    highlight_id: int
    field: Field
    mine: str
    upstream: str


@dataclass(frozen=True, slots=True)
class NotSent:
    """A change that is never sent, and why (shown by `syncd status`)."""

    highlight_id: int | None
    reason: str
    field: Field | None = None
    mine: str = ""


@dataclass(slots=True)
class HighlightDiff:
    changes: list[Change] = field(default_factory=list)
    conflicts: list[FieldConflict] = field(default_factory=list)
    not_sent: list[NotSent] = field(default_factory=list)


# --- reading a block ----------------------------------------------------------------------------


def block_fields(fmt: Format, block_text: str) -> BlockFields | None:
    """The fields of the first highlight block in `block_text`; None if it holds none."""
    page = parse(fmt, block_text)
    head = next((b for b in page.walk() if b.kind in _HIGHLIGHT_KINDS), None)
    if head is None:
        return None
    text, location = _highlight_text(head, fmt)
    note = ""
    tags: tuple[str, ...] = ()
    child_re = _LOGSEQ_CHILD if fmt == "logseq" else _OBSIDIAN_CHILD
    seen_note = seen_tags = False
    children = _obsidian_continuation(head)[1] if fmt == "obsidian" else head.children
    for child in children:
        content = _unescape(child.content) if fmt == "logseq" else child.content
        match = child_re.match(content)
        if match is None:
            continue
        if match[1] == "Tags" and not seen_tags:
            seen_tags = True
            tags = parse_tags(content[match.end() :])
        elif match[1] == "Note" and not seen_note:
            seen_note = True
            note = _obsidian_note(child) if fmt == "obsidian" else content[match.end() :]
    return BlockFields(text=text.strip(), note=note.strip(), tags=tags, location=location)


def parse_tags(line: str) -> tuple[str, ...]:
    """Tag names from a Tags line: `[[a b]]`, `#[[a b]]`, `#a`; in order, each once."""
    names: list[str] = []
    for match in _TAG.finditer(line):
        name = (match["long"] or match["short"] or "").strip()
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _highlight_text(block: Block, fmt: Format) -> tuple[str, str]:
    """(text, location link) of a highlight block: without id lines, block id and link."""
    lines = [line for line in block.content.split("\n") if not ID_LINE.match(line)]
    if fmt == "obsidian":
        lines += _obsidian_continuation(block)[0]
    content = "\n".join(lines).rstrip()
    content = _BLOCK_ID_TAIL.sub("", content)
    location = Block("raw", [content]).location()
    link = ""
    if location is not None and content.endswith(location.text):
        link = location.text.replace("\u00a0", " ")
        content = content[: -len(location.text)].rstrip()
    else:
        plain = _PLAIN_LOCATION.search(content)
        if plain is not None:
            link = plain[1].replace("\u00a0", " ")
            content = content[: plain.start()].rstrip()
    return (_unescape(content) if fmt == "logseq" else content), link


def _obsidian_continuation(block: Block) -> tuple[list[str], list[Block]]:
    """Lines of the highlight's own text that parse as items of their own, and the blocks
    nested under the highlight once those are set apart. syncd indents a highlight's later
    lines by two spaces, so one starting with `- ` becomes a child item at exactly that indent;
    the Tags/Note items (four spaces) then nest under it."""
    width = len(block.indent) + 2
    lines: list[str] = []
    children = list(block.children)
    while children:
        child = children[0]
        if child.indent != block.indent + "  " or _OBSIDIAN_CHILD.match(child.content):
            break
        lines += [line_body(line)[width:] for line in child.lines]
        children = list(child.children) + children[1:]
    return lines, children


def _obsidian_note(child: Block) -> str:
    """The whole note: the item's lines and any it nests (a note line starting with `- ` parses
    as an item of its own), continuation indent removed."""
    lines = [line_body(line) for b in child.walk() for line in b.lines]
    first = lines[0][len(child.indent) + len(child.marker) :]
    match = _OBSIDIAN_CHILD.match(first)
    first = first[match.end() :] if match else first
    width = len(child.indent) + len(child.marker)
    rest = [line[width:] if line[:width].isspace() else line.lstrip() for line in lines[1:]]
    return "\n".join(line for line in [first, *rest] if line.strip())


def _unescape(content: str) -> str:
    lines = content.split("\n")
    out: list[str] = []
    for index, line in enumerate(lines):
        if index > 0:
            line = _UNESCAPE_DASH.sub(r"\1-", line)
        for pattern in _UNESCAPE:
            line = pattern.sub(r"\1\2", line)
        out.append(line)
    return "\n".join(out)


# --- comparing ----------------------------------------------------------------------------------


def diff_highlight(
    highlight_id: int,
    *,
    fmt: Format,
    base: str,
    mine: str,
    upstream: str | None,
    enabled: Iterable[Field],
    upstream_text: str | None = None,
) -> HighlightDiff:
    """The changes to send for one highlight (see the module docstring for the rules).

    `base`: the block syncd last wrote; `mine`: the block in the page now; `upstream`: syncd's
    render of the highlight from Readwise's current data (None: deleted or discarded there);
    `upstream_text`: Readwise's raw text, to refuse text fixes the page cannot carry exactly.
    """
    out = HighlightDiff()
    wanted = frozenset(enabled)
    if not wanted:
        return out
    before, now = block_fields(fmt, base), block_fields(fmt, mine)
    if before is None or now is None or before == now:
        return out
    if upstream is None:
        out.not_sent.append(NotSent(highlight_id, "deleted or discarded in Readwise"))
        return out
    theirs = block_fields(fmt, upstream)
    if theirs is None:
        return out
    for name in ("note", "text"):
        if name not in wanted:
            continue
        _scalar(out, highlight_id, name, before, now, theirs, upstream_text)
    if "tags" in wanted:
        _tags(out, highlight_id, before, now, theirs)
    return out


def _scalar(
    out: HighlightDiff,
    highlight_id: int,
    name: Literal["note", "text"],
    before: BlockFields,
    now: BlockFields,
    theirs: BlockFields,
    upstream_text: str | None,
) -> None:
    base_value, mine, upstream = before.value(name), now.value(name), theirs.value(name)
    if mine in (base_value, upstream):
        return
    if not mine:
        reason = f"{name} deleted in the vault: deletions are never sent"
        out.not_sent.append(NotSent(highlight_id, reason, name))
        return
    if upstream != base_value:
        out.conflicts.append(FieldConflict(highlight_id, name, mine, upstream))
        return
    if name == "text" and upstream_text is not None and _lossy(upstream_text):
        reason = (
            "the highlight has blank lines or line breaks the page does not show: fix its text"
            " in Readwise"
        )
        out.not_sent.append(NotSent(highlight_id, reason, name, mine))
        return
    out.changes.append(Change(highlight_id, name, value=mine))


def _tags(
    out: HighlightDiff,
    highlight_id: int,
    before: BlockFields,
    now: BlockFields,
    theirs: BlockFields,
) -> None:
    base, mine, upstream = set(before.tags), set(now.tags), set(theirs.tags)
    if mine in (base, upstream):
        return
    if upstream != base:
        out.conflicts.append(
            FieldConflict(highlight_id, "tags", now.value("tags"), theirs.value("tags"))
        )
        return
    added = tuple(t for t in now.tags if t not in upstream)
    removed = tuple(t for t in theirs.tags if t not in mine)
    if added or removed:
        out.changes.append(Change(highlight_id, "tags", added=added, removed=removed))


def _lossy(text: str) -> bool:
    """True when the page cannot show `text` exactly (Readwise's export drops blank lines)."""
    normal = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return any(not line.strip() for line in normal.split("\n"))


def same_fields(fmt: Format, mine: str, upstream: str) -> bool:
    """The user's block and syncd's render say the same thing (text, note, tags, location):
    what a pull brings back after a push, or both sides making the same edit."""
    a, b = block_fields(fmt, mine), block_fields(fmt, upstream)
    if a is None or b is None:
        return False
    # Tags in any order: Readwise keeps them in the order they were added, not as typed.
    return replace(a, tags=tuple(sorted(a.tags))) == replace(b, tags=tuple(sorted(b.tags)))
