"""sd_notify(3) over `$NOTIFY_SOCKET` with the stdlib: READY, STATUS, WATCHDOG, STOPPING.

Outside systemd (no `$NOTIFY_SOCKET`) every call is a no-op. A failed send is logged once at
debug level and never raised: telling systemd how we are must not be what stops the sync.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger("syncd.systemd")

# STATUS= is shown by `systemctl status`; keep it to one readable line.
_STATUS_MAX = 400


def _address(raw: str) -> str | bytes | None:
    """The socket address from `$NOTIFY_SOCKET`: a path, or `@name` for the abstract namespace."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # vsock:... and other forms systemd may use for VMs: not for a user service


def watchdog_interval(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of `$WATCHDOG_USEC`), or None if not asked for.

    `$WATCHDOG_PID`, when set, names the process the watchdog is meant for (not a child).
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 1_000_000 / 2


class Notifier:
    """Sends state lines to systemd; does nothing when not started by systemd."""

    def __init__(self, notify_socket: str | None) -> None:
        self._address = _address(notify_socket) if notify_socket else None
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=value` lines in one datagram; True if systemd got it."""
        if self._address is None:
            return False
        message = "\n".join(assignments).encode("utf-8", "replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message, self._address)
        except OSError as exc:
            if not self._failed:
                log.debug("systemd.notify_failed", error=exc.strerror or str(exc))
                self._failed = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        lines = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            lines.append(_status_line(status))
        return self.send(*lines)

    def status(self, text: str) -> bool:
        return self.send(_status_line(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        lines = ["STOPPING=1"]
        if status:
            lines.append(_status_line(status))
        return self.send(*lines)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _status_line(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _STATUS_MAX:
        flat = flat[: _STATUS_MAX - 3] + "..."
    return f"STATUS={flat}"
