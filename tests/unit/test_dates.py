"""Readwise's date formats: Django/PHP `date`, date-fns journal titles, the 12-hour clock, and
the journal format read from a Logseq graph's config.edn."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from syncd.errors import VaultError
from syncd.notes.dates import (
    DEFAULT_JOURNAL_FORMAT,
    format_clock,
    format_date_fns,
    format_php_date,
    logseq_journal_format,
)

NOV_18 = datetime(2022, 11, 18, 9, 45, 7, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("F j, Y", "November 18, 2022"),
        ("Y-m-d", "2022-11-18"),
        ("y.m.d", "22.11.18"),
        ("D, l, w, z", "Fri, Friday, 5, 322"),
        ("M n m t L W", "Nov 11 11 30 False 46"),
        ("g:i A / h:i a / G:H:s", "9:45 AM / 09:45 a.m. / 9:09:07"),
        ("N", "Nov."),
        ("O P", "-0500 9:45 a.m."),
        (r"jS \o\f F", "18th of November"),
        ("U", str(int(NOV_18.timestamp()))),
        ("Q | é", "Q | é"),
    ],
)
def test_php_date_letters(fmt: str, expected: str) -> None:
    assert format_php_date(NOV_18, fmt) == expected


@pytest.mark.parametrize(
    ("day", "suffix"),
    [(1, "st"), (2, "nd"), (3, "rd"), (4, "th"), (11, "th"), (12, "th"), (13, "th"), (21, "st"),
     (22, "nd"), (23, "rd"), (31, "st")],
)  # fmt: skip
def test_ordinal_suffixes(day: int, suffix: str) -> None:
    moment = date(2023, 1, day)
    assert format_php_date(moment, "jS") == f"{day}{suffix}"
    assert format_date_fns(moment, "do") == f"{day}{suffix}"


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [(9, 45, "9:45 AM"), (0, 15, "12:15 AM"), (12, 0, "12:00 PM"), (23, 5, "11:05 PM")],
)
def test_clock(hour: int, minute: int, expected: str) -> None:
    assert format_clock(datetime(2024, 11, 20, hour, minute)) == expected


@pytest.mark.parametrize(
    ("fmt", "moment", "expected"),
    [
        ("MMM do, yyyy", datetime(2022, 11, 18), "Nov 18th, 2022"),
        ("MMM do, yyyy", datetime(2023, 2, 1), "Feb 1st, 2023"),
        ("EEEE, dd-MM-yyyy", datetime(2022, 10, 31), "Monday, 31-10-2022"),
        ("yyyy-MM-dd", datetime(2023, 1, 7), "2023-01-07"),
        ("MMMM do, yyyy", datetime(2020, 10, 1), "October 1st, 2020"),
        ("E, MM/dd/yyyy", datetime(2023, 1, 15), "Sun, 01/15/2023"),
        ("EEE, dd.MM.yy", datetime(2023, 1, 15), "Sun, 15.01.23"),
        ("yyyyMMdd", datetime(2023, 1, 15), "20230115"),
        ("yyyy年MM月dd日", datetime(2023, 1, 15), "2023年01月15日"),
        ("do 'of' MMMM", datetime(2023, 3, 2), "2nd of March"),
        ("'It''s' d M", datetime(2023, 3, 2), "It's 2 3"),
        ("''yy''", datetime(2023, 3, 2), "'23'"),
    ],
)
def test_date_fns_tokens(fmt: str, moment: datetime, expected: str) -> None:
    assert format_date_fns(moment, fmt) == expected


def test_date_fns_rejects_tokens_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="unknown token 'D'"):
        format_date_fns(datetime(2023, 1, 1), "MMM Do, yyyy")


# --- config.edn ---------------------------------------------------------------------------------


def write_config(root: Path, text: str) -> Path:
    config = root / "logseq" / "config.edn"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")
    return config


REALISTIC_CONFIG = r""";; This is the config file of Logseq
{:meta/version 1
 ;; :journal/page-title-format "yyyy-MM-dd"  <- commented out, must be ignored
 :hidden ["/node_modules" "/archive"]
 :preferred-format :markdown
 :hidden-regex #"^\.git|\d+\.bak$"
 :default-templates {:journals ""}
 :ui/show-brackets? true
 :feature/enable-journals? true
 :shortcuts {:editor/new-block "enter" :editor/new-line "shift+enter"}
 :commands [["js" "Javascript"] ["quote" "\"quoted\" ;not a comment"]]
 :macros {"poem" "Rose is $1, violet's $2"}
 :graph/config {:excluded-pages #{"secret"}}
 :file/name-format :triple-lowbar
 :journal/page-title-format "EEEE, dd-MM-yyyy" ; trailing comment
 #_ :discarded}
"""


def test_journal_format_from_a_realistic_config(tmp_path: Path) -> None:
    write_config(tmp_path, REALISTIC_CONFIG.replace("#_ :discarded", ""))
    assert logseq_journal_format(tmp_path) == "EEEE, dd-MM-yyyy"


def test_journal_format_falls_back_to_the_legacy_key(tmp_path: Path) -> None:
    write_config(tmp_path, '{:date-formatter "yyyy/MM/dd"}')
    assert logseq_journal_format(tmp_path) == "yyyy/MM/dd"


def test_current_key_wins_over_the_legacy_one(tmp_path: Path) -> None:
    write_config(tmp_path, '{:date-formatter "yyyy/MM/dd" :journal/page-title-format "yyyy-MM-dd"}')
    assert logseq_journal_format(tmp_path) == "yyyy-MM-dd"


def test_missing_config_or_key_gives_logseqs_default(tmp_path: Path) -> None:
    assert logseq_journal_format(tmp_path) == DEFAULT_JOURNAL_FORMAT == "MMM do, yyyy"
    write_config(tmp_path, "{:meta/version 1}")
    assert logseq_journal_format(tmp_path) == DEFAULT_JOURNAL_FORMAT


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{:journal/page-title-format "yyyy"', "not valid EDN"),
        ("{:a 1 #_ :b 2}", "not valid EDN"),
        ('["a"]', "expected a map"),
        ("{:journal/page-title-format 42}", "must be a non-empty string"),
        ('{:journal/page-title-format ""}', "must be a non-empty string"),
        ('{:journal/page-title-format "MMM Do"}', "unknown token 'D'"),
    ],
)
def test_bad_config_names_the_file_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    config = write_config(tmp_path, text)
    with pytest.raises(VaultError) as caught:
        logseq_journal_format(tmp_path)
    assert str(config) in str(caught.value)
    assert problem in str(caught.value)


def test_unreadable_config_is_a_vault_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    config.write_bytes(b"{:a \xff}")
    with pytest.raises(VaultError, match="cannot read"):
        logseq_journal_format(tmp_path)
