"""The error that ends a command is said once per reader: one plain line on a terminal (the log
event too only with -v), one structured event in the journal."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from syncd import cli


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(monkeypatch: pytest.MonkeyPatch, stream: io.TextIOBase, *args: str) -> int:
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    return cli.main(list(args))


def test_on_a_terminal_an_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    terminal = _Terminal()
    code = _run(monkeypatch, terminal, "check", "--config", str(tmp_path / "missing.toml"))
    output = terminal.getvalue()
    assert code == 2
    assert output.count("missing.toml") == 1, output
    assert output.startswith("syncd: error: ")
    assert "syncd.failed" not in output


def test_on_a_terminal_with_v_the_log_event_comes_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    terminal = _Terminal()
    code = _run(monkeypatch, terminal, "check", "-v", "--config", str(tmp_path / "missing.toml"))
    output = terminal.getvalue()
    assert code == 2
    assert "syncd.failed" in output and "syncd: error: " in output


def test_in_the_journal_an_error_is_one_structured_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with open(tmp_path / "journal", "w+", encoding="utf-8") as journal:
        info = os.fstat(journal.fileno())
        monkeypatch.setattr("sys.stderr", journal)
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        code = cli.main(["check", "--config", str(tmp_path / "missing.toml")])
        journal.flush()
    lines = (tmp_path / "journal").read_text(encoding="utf-8").splitlines()
    assert code == 2
    assert len(lines) == 1, lines
    event = json.loads(lines[0])
    assert event["event"] == "syncd.failed" and event["exit_code"] == 2
    assert "missing.toml" in event["error"]


def test_in_a_pipe_both_the_event_and_the_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pipe = io.StringIO()
    code = _run(monkeypatch, pipe, "check", "--config", str(tmp_path / "missing.toml"))
    output = pipe.getvalue()
    assert code == 2
    assert '"event": "syncd.failed"' in output and "syncd: error: " in output
