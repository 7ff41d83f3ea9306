"""Stable block ids: how syncd marks a highlight's block so references to it survive syncs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Literal

from syncd.notes.page import split_lines

ID_LINE = re.compile(r"^\s*id:: \S+\s*$")
READWISE_NAMESPACE = uuid.UUID("9a3c1c3e-6a51-5b1e-9f3d-2f1b7c0e4a11")


def stable_block_id(fmt: Literal["logseq", "obsidian"], highlight_id: int) -> str:
    """The id syncd writes with `block_ids = true`: Obsidian `^rw<id>` (as Readwise's own
    templates do), Logseq a UUIDv5 of the highlight id."""
    if fmt == "obsidian":
        return f"rw{highlight_id}"
    return str(uuid.uuid5(READWISE_NAMESPACE, f"readwise-highlight:{highlight_id}"))


def with_id_lines(block: str, id_lines: Sequence[str]) -> str:
    """`block` carrying exactly these `id::` lines, right after its first line (where Logseq
    keeps block properties); any id line of its own is dropped so no id is ever doubled."""
    if not id_lines:
        return block
    lines = [line for line in split_lines(block) if not ID_LINE.match(line)]
    ids = [line if line.endswith("\n") else line + "\n" for line in id_lines]
    return "".join([lines[0], *ids, *lines[1:]])
