"""The echo of a push: the pull after it brings the user's own value back from Readwise."""

from __future__ import annotations

from collections.abc import Mapping

from syncd.sync.merge import (
    BlockRecord,
    Format,
    MergeResult,
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
    fmt: Format, theirs: str, blocks: Mapping[int, BlockRecord], upstream: Mapping[int, str]
) -> dict[int, BlockRecord]:
    """The same, before a merge that tracks spans (a user's highlight template, or heading
    highlights: syncd.sync.merge.SpanMatcher). There a Note or Tags line the user added under a
    highlight is the user's own child, not part of the highlight, so the echo would be merged
    as an upstream change and the page would show the note twice. A highlight found exactly
    whose lines with the children under them say what Readwise's render says gets those lines
    as its record: the merge then finds it untouched and up to date."""
    settled = dict(blocks)
    matcher = SpanMatcher(find_units(parse(fmt, theirs), fmt)[0], fmt)
    for hid, record in blocks.items():
        render = upstream.get(hid)
        if render is None or render_hash(render) == record.render:
            continue
        unit = matcher.exact(record.text)
        if unit is None or not unit.has_user_children:
            continue
        if same_fields(fmt, unit.subtree_text, render):
            settled[hid] = BlockRecord(unit.subtree_text, render_hash(render))
    return settled
