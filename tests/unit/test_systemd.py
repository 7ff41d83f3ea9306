"""sd_notify against a real AF_UNIX datagram socket, the way systemd listens for it."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.systemd import Notifier, watchdog_interval


@pytest.fixture
def listener() -> Iterator[tuple[str, socket.socket]]:
    # AF_UNIX paths are limited to ~108 bytes: a short folder, not pytest's deep tmp_path.
    folder = tempfile.mkdtemp(prefix="sdn-")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield path, sock
    finally:
        sock.close()
        Path(path).unlink(missing_ok=True)
        os.rmdir(folder)


def _receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_status_watchdog_stopping_arrive_as_datagrams(
    listener: tuple[str, socket.socket],
) -> None:
    path, sock = listener
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    try:
        assert notifier.ready("started")
        assert _receive(sock) == ["READY=1", f"MAINPID={os.getpid()}", "STATUS=started"]
        assert notifier.status("obs: 3 created\n2 updated")
        assert _receive(sock) == ["STATUS=obs: 3 created 2 updated"]  # one line for systemctl
        assert notifier.watchdog()
        assert _receive(sock) == ["WATCHDOG=1"]
        assert notifier.stopping()
        assert _receive(sock) == ["STOPPING=1"]
    finally:
        notifier.close()


def test_a_long_status_is_cut_to_one_readable_line(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = Notifier(path)
    try:
        notifier.status("x" * 5000)
        (line,) = _receive(sock)
        assert line.startswith("STATUS=xxx") and line.endswith("...")
        assert len(line) == len("STATUS=") + 400
    finally:
        notifier.close()


def test_abstract_namespace_address() -> None:
    name = f"syncd-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    notifier = Notifier("@" + name)
    try:
        assert notifier.watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        notifier.close()
        sock.close()


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.status("x") is False
    notifier.close()


def test_a_vanished_socket_is_not_an_error(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    try:
        assert notifier.enabled
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    finally:
        notifier.close()


def test_unsupported_address_forms_are_ignored() -> None:
    assert not Notifier("vsock:2:1234").enabled
    assert not Notifier("relative/path").enabled


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval(environ) == expected
