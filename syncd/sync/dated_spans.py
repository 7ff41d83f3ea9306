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
from dataclasses import dataclass
from datetime import timedelta

# 400 days and 13h07 later: every date and time field changes (400 = 365 + 35 days moves the
# day of the month by 3 to 7 and the weekday by one or two; 13 hours swaps AM and PM).
PROBE_SHIFT = timedelta(days=400, hours=13, minutes=7)

_TOKEN = re.compile(r"\w+|\W", re.UNICODE)


@dataclass(frozen=True, slots=True)
class LinePattern:
    """Literal parts with a gap between each two (at least `gaps[i]` characters of anything):
    a pattern matched without compiling a regular expression per highlight."""

    parts: tuple[str, ...]
    gaps: tuple[int, ...] = ()

    def fullmatch(self, line: str) -> bool:
        if not self.gaps:
            return line == self.parts[0]
        first, last = self.parts[0], self.parts[-1]
        limit = len(line) - len(last)
        if not line.startswith(first) or not line.endswith(last) or limit < len(first):
            return False
        position = len(first)
        for gap, part in zip(self.gaps, self.parts[1:-1], strict=False):
            found = line.find(part, position + gap, limit)
            if found < 0:
                return False
            position = found + len(part)  # leftmost is right: the next gap takes any text
        return limit - position >= self.gaps[-1]


def line_pattern(rendered: str, probe: str) -> LinePattern:
    """A line of the render, with the words that differ from the probe's matching any words."""
    ours, theirs = _TOKEN.findall(rendered), _TOKEN.findall(probe)
    # The words around the date are the same in both: only the middle needs a diff (a long
    # highlight would otherwise cost a quadratic diff of all its words).
    head = 0
    while head < min(len(ours), len(theirs)) and ours[head] == theirs[head]:
        head += 1
    tail = 0
    while tail < min(len(ours), len(theirs)) - head and ours[-1 - tail] == theirs[-1 - tail]:
        tail += 1
    middle, other = ours[head : len(ours) - tail], theirs[head : len(theirs) - tail]
    parts, gaps = ["".join(ours[:head])], []
    matcher = difflib.SequenceMatcher(None, middle, other, autojunk=False)
    for tag, start, end, _other_start, _other_end in matcher.get_opcodes():
        if tag == "equal":
            parts[-1] += "".join(middle[start:end])
        else:
            gaps.append(1 if end > start else 0)
            parts.append("")
    parts[-1] += "".join(ours[len(ours) - tail :])
    return LinePattern(tuple(parts), tuple(gaps))


def common_head(rendered: str, probe: str) -> str:
    """What the two renders of a line share from its start: text the page must have there."""
    length = 0
    for ours, theirs in zip(rendered, probe, strict=False):
        if ours != theirs:
            break
        length += 1
    return rendered[:length]


def span_patterns(rendered: Sequence[str], probe: Sequence[str]) -> list[LinePattern] | None:
    """One pattern per line (each to be full-matched), or None when the two renders do not
    differ at all or not line for line (then the date is not what changed)."""
    if len(rendered) != len(probe) or list(rendered) == list(probe):
        return None
    return [
        LinePattern((line,)) if line == other else line_pattern(line, other)
        for line, other in zip(rendered, probe, strict=True)
    ]
