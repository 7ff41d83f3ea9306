"""The echo of a push: the pull after it brings the user's own value back from Readwise."""

from __future__ import annotations

from collections.abc import Mapping

from syncd.sync.merge import (
    BlockRecord,
    Format,
    MergeResult,
    Ours,
    SpanMatcher,
    find_units,
    parse,
    render_hash,
)
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


def settle_span_echoes(
    fmt: Format, theirs: str, blocks: Mapping[int, BlockRecord], ours: Ours
) -> dict[int, BlockRecord]:
    """The same, before a merge that tracks spans (a user's highlight template, or heading
    highlights: syncd.sync.merge.SpanMatcher). There a Note or Tags line the user added under a
    highlight is the user's own child, not part of the highlight, and a highlight found only by
    its id, link or words is a single line: the echo would be merged in as an upstream change
    (the note twice) or called a conflict. A highlight whose lines with the children under them
    say what Readwise's render says gets those lines as its record: the merge then finds it
    untouched and up to date."""
    settled = dict(blocks)
    matcher = SpanMatcher(find_units(parse(fmt, theirs), fmt)[0], fmt)
    due = {
        hid: record
        for hid, record in blocks.items()
        if hid in ours.blocks and render_hash(ours.blocks[hid]) != record.render
    }
    found = {hid: matcher.exact(record.text) for hid, record in blocks.items()}
    for hid, record in due.items():
        unit = found.get(hid) or matcher.fuzzy(
            record.text, ours.block_ids.get(hid), ours.texts.get(hid, "")
        )
        if unit is None or unit.subtree_text == record.text:
            continue
        if same_fields(fmt, unit.subtree_text, ours.blocks[hid]):
            settled[hid] = BlockRecord(unit.subtree_text, render_hash(ours.blocks[hid]))
    return settled
