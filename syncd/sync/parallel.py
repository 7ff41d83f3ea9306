"""One target's share of a big pass in a forked worker process: two targets, two cores.

Rendering and planning are pure Python, so threads cannot run two targets at once; a fork can.
It is used only where it is safe and pays:
- the process has no other thread (a fork copies one thread; locks another thread held would
  stay held in the child), so never in the daemon, whose watcher thread runs all along;
- the pass has many books due (a full re-sync, a new target), not a few edits; or the pull is a
  full export (the first pass, a reconcile): then the worker is forked before the pull, gated
  until it ends (start_gated_worker), so it shares none of the memory the pull fills;
- the platform is Linux (the worker must die with its parent: PR_SET_PDEATHSIG).

Crash safety is the same as in one process: the worker opens its own connection to the state
store (SQLite serialises the two writers) and follows the same intent -> write -> record order.
It keeps the inherited state-dir lock open, so after a kill -9 the lock frees only once the
worker is gone too (the kernel kills it with its parent), never while it may still write.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syncd.errors import SyncdError

_PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct("!I")

ProgressReport = Callable[[str, int, int], None]  # (target, books done, books total)


class WorkerFailed(RuntimeError):
    """The worker died or failed with an error that could not be carried back as it was."""


def can_fork() -> bool:
    return sys.platform.startswith("linux") and threading.active_count() == 1


@dataclass
class Worker:
    pid: int
    pipe: int  # read end: the worker's messages
    buffer: bytearray
    private_kb: int | None = None  # memory the worker held alone at its end, once reported
    outcome: tuple[str, Any] | None = None  # ("result" | "error", value), once received
    gate: int | None = None  # write end of a gated worker's go pipe, until used

    def go(self, value: Any) -> None:
        """Let a gated worker start, with `value` (see start_gated_worker)."""
        assert self.gate is not None, "go() is for a gated worker, once"
        gate, self.gate = self.gate, None
        try:
            _send(gate, (value,))
        finally:
            os.close(gate)

    def cancel(self) -> None:
        """Tell a gated worker not to start (or, once started, let it finish), and wait until
        it is gone; what it did or failed is not reported (the caller is failing already)."""
        if self.gate is not None:
            os.close(self.gate)
            self.gate = None
        with contextlib.suppress(Exception):  # it did nothing; only its exit matters
            self.join(None)

    def poll(self, on_progress: ProgressReport | None) -> None:
        """Pass on the progress the worker reported so far, without waiting."""
        while self.outcome is None and select.select([self.pipe], [], [], 0)[0]:
            if not self._read_available():
                return
            self._dispatch(on_progress)

    def join(self, on_progress: ProgressReport | None) -> Any:
        """Wait for the worker's result (returned) or error (raised)."""
        try:
            self._dispatch(on_progress)  # what poll() read but did not hand out yet
            while self.outcome is None and self._read_available():
                self._dispatch(on_progress)
        finally:
            os.close(self.pipe)
            _pid, status = os.waitpid(self.pid, 0)
        if self.outcome is None:  # the worker is gone without a last word
            raise WorkerFailed(f"the worker process ended without a result (status {status})")
        kind, value = self.outcome
        if kind == "error":
            raise value
        return value

    def _read_available(self) -> bool:
        chunk = os.read(self.pipe, 1 << 16)
        self.buffer += chunk
        return bool(chunk)

    def _dispatch(self, on_progress: ProgressReport | None) -> None:
        """Handle every whole message in the buffer; the result or error ends the stream."""
        while self.outcome is None and len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + size:
                return
            message = pickle.loads(bytes(self.buffer[_HEADER.size : _HEADER.size + size]))
            del self.buffer[: _HEADER.size + size]
            kind = message[0]
            if kind == "progress":
                if on_progress is not None:
                    on_progress(message[1], message[2], message[3])
            elif kind == "private":
                self.private_kb = message[1]
            else:
                self.outcome = (kind, message[1])


def start_worker(work: Callable[[ProgressReport], Any]) -> Worker:
    """Fork; the child runs `work(report_progress)` and sends back its result or error."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write the parent's buffered output a second time
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read_end)
        code = 1
        try:
            _die_with(parent)
            result = work(
                lambda target, done, total: _send(write_end, ("progress", target, done, total))
            )
            _send(write_end, ("private", _private_kb()))
            _send(write_end, ("result", result))
            code = 0
        except BaseException as exc:  # everything goes back to the parent
            with contextlib.suppress(BaseException):
                _send(write_end, ("error", _portable(exc)))
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)  # no atexit handlers, no finalizers of the parent's objects
    os.close(write_end)
    return Worker(pid, read_end, bytearray())


def start_gated_worker(work: Callable[[ProgressReport, Any], Any]) -> Worker:
    """Fork now, while this process is small, but work later: the child waits for
    `Worker.go(value)`, then runs `work(report_progress, value)`. After `Worker.cancel()` (or
    the parent's death) it ends without working. Memory the parent fills after the fork is
    never shared with the child, so the child cannot copy it either."""
    gate_read, gate_write = os.pipe()

    def gated(report: ProgressReport) -> Any:
        os.close(gate_write)  # only the parent may hold the write end, or EOF would never come
        message = _receive(gate_read)
        os.close(gate_read)
        return None if message is None else work(report, message[0])

    try:
        worker = start_worker(gated)
    except BaseException:
        os.close(gate_write)
        raise
    finally:
        os.close(gate_read)
    worker.gate = gate_write
    return worker


def _receive(fd: int) -> tuple[Any, ...] | None:
    """One message from `fd` (see _send); None at end of file."""
    data = bytearray()
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        data += chunk
    message: tuple[Any, ...] = pickle.loads(bytes(data[_HEADER.size :]))
    return message


def _die_with(parent: int) -> None:
    """SIGKILL this process when the parent dies (a kill -9 of syncd takes the worker too)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise WorkerFailed("cannot tie the worker to its parent (prctl failed)")
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _send(fd: int, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _portable(exc: BaseException) -> BaseException:
    """syncd's own errors as they are (their exit codes carry over); anything else, a bug, as a
    WorkerFailed holding the worker's traceback."""
    if isinstance(exc, SyncdError):
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            pass
        else:
            return exc
    text = "".join(traceback.format_exception(exc))
    return WorkerFailed(f"{type(exc).__name__} in the worker process: {exc}\n{text}")


def _private_kb() -> int | None:
    """Memory this process holds alone (not shared with its parent by the fork), at the end of
    its work, when it holds the most: the worker's own share, for the log."""
    total = 0
    try:
        with open("/proc/self/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except (OSError, ValueError):
        return None
    return total or None
