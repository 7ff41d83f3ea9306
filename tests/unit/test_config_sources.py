"""[[sources]] and a target's `sources` (syncd.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.errors import ConfigError

TARGET = '[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "."\n'
KINDLE = '[[sources]]\nname = "kindle"\nkind = "kindle_clippings"\npath = "My Clippings.txt"\n'
KOREADER = '[[sources]]\nname = "kobo"\nkind = "koreader"\npath = "~/Books"\n'


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), environ={})
    assert caught.value.exit_code == 2
    return caught.value.problems


def test_only_local_sources_need_no_readwise(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, TARGET + KINDLE + KOREADER), environ={"HOME": "/h"})
    kindle, kobo = config.sources
    assert (kindle.name, kindle.kind, kindle.path) == (
        "kindle",
        "kindle_clippings",
        tmp_path / "My Clippings.txt",
    )
    assert (kobo.kind, kobo.path) == ("koreader", Path("/h/Books"))
    (target,) = config.targets
    assert target.sources == frozenset({"kindle", "kobo"})
    assert not config.uses_readwise


def test_readwise_table_adds_readwise_to_the_default(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[readwise]\n" + TARGET + KINDLE), environ={})
    assert config.targets[0].sources == frozenset({"readwise", "kindle"})
    assert config.uses_readwise


def test_no_sources_at_all_is_readwise_as_before(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, TARGET), environ={})
    assert config.targets[0].sources == frozenset({"readwise"}) and config.uses_readwise


def test_a_target_picks_its_sources(tmp_path: Path) -> None:
    text = TARGET + 'sources = ["readwise"]\n' + KINDLE
    config = load_config(_write(tmp_path, text), environ={})
    assert config.targets[0].sources == frozenset({"readwise"}) and config.uses_readwise


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            TARGET + 'sources = ["kindel"]\n' + KINDLE,
            'names no such source: "kindel" (did you mean',
        ),
        (TARGET + "sources = []\n", "targets[0].sources: must be a non-empty list of source names"),
        (
            TARGET + 'sources = "kindle"\n',
            "targets[0].sources: must be a non-empty list of source names",
        ),
        (TARGET + KINDLE + KINDLE, 'sources[1].name: "kindle" is already the name of sources[0]'),
        (TARGET + KINDLE.replace('"kindle"', '"readwise"'), 'sources[0].name: "readwise" is'),
        (
            TARGET + KINDLE.replace('"kindle_clippings"', '"kobo"'),
            'sources[0].kind: must be one of "kindle_clippings", "koreader", got "kobo"',
        ),
        (
            TARGET + KINDLE.replace('path = "My Clippings.txt"\n', ""),
            "sources[0].path: is required",
        ),
        (TARGET + KINDLE + 'paht = "x"\n', 'sources[0].paht: unknown key (did you mean "path"?)'),
        (
            TARGET + '[sources]\nname = "x"\n',
            "sources: must be an array of tables, written [[sources]]",
        ),
    ],
)
def test_broken_sources(tmp_path: Path, text: str, fragment: str) -> None:
    problems = _problems(tmp_path, text)
    assert any(fragment in problem for problem in problems), problems


def _write(folder: Path, text: str) -> Path:
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path
