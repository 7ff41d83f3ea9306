"""`syncd service install` / `uninstall` against a temporary HOME and XDG dirs, a fake
`systemctl` on PATH (never the real user manager) and the stand-in Readwise on 127.0.0.1."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncd import cli
from syncd.service import MARKER
from syncd.standin import StandinServer, sample_library

TOKEN = "rwTestToken0123456789abcdefghijklmnopqrstuvwxyzAB"


@dataclass
class Setup:
    home: Path
    config: Path
    units: Path
    token_file: Path
    systemctl_log: Path
    vaults: tuple[Path, Path]
    state: Path

    def systemctl_calls(self) -> list[str]:
        if not self.systemctl_log.exists():
            return []
        return self.systemctl_log.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def server() -> Iterator[StandinServer]:
    with StandinServer(sample_library(), token=TOKEN) as running:
        yield running


@pytest.fixture
def setup(tmp_path: Path, server: StandinServer, monkeypatch: pytest.MonkeyPatch) -> Setup:
    home = tmp_path / "home"
    vault, graph = home / "Notes" / "my vault", home / "Notes" / "graph"
    vault.mkdir(parents=True)
    (graph / "logseq").mkdir(parents=True)
    (graph / "logseq" / "config.edn").write_text("{:meta/version 1}\n", encoding="utf-8")
    state = home / "state"
    config = home / "syncd.toml"
    config.write_text(
        f'[readwise]\nbase_url = "{server.base_url}"\n[state]\ndir = "{state}"\n'
        f'[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "{vault}"\n'
        f'[[targets]]\nname = "graph"\nformat = "logseq"\nvault = "{graph}"\n',
        encoding="utf-8",
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n', encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("READWISE_TOKEN", TOKEN)
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    return Setup(
        home=home,
        config=config,
        units=home / "xdg" / "systemd" / "user",
        token_file=home / "xdg" / "syncd" / "readwise-token",
        systemctl_log=log,
        vaults=(vault, graph),
        state=state,
    )


def _install(setup: Setup, *args: str) -> int:
    return cli.main(["service", "install", "--config", str(setup.config), *args])


def test_install_writes_the_units_stores_the_token_and_starts_the_service(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install(setup) == 0
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    assert "token: accepted by" in out  # checked with the token it stores

    unit = (setup.units / "syncd.service").read_text(encoding="utf-8")
    assert unit.startswith(MARKER)
    # This same syncd (pytest runs it in-process: this Python with -m syncd), by absolute path.
    assert f"\nExecStart={sys.executable} -m syncd --config {setup.config}\n" in unit
    assert f"\nLoadCredential=readwise-token:{setup.token_file}\n" in unit
    assert f"\nReadWritePaths=-{setup.state}\n" in unit
    vault, graph = setup.vaults
    assert f'\nReadWritePaths="-{vault}"\n' in unit  # a space: quoted as systemd reads it
    assert f"\nReadWritePaths=-{graph}\n" in unit
    assert "@" + "SYNCD@" not in unit and "#@" not in unit

    assert setup.token_file.read_text(encoding="utf-8") == TOKEN + "\n"
    assert stat.S_IMODE(setup.token_file.stat().st_mode) == 0o600
    assert setup.state.is_dir()
    assert setup.systemctl_calls() == ["--user daemon-reload", "--user enable --now syncd.service"]


def test_the_timer_instead_of_the_daemon(setup: Setup) -> None:
    assert _install(setup, "--timer") == 0
    once = (setup.units / "syncd-once.service").read_text(encoding="utf-8")
    assert f"\nExecStart={sys.executable} -m syncd --config {setup.config} --once\n" in once
    assert (setup.units / "syncd.timer").read_text(encoding="utf-8").startswith(MARKER)
    assert not (setup.units / "syncd.service").exists()
    assert setup.systemctl_calls()[-1] == "--user enable --now syncd.timer"


def test_without_systemctl_it_prints_the_exact_commands(
    setup: Setup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert _install(setup) == 0
    out = capsys.readouterr().out
    assert (
        "  systemctl --user daemon-reload\n  systemctl --user enable --now syncd.service\n" in out
    )
    assert (setup.units / "syncd.service").exists()
    assert setup.systemctl_calls() == []


def test_dry_run_changes_nothing(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert _install(setup, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"would write {setup.units / 'syncd.service'}:" in out
    assert "ExecStart=" in out and TOKEN not in out
    assert not setup.units.exists() and not setup.token_file.exists()
    assert setup.systemctl_calls() == []


def test_a_rejected_token_writes_nothing(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("READWISE_TOKEN", "rwWrongToken0123456789abcdefghijklmnopqrstuvwxyzA")
    assert _install(setup) == 3
    assert "rwWrongToken" not in "".join(capsys.readouterr())
    assert not setup.units.exists() and not setup.token_file.exists()
    assert setup.systemctl_calls() == []


def test_a_reinstall_uses_the_stored_token_and_keeps_a_hand_written_unit_aside(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup.units.mkdir(parents=True)
    (setup.units / "syncd.service").write_text("[Service]\nExecStart=/old\n", encoding="utf-8")
    assert _install(setup) == 0
    assert (setup.units / "syncd.service.bak").read_text(encoding="utf-8").endswith("/old\n")
    monkeypatch.delenv("READWISE_TOKEN")  # a new shell: the token is the one stored before
    assert _install(setup) == 0
    assert not (setup.units / "syncd.service.bak.bak").exists()


def test_uninstall_stops_and_removes_only_its_own_units(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install(setup) == 0
    (setup.units / "syncd.timer").write_text("[Timer]\nOnCalendar=daily\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["service", "uninstall"]) == 0
    out = capsys.readouterr().out
    assert not (setup.units / "syncd.service").exists()
    assert (setup.units / "syncd.timer").exists()  # not written by syncd: left alone, and said
    assert f"left {setup.units / 'syncd.timer'} alone" in out
    assert setup.systemctl_calls()[-2:] == [
        "--user disable --now syncd.service",
        "--user daemon-reload",
    ]
    assert setup.token_file.exists() and f"kept {setup.token_file}" in out


def test_a_failing_systemctl_is_named(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    fake = Path(os.environ["PATH"]) / "systemctl"
    fake.write_text("#!/bin/sh\necho 'Failed to connect to bus' >&2\nexit 1\n", encoding="utf-8")
    assert _install(setup) == 1
    err = capsys.readouterr().err
    assert "`systemctl --user daemon-reload` failed (exit 1): Failed to connect to bus" in err
    assert "internal error" not in err


def test_e_reader_files_only_need_no_token(
    setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No target syncs from Readwise: no token is asked for or stored, and the units load no
    credential (LoadCredential= of a missing file would fail every start)."""
    vault = setup.vaults[0]
    clippings = setup.home / "My Clippings.txt"
    clippings.write_text("", encoding="utf-8")
    setup.config.write_text(
        f'[state]\ndir = "{setup.state}"\n'
        f'[[sources]]\nname = "kindle"\nkind = "kindle_clippings"\npath = "{clippings}"\n'
        f'[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "{vault}"\n',
        encoding="utf-8",
    )
    monkeypatch.delenv("READWISE_TOKEN")

    assert _install(setup) == 0
    assert _install(setup, "--timer") == 0

    out, _err = capsys.readouterr()
    assert "token: none needed" in out and "token: stored" not in out
    assert not setup.token_file.exists()
    for name in ("syncd.service", "syncd-once.service"):
        unit = (setup.units / name).read_text(encoding="utf-8")
        assert "\nLoadCredential=" not in unit, name
        assert "ExecStart=" in unit and f"ReadWritePaths=-{setup.state}\n" in unit
    assert "--user enable --now syncd.service" in setup.systemctl_calls()


def test_a_dry_run_says_no_token_is_needed_for_e_reader_files_only(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    clippings = setup.home / "My Clippings.txt"
    setup.config.write_text(
        f'[state]\ndir = "{setup.state}"\n'
        f'[[sources]]\nname = "kindle"\nkind = "kindle_clippings"\npath = "{clippings}"\n'
        f'[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "{setup.vaults[0]}"\n',
        encoding="utf-8",
    )
    assert _install(setup, "--dry-run") == 0
    out, _err = capsys.readouterr()
    assert "no Readwise token needed" in out and "would store the Readwise token" not in out
    assert "\nLoadCredential=" not in out
    assert not setup.units.exists()
