"""Setups that work but are probably not what the person meant: a token others can read, a
Logseq target that is not a graph root. `check` and the first pass say so; nothing is refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.checkup import check_setup
from syncd.config import load_config
from syncd.passes import run_once
from syncd.standin import StandinServer, sample_library

TOKEN = "rwTestToken0123456789abcdefghijklmnopqrstuvwxyzAB"


def _accepting() -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(204))


def _config(tmp_path: Path, target: str, *, base_url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[readwise]\ntoken = "{TOKEN}"\nbase_url = "{base_url}"\n'
        f'[state]\ndir = "{(tmp_path / "state").as_posix()}"\n' + target,
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def _check(path: Path) -> list[str]:
    said: list[str] = []
    cfg = load_config(path, environ={}, check_vaults=False)
    check_setup(cfg, {}, say=said.append, transport=_accepting())
    return said


def _logseq(folder: Path) -> str:
    return f'[[targets]]\nname = "graph"\nformat = "logseq"\nvault = "{folder.as_posix()}"\n'


def test_check_warns_about_a_logseq_folder_that_is_not_a_graph(tmp_path: Path) -> None:
    folder = tmp_path / "Logseq"  # the graph is Logseq/graph: a typo away
    (folder / "graph" / "logseq").mkdir(parents=True)
    said = _check(_config(tmp_path, _logseq(folder)))
    warnings = [line for line in said if line.startswith("warning: ")]
    assert len(warnings) == 1, said
    assert f"{folder} is not a Logseq graph root" in warnings[0]
    assert "logseq/config.edn, pages/ and journals/" in warnings[0]
    assert said[-1].startswith("token: accepted")


def test_check_is_quiet_about_a_real_graph(tmp_path: Path) -> None:
    graph = tmp_path / "graph"
    (graph / "logseq").mkdir(parents=True)
    (graph / "logseq" / "config.edn").write_text("{:meta/version 1}\n", encoding="utf-8")
    said = _check(_config(tmp_path, _logseq(graph)))
    assert not [line for line in said if line.startswith("warning: ")], said


def test_the_first_pass_into_a_folder_that_is_not_a_graph_warns_once(tmp_path: Path) -> None:
    folder = tmp_path / "Logseq"
    folder.mkdir()
    with StandinServer(sample_library(), token=TOKEN) as server:
        cfg = load_config(
            _config(tmp_path, _logseq(folder), base_url=server.base_url),
            environ={},
            check_vaults=False,
        )
        with capture_logs() as first:
            run_once(cfg, TOKEN, quiet=True)
        with capture_logs() as second:
            run_once(cfg, TOKEN, quiet=True)
    warned = [e for e in first if e["event"] == "setup.warning"]
    assert len(warned) == 1 and str(folder) in warned[0]["message"]
    assert not [e for e in second if e["event"] == "setup.warning"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_config_holding_the_token_readable_by_others_is_named_with_the_fix(
    tmp_path: Path, mode: int
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    path = _config(tmp_path, f'[[targets]]\nname = "m"\nformat = "obsidian"\nvault = "{vault}"\n')
    path.chmod(mode)
    said = _check(path)
    warnings = [line for line in said if line.startswith("warning: ")]
    assert len(warnings) == 1, said
    assert str(path) in warnings[0] and f"chmod 600 {path}" in warnings[0]
    assert TOKEN not in "\n".join(said)


def test_a_private_config_and_a_token_file_others_can_read(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o644)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[readwise]\ntoken_file = "{token_file}"\nbase_url = "http://127.0.0.1:9"\n'
        f'[state]\ndir = "{(tmp_path / "state").as_posix()}"\n'
        f'[[targets]]\nname = "m"\nformat = "obsidian"\nvault = "{vault}"\n',
        encoding="utf-8",
    )  # 0644 as a new file is, but it holds no token: nothing to say about it
    warnings = [line for line in _check(path) if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert f"chmod 600 {token_file}" in warnings[0] and str(path) + " " not in warnings[0]
