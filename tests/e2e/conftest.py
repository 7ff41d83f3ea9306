"""End-to-end fixtures: the stand-in Readwise server on 127.0.0.1, temp vaults, and `syncd` run
as a real subprocess (`python -m syncd`)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from syncd.standin import Library, StandinServer, generate_library
from tests.e2e.leaks import assert_token_absent, assert_token_absent_from_files

if TYPE_CHECKING:
    from tests.e2e.daemon_support import Daemon, Notifications

TOKEN = "e2e-token-6f1c2b9d0a7e4c1f"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Setup:
    server: StandinServer
    library: Library
    config: Path
    obsidian: Path
    logseq: Path
    state: Path

    def run(
        self, *args: str, now: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        env["READWISE_TOKEN"] = TOKEN
        env["PYTHONPATH"] = str(ROOT)
        if now is not None:
            env["SYNCD_NOW"] = now
        done = subprocess.run(
            [sys.executable, "-m", "syncd", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        assert_token_absent(TOKEN, done.stdout, done.stderr)
        return done

    def pages(self, target: str) -> dict[int, tuple[str, str, str]]:
        """book id -> (path, page title, status) as the state store records them."""
        db = sqlite3.connect(f"file:{self.state / 'state.sqlite3'}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT book_id, path, page_title, status FROM pages WHERE target=?", (target,)
            ).fetchall()
        finally:
            db.close()
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}


def write_config(tmp: Path, base_url: str) -> tuple[Path, Path, Path, Path]:
    obsidian = tmp / "vault"
    logseq = tmp / "graph"
    state = tmp / "state"
    obsidian.mkdir()
    (logseq / "logseq").mkdir(parents=True)
    config = tmp / "config.toml"
    config.write_text(
        f"""
[readwise]
base_url = "{base_url}"
max_attempts = 3
backoff_max = 0.2

[state]
dir = "{state}"

[[targets]]
name = "obs"
format = "obsidian"
vault = "{obsidian}"

[[targets]]
name = "lsq"
format = "logseq"
vault = "{logseq}"
""",
        encoding="utf-8",
    )
    return config, obsidian, logseq, state


def use_templates(config: Path, target: str, folder: Path) -> None:
    """Give one target of a config `write_config` wrote a templates folder."""
    text = config.read_text(encoding="utf-8")
    anchor = f'name = "{target}"\n'
    assert text.count(anchor) == 1, anchor
    config.write_text(text.replace(anchor, f'{anchor}templates = "{folder}"\n'), encoding="utf-8")


def make_setup(tmp_path: Path, library: Library) -> Iterator[Setup]:
    with StandinServer(library, token=TOKEN) as server:
        config, obsidian, logseq, state = write_config(tmp_path, server.base_url)
        yield Setup(server, library, config, obsidian, logseq, state)
        # Whatever the test did: neither the vaults nor the state store hold the token.
        assert_token_absent_from_files(TOKEN, obsidian, logseq, state)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    yield from make_setup(tmp_path, generate_library(books=24, highlights=220, seed=7))


@pytest.fixture
def notify() -> Iterator[Notifications]:
    """The datagram socket systemd would listen on (NOTIFY_SOCKET) for a daemon under test."""
    from tests.e2e.daemon_support import Notifications  # it imports this module

    notifications = Notifications()
    try:
        yield notifications
    finally:
        notifications.close()


@pytest.fixture
def start(setup: Setup, notify: Notifications) -> Iterator[Callable[..., Daemon]]:
    """Starts daemons on `setup` (`start(("ENV", "value"), args=[...])`); all are stopped
    after the test and checked never to have logged the token."""
    from tests.e2e.daemon_support import start_daemons  # it imports this module

    yield from start_daemons(setup, notify)
