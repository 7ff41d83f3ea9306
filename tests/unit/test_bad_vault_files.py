"""A bad note (not UTF-8, binary, a symlink out of the vault) is reported and skipped; the rest
of the pass goes on and the bad file keeps every byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness import Harness


def _two_books(tmp_path: Path, fmt: str) -> Harness:
    h = Harness(tmp_path, fmt)  # type: ignore[arg-type]
    h.source.add_book(1, "Broken Book", ["Alpha text of book one"])
    h.source.add_book(2, "Fine Book", ["Bravo text of book two"])
    h.sync()
    h.source.add_highlight(1, "New in the broken book")
    h.source.add_highlight(2, "New in the fine book")
    return h


@pytest.mark.parametrize("fmt", ["obsidian", "logseq"])
@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not utf-8 \x80\x81", bytes(range(256)) * 4],
    ids=["invalid-utf8", "binary"],
)
def test_unreadable_note_is_skipped_and_kept_byte_for_byte(
    tmp_path: Path, fmt: str, content: bytes
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


def test_symlink_out_of_the_vault_is_never_written_through(tmp_path: Path) -> None:
    h = _two_books(tmp_path, "obsidian")
    outside = tmp_path / "outside.md"
    outside.write_text("not yours\n", encoding="utf-8")
    note = h.path(1)
    note.unlink()
    os.symlink(outside, note)
    summary = h.sync()
    assert outside.read_text(encoding="utf-8") == "not yours\n"
    assert summary.failed == 1
    assert "New in the fine book" in h.read(2)
