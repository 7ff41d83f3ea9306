"""`syncd demo` run twice: the second run has "Readwise" edit a highlight in the note you
edited, add one and delete one, and says what happened to each, read back from the notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.demo import run_demo

MY_LINE = "My own thought about this, typed in Obsidian."


def test_the_second_demo_run_shows_the_merge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(tmp_path) == 0
    first = capsys.readouterr().out
    assert "Demo run" not in first

    note = tmp_path / "obsidian-vault" / "Readwise" / "Supplementals" / "How To Use Readwise.md"
    note.write_text(note.read_text(encoding="utf-8") + f"\n{MY_LINE}\n", encoding="utf-8")
    assert run_demo(tmp_path) == 0
    out = capsys.readouterr().out

    assert "Demo run 2: the stand-in Readwise changed 3 highlights" in out
    assert "the demo added a line" not in out  # you edited a note: that one is used
    assert 'Edited a highlight in "How To Use Readwise" (you edited its obsidian-demo note):' in out
    assert 'Added a highlight to "How To Use Readwise":' in out
    assert out.count("the block was replaced in place") == 2
    assert out.count("added in a new section") == 2
    assert out.count("removed from the note") == 2

    text = note.read_text(encoding="utf-8")
    assert MY_LINE in text
    assert "(edited in Readwise, demo run 2)" in text
    assert "A new highlight, added in Readwise for demo run 2." in text


def test_each_later_run_changes_something_new_and_nothing_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        assert run_demo(tmp_path, quiet=True) == 0
    assert run_demo(tmp_path) == 0
    out = capsys.readouterr().out
    assert "Demo run 4:" in out
    assert "not applied" not in out and "not added" not in out and "kept:" not in out
    note = tmp_path / "obsidian-vault" / "Readwise" / "Books" / "Meditations.md"
    text = note.read_text(encoding="utf-8")
    # The demo wrote its stand-in line once (in run 2) and found it again later.
    assert text.count("as if you had typed it") == 1
    for run in (2, 3, 4):
        assert text.count(f"A new highlight, added in Readwise for demo run {run}.") == 1
