"""The echo of a push: the pull after it brings the user's own value back from Readwise."""

from __future__ import annotations

from syncd.sync.merge import BlockRecord, Format, MergeResult, render_hash
from syncd.writeback.diff import same_fields


def settle_echoes(fmt: Format, merged: MergeResult) -> MergeResult:
    """A block the user edited whose every field Readwise now has too (the pull after a push,
    or both sides making the same edit) is no conflict: its record becomes the user's block with
    Readwise's render, so the page is not rewritten and the next pass sees nothing to do."""
    kept = []
    for conflict in merged.conflicts:
        if same_fields(fmt, conflict.theirs, conflict.upstream):
            text = conflict.theirs.rstrip("\n") + "\n"
            merged.blocks[conflict.highlight_id] = BlockRecord(text, render_hash(conflict.upstream))
        else:
            kept.append(conflict)
    merged.conflicts = kept
    return merged
