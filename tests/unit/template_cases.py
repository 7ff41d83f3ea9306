"""The custom template sets the merge tests run with (`tests/templates/merge-<name>/`), and how a
person edits a page written with one of them.

In none of these templates is a highlight one `- ` list item: Obsidian block quotes between `---`
separators with the note as a paragraph, `> [!quote]` callouts with `^rw<id>` block ids and
tags / note as sibling lines (and YAML front matter), `### text` headings with a link line;
Logseq `> text` top-level blocks with no section header and `**Tags**` / `**Note**` / `**Date**`
children, and Logseq highlights with the location as a child block under a custom header. The
unit the engine tracks is what `highlight.j2` rendered: the helpers here find it in a page by the
state store's record of it, so the tests edit exactly what a person would see as "the highlight".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from syncd.notes.blockids import ID_LINE
from syncd.notes.template_set import TemplateSet, load_template_set

Fmt = Literal["obsidian", "logseq"]
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


@dataclass(frozen=True)
class TemplateCase:
    name: str  # the folder under tests/templates/
    fmt: Fmt

    def __str__(self) -> str:
        return self.name

    def templates(self) -> TemplateSet:
        return load_template_set(self.fmt, TEMPLATES / self.name)


CASES = [
    TemplateCase("merge-obsidian-quote", "obsidian"),
    TemplateCase("merge-obsidian-callout", "obsidian"),
    TemplateCase("merge-obsidian-heading", "obsidian"),
    TemplateCase("merge-logseq-quote", "logseq"),
    TemplateCase("merge-logseq-location", "logseq"),
]
CASE_IDS = [case.name for case in CASES]


def core_lines(block: str) -> list[str]:
    """A rendered highlight's lines as they stand in a page: no blank lines at either end, no
    Logseq `id::` lines (the matcher skips those too)."""
    lines = [line for line in block.split("\n") if not ID_LINE.match(line)]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def unit_span(lines: list[str], block: str) -> tuple[int, int]:
    """Where `block`'s lines stand in `lines` (exactly once): (first index, one past the last)."""
    want = core_lines(block)
    found = [i for i in range(len(lines) - len(want) + 1) if lines[i : i + len(want)] == want]
    assert len(found) == 1, f"{block!r} found {len(found)} times"
    return found[0], found[0] + len(want)


def own_line(fmt: Fmt, text: str) -> str:
    """What a person appends at the end of a page: a paragraph / a top-level block."""
    return f"\n{text}\n" if fmt == "obsidian" else f"\n- {text}"


def insert_after_unit(fmt: Fmt, page: str, block: str, text: str, *, child: bool) -> str:
    """The person's own line right after a highlight's unit: Obsidian a paragraph of its own,
    Logseq a block at the highlight's depth (or one deeper, `child`: under it)."""
    lines = page.split("\n")
    start, end = unit_span(lines, block)
    if fmt == "obsidian":
        lines[end:end] = ["", text]
    else:
        first = lines[start]
        indent = first[: len(first) - len(first.lstrip("\t"))]
        lines[end:end] = [indent + ("\t" if child else "") + "- " + text]
    return "\n".join(lines)


def remove_unit(page: str, block: str) -> str:
    """The page without the highlight's lines (what a person deleting it removes)."""
    lines = page.split("\n")
    start, end = unit_span(lines, block)
    del lines[start:end]
    return "\n".join(lines)
