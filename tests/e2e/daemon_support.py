"""The resident daemon as the e2e tests run it: `syncd` in a subprocess with a real NOTIFY_SOCKET,
its JSON log events collected and waited on, and the small helpers the daemon tests share. The
fixtures `notify` and `start` (conftest.py) are built from these."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ROOT, TOKEN, Setup

NOW = "2024-06-01T10:00:00+00:00"
WAIT = 20.0  # generous: a loaded CI machine; a passing run waits far less

Event = dict[str, Any]


class Notifications:
    """The AF_UNIX datagram socket systemd would listen on, collecting what syncd sends."""

    def __init__(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="sdd-")  # AF_UNIX paths must stay short
        self.path = os.path.join(self._folder, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self.messages: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while True:
            try:
                data = self._sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self._cond:
                self.messages.extend(data.decode().split("\n"))
                self._cond.notify_all()

    def wait_for(self, match: Callable[[str], bool], *, since: int = 0) -> str:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: any(match(m) for m in self.messages[since:]), timeout=WAIT
            )
            assert ok, f"no matching notification in {self.messages[since:]}"
            return next(m for m in self.messages[since:] if match(m))

    def close(self) -> None:
        self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)
        Path(self.path).unlink(missing_ok=True)
        os.rmdir(self._folder)


class Daemon:
    """A running `syncd` (no --once): its JSON log events, waited on by name and fields."""

    def __init__(
        self,
        setup: Setup,
        notify: Notifications,
        *extra_env: tuple[str, str],
        args: Sequence[str] = (),
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        env.update(
            READWISE_TOKEN=TOKEN, PYTHONPATH=str(ROOT), SYNCD_NOW=NOW, NOTIFY_SOCKET=notify.path
        )
        env.update(extra_env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(setup.config), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: list[Event] = []
        self.other_lines: list[str] = []
        self._cond = threading.Condition()
        self.token_leaks: list[str] = []  # log lines that showed the token (must stay empty)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if TOKEN in line:
                self.token_leaks.append(line[:200].replace(TOKEN, "<TOKEN>"))
            with self._cond:
                try:
                    self.events.append(json.loads(line))
                except json.JSONDecodeError:
                    self.other_lines.append(line)  # e.g. a library's warning: kept for messages
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_for(self, name: str, *, since: int = 0, timeout: float = WAIT, **fields: Any) -> Event:
        def found() -> Event | None:
            for event in self.events[since:]:
                if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                    return event
            return None

        with self._cond:
            self._cond.wait_for(
                lambda: found() is not None or self.process.poll() is not None, timeout=timeout
            )
            event = found()
        assert event is not None, (
            f"no {name} {fields} (exit {self.process.poll()}): "
            f"{[e.get('event') for e in self.events[since:]]} {self.other_lines[-5:]}"
        )
        return event

    def named(self, name: str, *, since: int = 0) -> list[Event]:
        with self._cond:
            return [e for e in self.events[since:] if e.get("event") == name]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> float:
        """SIGTERM; seconds until it exited (asserting exit 0)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=10)
        elapsed = time.monotonic() - started
        assert code == 0, self.other_lines[-20:]
        return elapsed

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        assert self.token_leaks == [], f"the Readwise token was logged: {self.token_leaks}"


def start_daemons(setup: Setup, notify: Notifications) -> Iterator[Callable[..., Daemon]]:
    running: list[Daemon] = []

    def start_daemon(*extra_env: tuple[str, str], args: Sequence[str] = ()) -> Daemon:
        daemon = Daemon(setup, notify, *extra_env, args=args)
        running.append(daemon)
        return daemon

    try:
        yield start_daemon
    finally:
        for daemon in running:
            daemon.close()


def poll_every(setup: Setup, seconds: float, extra: str = "") -> None:
    text = setup.config.read_text(encoding="utf-8")
    setup.config.write_text(
        text + f"\n[daemon]\npoll_interval = {seconds}\n{extra}", encoding="utf-8"
    )


def page_row(setup: Setup, target: str, book_id: int) -> sqlite3.Row:
    db = sqlite3.connect(f"file:{setup.state / 'state.sqlite3'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM pages WHERE target=? AND book_id=?", (target, book_id)
        ).fetchone()
    finally:
        db.close()
    assert row is not None
    return row


def live_book(setup: Setup, target: str, index: int = 0) -> tuple[int, Path]:
    live = sorted((bid, row[0]) for bid, row in setup.pages(target).items() if row[2] == "live")
    book_id, path = live[index]
    root = setup.obsidian if target == "obs" else setup.logseq
    return book_id, root / path
