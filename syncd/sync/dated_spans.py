"""Recognising a highlight whose template prints the sync date (`#[[{{date}}]]`,
`**Date**: {{date|date('Y-m-d')}}`) in a page written on another day.

When syncd adopts a page Readwise wrote with the user's templates, it renders each highlight for
the day of adoption; Readwise rendered it for the day of its own sync. The two renders differ
only where the template printed that date or time. Rendering the highlight a second time for a
far-off moment (`PROBE_SHIFT` later: another year, month, day, weekday, hour, minute and half of
the day) shows exactly those places: the words that differ between the two renders may be any
words in the page, everything else must be there as rendered.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import timedelta

# 400 days and 13h07 later: every date and time field changes (400 = 365 + 35 days moves the
# day of the month by 3 to 7 and the weekday by one or two; 13 hours swaps AM and PM).
PROBE_SHIFT = timedelta(days=400, hours=13, minutes=7)

_TOKEN = re.compile(r"\w+|\W", re.UNICODE)


def line_pattern(rendered: str, probe: str) -> re.Pattern[str]:
    """A line of the render, with the words that differ from the probe's matching any words."""
    ours, theirs = _TOKEN.findall(rendered), _TOKEN.findall(probe)
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    parts: list[str] = []
    for tag, start, end, _other_start, _other_end in matcher.get_opcodes():
        if tag == "equal":
            parts.append(re.escape("".join(ours[start:end])))
        else:
            parts.append(".+?" if end > start else ".*?")
    return re.compile("".join(parts))


def common_head(rendered: str, probe: str) -> str:
    """What the two renders of a line share from its start: text the page must have there."""
    length = 0
    for ours, theirs in zip(rendered, probe, strict=False):
        if ours != theirs:
            break
        length += 1
    return rendered[:length]


def span_patterns(rendered: Sequence[str], probe: Sequence[str]) -> list[re.Pattern[str]] | None:
    """One pattern per line (each to be full-matched), or None when the two renders do not
    differ at all or not line for line (then the date is not what changed)."""
    if len(rendered) != len(probe) or list(rendered) == list(probe):
        return None
    return [
        re.compile(re.escape(line)) if line == other else line_pattern(line, other)
        for line, other in zip(rendered, probe, strict=True)
    ]
