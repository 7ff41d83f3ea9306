"""syncd.sync.dated_spans: a rendered line matches the same line printed on another day, and
nothing else."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from syncd.notes.dates import format_date_fns
from syncd.notes.page import split_lines
from syncd.notes.render import date_filter
from syncd.sync.dated_spans import (
    PROBE_SHIFT,
    LinePattern,
    common_head,
    line_pattern,
    span_patterns,
)
from syncd.sync.merge import SpanMatcher

NOW = datetime(2024, 3, 5, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "fmt", ["yyyy-MM-dd", "MMM do, yyyy", "EEEE, dd-MM-yyyy", "yyyy\\-MM\\-dd", "do MMMM yyyy"]
)
@pytest.mark.parametrize(
    "written", [datetime(2023, 7, 24, 1, 2, tzinfo=UTC), datetime(2021, 12, 31, 23, 59, tzinfo=UTC)]
)
def test_a_journal_date_of_any_day_matches(fmt: str, written: datetime) -> None:
    line = "- text ([View Highlight](https://x.test/1)) #Highlight #[[{}]]"
    pattern = line_pattern(
        line.format(format_date_fns(NOW, fmt)), line.format(format_date_fns(NOW + PROBE_SHIFT, fmt))
    )
    assert pattern.fullmatch(line.format(format_date_fns(written, fmt)))


def test_a_header_with_date_and_time_matches_another_sync() -> None:
    def header(moment: datetime) -> str:
        day, clock = date_filter(moment, "F j, Y"), date_filter(moment, "g:i A")
        return f"# New highlights added {day} at {clock}"

    pattern = line_pattern(header(NOW), header(NOW + PROBE_SHIFT))
    assert pattern.fullmatch("# New highlights added June 30, 2024 at 9:43 PM")
    assert not pattern.fullmatch("# Old highlights added June 30, 2024 at 9:43 PM")


def test_the_words_that_did_not_change_must_be_there() -> None:
    pattern = line_pattern("**Date**: 2024-03-05 by Ann", "**Date**: 2025-04-09 by Ann")
    assert pattern.fullmatch("**Date**: 2023-01-10 by Ann")
    assert not pattern.fullmatch("**Date**: 2023-01-10 by Bob")
    assert not pattern.fullmatch("**Note**: 2023-01-10 by Ann")


def test_renders_that_do_not_differ_or_not_line_for_line_give_no_patterns() -> None:
    assert span_patterns(["a", "b"], ["a", "b"]) is None
    assert span_patterns(["a 2024"], ["a 2025", "more"]) is None
    patterns = span_patterns(["same", "on 2024"], ["same", "on 2025"])
    assert patterns is not None
    assert patterns[0].fullmatch("same") and not patterns[0].fullmatch("sam.")
    assert patterns[1].fullmatch("on 1999")


def test_common_head_is_what_both_renders_start_with() -> None:
    assert common_head("- text #[[2024-03-05]]", "- text #[[2025-04-09]]") == "- text #[[202"
    assert common_head("abc", "abcdef") == "abc" and common_head("x", "y") == ""


PAGE = (
    "title:: T\n\n"
    "- Another highlight of the same page, synced that day #Highlight #[[2023-07-24]]\n"
    "- Merge policies decide who wins when two contexts save #Highlight #[[2023-07-24]]\n"
    "- 2023-07-24: a line that starts with its date\n"
)


@pytest.mark.parametrize(
    ("rendered", "probe", "found"),
    [
        (
            "- Merge policies decide who wins when two contexts save #Highlight #[[2024-03-05]]",
            "- Merge policies decide who wins when two contexts save #Highlight #[[2025-04-09]]",
            "- Merge policies decide who wins when two contexts save #Highlight #[[2023-07-24]]",
        ),
        (  # nothing long in common at the start: every line is a candidate
            "- 2024-03-05: a line that starts with its date",
            "- 2025-04-09: a line that starts with its date",
            "- 2023-07-24: a line that starts with its date",
        ),
    ],
)
def test_the_span_matcher_finds_the_highlight_as_written_on_its_day(
    rendered: str, probe: str, found: str
) -> None:
    matcher = SpanMatcher(split_lines(PAGE), "logseq")
    unit = matcher.dated(rendered + "\n", probe + "\n")
    assert unit is not None and unit.text == found + "\n"
    assert matcher.dated(rendered + "\n", probe + "\n") is None  # each line is taken once
    assert matcher.exact(rendered + "\n") is None


@pytest.mark.parametrize(
    ("line", "matches"),
    [
        ("on 2023 at noon", True),
        ("on  at noon", False),  # a gap of at least one character
        ("on 2023 atnoon", False),
        ("on 2023 at noon!", False),
        ("xon 2023 at noon", False),
        ("on 2023 at 2023 at noon", True),  # a gap may hold the literal that follows it
    ],
)
def test_a_line_pattern_matches_like_the_regular_expression_it_stands_for(
    line: str, matches: bool
) -> None:
    pattern = LinePattern(("on ", " at ", "noon"), (1, 0))
    assert pattern.fullmatch(line) is matches
    assert (re.fullmatch(r"on .+? at .*?noon", line) is not None) is matches
