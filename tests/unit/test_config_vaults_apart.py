"""Each target a vault (or graph) of its own, side by side: the rule the example config states
is the rule the loader checks (an Obsidian target searches its whole vault for moved and
adopted notes, so another target's pages inside it would be taken for its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "syncd.example.toml"


def _targets(*tables: tuple[str, str, Path, str]) -> str:
    return "".join(
        f'[[targets]]\nname = "{name}"\nformat = "{fmt}"\nvault = "{vault.as_posix()}"\n{extra}'
        for name, fmt, vault, extra in tables
    )


def _load(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text('[readwise]\ntoken_env = "T"\n' + text, encoding="utf-8")
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    for folder in ("vault/graph", "graph", "other"):
        (tmp_path / "notes" / folder).mkdir(parents=True)
    return tmp_path / "notes"


def test_a_logseq_graph_inside_an_obsidian_vault_is_refused(tmp_path: Path, notes: Path) -> None:
    problems = _load(
        tmp_path,
        _targets(
            ("main", "obsidian", notes / "vault", ""),
            ("graph", "logseq", notes / "vault" / "graph", ""),
        ),
    )
    assert problems == [
        f"{tmp_path / 'config.toml'}: targets[1].vault: {notes / 'vault' / 'graph'} and"
        f" targets[0]'s vault {notes / 'vault'} are inside one another: each target needs a"
        " vault or graph of its own, side by side (such as ~/Notes/vault and ~/Notes/graph)"
    ]


def test_two_obsidian_targets_in_one_vault_are_refused(tmp_path: Path, notes: Path) -> None:
    problems = _load(
        tmp_path,
        _targets(
            ("books", "obsidian", notes / "vault", 'folder = "Books"\n'),
            ("articles", "obsidian", notes / "vault", 'folder = "Articles"\n'),
        ),
    )
    assert len(problems) == 1
    assert f"targets[1].vault: {notes / 'vault'} is also targets[0]'s vault" in problems[0]


def test_side_by_side_is_fine(tmp_path: Path, notes: Path) -> None:
    text = _targets(
        ("main", "obsidian", notes / "vault", ""),
        ("graph", "logseq", notes / "graph", ""),
        ("more", "obsidian", notes / "other", ""),
    )
    assert _load(tmp_path, text) == []


def test_the_example_config_states_the_rule_the_loader_checks() -> None:
    comment = " ".join(
        line.lstrip("# ").strip()
        for line in EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    )
    assert "neither may sit inside the other" in comment
    assert "a Logseq graph inside an Obsidian vault, two Obsidian targets in one vault" in comment
    assert "Side by side is fine" in comment
