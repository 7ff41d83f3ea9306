"""One syncd per state dir: an exclusive flock on `<state dir>/syncd.lock` holding our PID."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from syncd.errors import LockHeld, StateError

LOCK_WAIT_S = 1.0


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "syncd.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot open lock file {self.path}: {exc.strerror}") from exc
        # A syncd killed a moment ago may still have a worker process on its way out (the
        # kernel kills it with its parent; it keeps the lock until it is gone): wait a little.
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise LockHeld(
                    f"another syncd (PID {holder}) is using the state dir {self.path.parent}"
                ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # a full or failing disk under the state dir
            os.close(fd)
            raise StateError(
                f"cannot write lock file {self.path}: {exc.strerror}; free some space on the "
                "disk holding the state dir"
            ) from exc
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays for the next run
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
