"""The forked worker: results, progress and errors come back; a kill -9 of the parent takes the
worker with it; a two-target pass split over two processes ends exactly like one in one."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from syncd.errors import VaultError
from syncd.sync import parallel
from syncd.sync.parallel import WorkerFailed, start_worker

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork + prctl")


def test_result_and_progress_come_back() -> None:
    assert parallel.can_fork()  # pytest runs no other thread: the fork path is the one tested

    def work(report: parallel.ProgressReport) -> list[int]:
        report("graph", 1, 2)
        report("graph", 2, 2)
        return [os.getpid()]

    seen: list[tuple[str, int, int]] = []
    worker = start_worker(work)
    result = worker.join(lambda target, done, total: seen.append((target, done, total)))
    assert result == [worker.pid] and worker.pid != os.getpid()
    assert seen == [("graph", 1, 2), ("graph", 2, 2)]
    assert worker.private_kb is not None and worker.private_kb > 0


def test_a_result_read_by_poll_is_still_returned_by_join() -> None:
    def work(report: parallel.ProgressReport) -> str:
        report("obs", 1, 1)
        return "done"

    worker = start_worker(work)
    pidfd = os.pidfd_open(worker.pid)
    try:
        assert select.select([pidfd], [], [], 10)[0]  # the worker has sent everything and exited
    finally:
        os.close(pidfd)
    seen: list[tuple[str, int, int]] = []
    worker.poll(lambda target, done, total: seen.append((target, done, total)))
    assert seen == [("obs", 1, 1)]
    assert worker.join(None) == "done"


def test_syncd_errors_keep_their_type_and_exit_code() -> None:
    def work(report: parallel.ProgressReport) -> None:
        raise VaultError("cannot write /v/x.md: No space left on device")

    with pytest.raises(VaultError, match="No space left") as info:
        start_worker(work).join(None)
    assert info.value.exit_code == 5


def test_a_bug_in_the_worker_comes_back_with_its_traceback() -> None:
    def work(report: parallel.ProgressReport) -> None:
        {}["missing"]

    with pytest.raises(WorkerFailed, match="KeyError in the worker process") as info:
        start_worker(work).join(None)
    assert "test_parallel.py" in str(info.value)  # where it happened, for the bug report


def test_a_worker_that_dies_without_a_word_is_a_failure() -> None:
    def work(report: parallel.ProgressReport) -> None:
        os._exit(3)

    with pytest.raises(WorkerFailed, match="without a result"):
        start_worker(work).join(None)


def test_kill_9_of_the_parent_kills_the_worker(tmp_path: Path) -> None:
    # The parent starts a worker that blocks forever on a pipe, prints the worker's PID, and
    # waits; the test kills the parent with SIGKILL and waits (on a pidfd, no polling) for the
    # worker to be gone.
    script = textwrap.dedent(
        """
        import os, sys
        from syncd.sync.parallel import start_worker

        def work(report):
            read_end, _write_end = os.pipe()
            os.read(read_end, 1)  # never returns by itself

        worker = start_worker(work)
        print(worker.pid, flush=True)
        os.read(0, 1)  # wait to be killed
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    pidfd = os.pidfd_open(worker_pid)
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        ready, _, _ = select.select([pidfd], [], [], 10)
        assert ready, "the worker outlived its parent"
    finally:
        os.close(pidfd)
        assert parent.stdin is not None
        parent.stdin.close()
        parent.stdout.close()
