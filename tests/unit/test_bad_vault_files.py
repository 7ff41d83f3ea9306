"""Odd note contents syncd finds at a book's page between passes: not UTF-8, binary, 50 MB, a
200,000-space run, CRLF line endings, a byte order mark, Logseq indentation mixing tabs and
spaces, front matter that is not YAML, a symlink out of the vault. Each is either handled (the
new highlight arrives after the user's text, every byte of which stays in place) or reported and
skipped with a message naming the book and the problem; either way the rest of the pass goes on.

(File-system oddities, such as unreadable files, pipes and symlinked folders, are in
test_bad_vault_inputs_extra.py.)
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Literal

import pytest

from tests.harness import Harness
from tests.mldoc import outline

Format = Literal["obsidian", "logseq"]
FORMATS = ["obsidian", "logseq"]
BOM = b"\xef\xbb\xbf"


def _two_books(tmp_path: Path, fmt: Format) -> Harness:
    """Two synced books, then one new highlight upstream for each (not yet synced)."""
    h = Harness(tmp_path, fmt)
    h.source.add_book(1, "Broken Book", ["Alpha text of book one", "Second old highlight here"])
    h.source.add_book(2, "Fine Book", ["Bravo text of book two"])
    h.sync()
    h.source.add_highlight(1, "New in the broken book")
    h.source.add_highlight(2, "New in the fine book")
    return h


def _with_user_lines(page: bytes, fmt: Format, lines: list[bytes]) -> bytes:
    """The page with the user's own top-level blocks after it, ending as each app saves pages
    (Obsidian: a final newline; Logseq: none)."""
    body = b"".join(b"- " + line + b"\n" for line in lines)
    if fmt == "logseq":
        return page + b"\n" + body.rstrip(b"\n")
    return page + body


class _Blocked(BaseException):
    """Raised by the watchdog alarm; not an Exception, so syncd's per-book isolation (which
    catches Exception) cannot swallow it."""


@contextmanager
def watchdog(seconds: float, what: str) -> Iterator[None]:
    """Fail, instead of hanging the test run, if the block takes longer than `seconds`: the alarm
    interrupts a blocked open(2) or a long regex search, and its handler raises."""

    def ring(_signum: int, _frame: FrameType | None) -> None:
        raise _Blocked

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Blocked:
        pytest.fail(f"{what}: not done after {seconds} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _assert_kept_then_added(after: bytes, before: bytes, new_text: str) -> None:
    """Every byte the user had is still there, first, unchanged; the new highlight comes after
    it, once. (Only whitespace at the very end may go: Readwise's plugin appends a new section
    to `text.rstrip()`.)"""
    kept = before.rstrip()
    assert after[: len(kept)] == kept, "the user's text was changed"
    tail = after[len(kept) :]
    assert tail.count(new_text.encode()) == 1, tail[:300]
    assert after.count(new_text.encode()) == 1


# --- not text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not utf-8 \x80\x81", bytes(range(256)) * 4],
    ids=["invalid-utf8", "binary"],
)
def test_unreadable_note_is_skipped_and_kept_byte_for_byte(
    tmp_path: Path, fmt: Format, content: bytes
) -> None:
    h = _two_books(tmp_path, fmt)
    h.path(1).write_bytes(content)
    summary = h.sync()
    assert h.path(1).read_bytes() == content
    assert summary.failed == 1
    assert any("book 1" in message and "UTF-8" in message for _kind, message in summary.errors)
    assert "New in the fine book" in h.read(2)
    # Fixed by the user: the next pass takes the book up again.
    h.path(1).write_text("- my rescued note\n", encoding="utf-8")
    again = h.sync()
    assert again.failed == 0
    assert h.read(1).startswith("- my rescued note")


# --- size --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_50_mb_note_is_merged_without_losing_a_byte(tmp_path: Path, fmt: Format) -> None:
    """The user pasted a 50 MB scan, inlined as a base64 data URI (what several editors do with
    pasted images), between two lines of their own."""
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    image = b"iVBORw0KGgoAAAANSUhEUgAA" + b"QUJDREVGR0hJSktMTU5PUFFS" * (50 * 2**20 // 24)
    before = _with_user_lines(
        note.read_bytes(),
        fmt,
        [b"My scan of page 12:", b"![scan](data:image/png;base64," + image + b")", b"last words"],
    )
    del image
    assert len(before) > 50 * 2**20
    note.write_bytes(before)

    summary = h.sync()

    assert (summary.failed, summary.errors) == (0, [])
    _assert_kept_then_added(note.read_bytes(), before, "New in the broken book")
    assert "New in the fine book" in h.read(2)
    assert len(h.files_on_disk()) == 2  # no temp file left beside the big note


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_long_run_of_spaces_does_not_stall_the_pass(tmp_path: Path, fmt: Format) -> None:
    """A table pasted from a PDF: one list item holding a run of 200,000 spaces (200 kB). Reading
    the page must take time in proportion to its size, not to its square."""
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    before = _with_user_lines(note.read_bytes(), fmt, [b"Name" + b" " * 200_000 + b"| Total"])
    note.write_bytes(before)

    with watchdog(3, "a pass over a 200 kB note"):
        summary = h.sync()

    assert (summary.failed, summary.errors) == (0, [])
    _assert_kept_then_added(note.read_bytes(), before, "New in the broken book")
    assert "New in the fine book" in h.read(2)


# --- line endings and byte order mark ----------------------------------------------------------


def _crlf(text: bytes) -> bytes:
    return text.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("fmt", FORMATS)
def test_crlf_note_gets_its_highlight_in_its_own_line_ending(tmp_path: Path, fmt: Format) -> None:
    """The user's editor saved the whole page with CRLF. The careful user expects: their text
    untouched, the new highlight after it, and one line ending throughout (a file mixing LF into
    CRLF shows as changed on every line in some editors and in git with autocrlf)."""
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    before = _crlf(_with_user_lines(note.read_bytes(), fmt, [b"my own thought", b"and another"]))
    note.write_bytes(before)

    summary = h.sync()

    after = note.read_bytes()
    assert (summary.failed, summary.errors) == (0, [])
    _assert_kept_then_added(after, before, "New in the broken book")
    assert "New in the fine book" in h.read(2)
    assert after.count(b"\n") == after.count(b"\r\n"), f"LF mixed into a CRLF file: {after!r}"

    # Later passes: another new highlight, still once each and still CRLF throughout.
    h.source.add_highlight(1, "Third one, later")
    assert h.sync().failed == 0
    later = note.read_bytes()
    _assert_kept_then_added(later, after, "Third one, later")
    assert later.count(b"New in the broken book") == 1
    assert later.count(b"\n") == later.count(b"\r\n"), f"LF mixed into a CRLF file: {later!r}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_crlf_note_takes_upstream_edits_like_an_lf_note(tmp_path: Path, fmt: Format) -> None:
    """A CRLF page whose lines the user did not edit gets Readwise's changes, as the same page
    with LF would: a changed author (page metadata) and a highlight edited in Readwise."""
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    before = _crlf(_with_user_lines(note.read_bytes(), fmt, [b"my own thought"]))
    note.write_bytes(before)
    h.source.edit_book(1, author="Bea Newauthor")
    h.source.edit(h.source.live_ids(1)[0], text="Alpha text, corrected in Readwise")

    summary = h.sync()

    text = note.read_bytes().decode("utf-8")
    assert (summary.failed, summary.errors, summary.conflicts) == (0, [], 0)
    assert "Bea Newauthor" in text and "Ann Author" not in text, text
    assert "Alpha text, corrected in Readwise" in text and "Alpha text of book one" not in text
    assert "my own thought\r\n" in text or text.endswith("my own thought")
    assert text.count("\n") == text.count("\r\n"), f"LF mixed into a CRLF file: {text!r}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_bom_note_keeps_its_one_bom_and_gets_its_highlight(tmp_path: Path, fmt: Format) -> None:
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    before = BOM + _with_user_lines(note.read_bytes(), fmt, [b"my own thought"])
    note.write_bytes(before)

    summary = h.sync()

    after = note.read_bytes()
    assert (summary.failed, summary.errors) == (0, [])
    _assert_kept_then_added(after, before, "New in the broken book")
    assert after.startswith(BOM) and after.count(BOM) == 1
    assert "New in the fine book" in h.read(2)

    # A later upstream edit of a highlight still lands, in place, once.
    h.source.edit(h.source.live_ids(1)[0], text="Alpha text, corrected in Readwise")
    assert h.sync().failed == 0
    text = note.read_bytes()
    assert text.startswith(BOM) and text.count(BOM) == 1
    assert text.count(b"Alpha text, corrected in Readwise") == 1
    assert b"Alpha text of book one" not in text
    assert text.count(b"New in the broken book") == 1


# --- Logseq indentation ------------------------------------------------------------------------


@pytest.mark.mldoc
def test_logseq_page_indented_with_tabs_and_spaces(tmp_path: Path) -> None:
    """The user re-indented one highlight with two spaces and nested blocks of their own with
    spaces, tabs, and both: nothing of theirs moves, no highlight is written twice, and Logseq
    reads the new section as a block of its own, not as part of the user's."""
    h = _two_books(tmp_path, "logseq")
    note = h.path(1)
    page = note.read_bytes()
    assert b"\n\t- Second old highlight here" in page
    page = page.replace(b"\n\t- Second old highlight here", b"\n  - Second old highlight here")
    before = page + (
        b"\n- my block\n  - child with spaces\n\t- child with a tab\n  \t- grandchild, both"
    )
    note.write_bytes(before)

    summary = h.sync()

    after = note.read_bytes()
    assert (summary.failed, summary.errors) == (0, [])
    _assert_kept_then_added(after, before, "New in the broken book")
    assert "New in the fine book" in h.read(2)
    blocks = outline([note])[0]["blocks"]
    mine = next(b for b in blocks if b["content"] == "my block")
    assert [c["content"] for c in mine["children"]] == ["child with spaces", "child with a tab"]
    assert [c["content"] for c in mine["children"][1]["children"]] == ["grandchild, both"]
    assert blocks[-1]["content"].startswith("New highlights added")
    assert blocks[-1]["children"][0]["content"].startswith("New in the broken book")

    # Readwise edits the re-indented highlight: the user's version is kept (a conflict, not a
    # second copy), and a later new highlight still arrives once.
    second = h.source.live_ids(1)[1]
    h.source.edit(second, text="Second old highlight here, edited in Readwise")
    h.source.add_highlight(1, "Third one, later")
    again = h.sync()
    text = note.read_bytes()
    assert (again.failed, again.conflicts) == (0, 1)
    assert text.startswith(before.rstrip())
    assert text.count(b"Second old highlight here") == 1
    assert b"edited in Readwise" not in text
    assert text.count(b"Third one, later") == 1


# --- front matter ------------------------------------------------------------------------------

BAD_FRONT_MATTER = {
    "unclosed-flow-sequence": b"---\ntitle: [unclosed\n---\n",
    "tab-indented-garbage": b"---\n: : :\n\t- not: [yaml\n---\n",
    "never-closed": b"---\ntitle: [unclosed\naliases: {\n",
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("front", BAD_FRONT_MATTER.values(), ids=BAD_FRONT_MATTER.keys())
def test_front_matter_that_is_not_yaml_is_kept_and_the_page_synced(
    tmp_path: Path, fmt: Format, front: bytes
) -> None:
    h = _two_books(tmp_path, fmt)
    note = h.path(1)
    before = front + _with_user_lines(note.read_bytes(), fmt, [b"my own thought"])
    note.write_bytes(before)

    summary = h.sync()

    after = note.read_bytes()
    assert (summary.failed, summary.errors) == (0, [])
    _assert_kept_then_added(after, before, "New in the broken book")
    assert "New in the fine book" in h.read(2)

    # The page is still read right: an upstream edit replaces its highlight, once.
    h.source.edit(h.source.live_ids(1)[0], text="Alpha text, corrected in Readwise")
    assert h.sync().failed == 0
    text = note.read_bytes()
    assert text.startswith(front)
    assert text.count(b"Alpha text, corrected in Readwise") == 1
    assert b"Alpha text of book one" not in text
    assert text.count(b"New in the broken book") == 1


# --- symlinks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_symlink_out_of_the_vault_is_never_written_through(tmp_path: Path, fmt: Format) -> None:
    h = _two_books(tmp_path, fmt)
    outside = tmp_path / "outside.md"
    outside.write_text("not yours\n", encoding="utf-8")
    note = h.path(1)
    note.unlink()
    os.symlink(outside, note)
    summary = h.sync()
    assert outside.read_text(encoding="utf-8") == "not yours\n"
    assert note.is_symlink()
    assert summary.failed == 1
    assert any(
        "book 1" in message and "outside the vault" in message for _kind, message in summary.errors
    ), summary.errors
    assert "New in the fine book" in h.read(2)
