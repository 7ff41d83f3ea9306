"""Counts in what syncd says agree with their number, and messages name what they are about."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from syncd import cli
from syncd.checkup import check_setup
from syncd.config import load_config
from syncd.errors import ConfigError
from syncd.runs import summary_line
from syncd.sync.engine import PassSummary
from tests.harness import Harness

TOKEN = "rwTestToken0123456789abcdefghijklmnopqrstuvwxyzAB"


def test_check_says_1_target(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[readwise]\ntoken = "{TOKEN}"\n[state]\ndir = "{tmp_path / "state"}"\n'
        f'[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "{vault}"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    said: list[str] = []
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    check_setup(load_config(config, environ={}), {}, say=said.append, transport=transport)
    assert said[0] == f"config: {config} ok (1 target)"


def test_an_empty_token_is_called_empty(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[readwise]\ntoken = ""\n[[targets]]\nname = "m"\nformat = "obsidian"\n'
        f'vault = "{tmp_path}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config, environ={})
    assert caught.value.problems == [
        f"{config}: readwise.token: must be a non-empty string, got an empty string"
    ]


def test_the_dry_run_plan_counts_right_and_names_a_skipped_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = Harness(tmp_path, "obsidian")
    target.source.add_book(1, "Meditations", ["first"])
    target.sync()
    target.source.add_highlight(1, "second")
    target.source.add_book(2, "Nothing Highlighted Yet")
    dry = target.sync(dry_run=True)
    cli._print_plan(PassSummary(pull=None, targets=[dry], elapsed=0.0))
    lines = capsys.readouterr().out.splitlines()
    assert any(line.endswith(", 1 highlight added)") for line in lines), lines
    assert 'skip     t: "Nothing Highlighted Yet" (book 2) (no live highlights)' in lines
    assert (
        summary_line(PassSummary(pull=None, targets=[dry], elapsed=0.0)).count("1 highlight added")
        == 1
    )
