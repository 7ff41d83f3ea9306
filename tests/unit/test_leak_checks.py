"""The token-leak checks the end-to-end suites run can fail (a planted token is found)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.leaks import assert_token_absent, assert_token_absent_from_files

TOKEN = "planted-token-0123456789abcdef"


def test_a_token_in_an_output_is_caught() -> None:
    assert_token_absent(TOKEN, "all fine", b"bytes too", None)
    with pytest.raises(AssertionError):
        assert_token_absent(TOKEN, "ok", f"Authorization: Token {TOKEN}")
    with pytest.raises(AssertionError):
        assert_token_absent(TOKEN, TOKEN.encode())


def test_a_token_in_any_file_under_the_roots_is_caught(tmp_path: Path) -> None:
    (tmp_path / "vault" / "deep").mkdir(parents=True)
    (tmp_path / "vault" / "deep" / "note.md").write_text("- a note\n", encoding="utf-8")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.sqlite3-wal").write_bytes(b"\x00" * 64)
    assert assert_token_absent_from_files(TOKEN, tmp_path / "vault", tmp_path / "state") == 2
    (tmp_path / "state" / "state.sqlite3-wal").write_bytes(b"\x00" + TOKEN.encode() + b"\x00")
    with pytest.raises(AssertionError, match=r"state\.sqlite3-wal"):
        assert_token_absent_from_files(TOKEN, tmp_path / "vault", tmp_path / "state")
