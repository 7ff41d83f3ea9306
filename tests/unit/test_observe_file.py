"""The observer's look at one note: a pipe or a folder at a note's path never blocks it."""

from __future__ import annotations

import os
from pathlib import Path

from syncd.observe import observe_file
from syncd.sync.state import text_hash


def test_a_note_is_hashed_as_syncd_hashes_text(tmp_path: Path) -> None:
    note = tmp_path / "n.md"
    note.write_bytes("- caf\u00e9\n".encode())
    seen = observe_file(note)
    assert seen is not None
    assert seen.content_hash == text_hash("- caf\u00e9\n")
    assert seen.size == len("- caf\u00e9\n".encode())


def test_not_utf8_gets_a_hash_of_its_own(tmp_path: Path) -> None:
    note = tmp_path / "n.md"
    note.write_bytes(b"\xff\xfe")
    seen = observe_file(note)
    assert seen is not None and seen.content_hash.startswith("bytes:")


def test_a_named_pipe_or_a_folder_is_no_note_and_does_not_block(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.md"
    os.mkfifo(pipe)
    assert observe_file(pipe) is None  # without O_NONBLOCK this open waits for a writer
    folder = tmp_path / "folder.md"
    folder.mkdir()
    assert observe_file(folder) is None
    assert observe_file(tmp_path / "gone.md") is None
