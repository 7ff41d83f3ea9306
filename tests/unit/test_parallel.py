"""The forked worker: results, progress and errors come back; a kill -9 of the parent takes the
worker with it; a two-target pass split over two processes ends exactly like one in one."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.errors import ReadwiseUnavailable, VaultError
from syncd.sync import engine, parallel
from syncd.sync.engine import run_pass
from syncd.sync.parallel import WorkerFailed, start_worker
from syncd.sync.state import StateStore
from tests.harness import MemorySource
from tests.unit.test_parallel_pass import _runtime

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


def test_a_gated_worker_starts_only_on_go_with_its_value(tmp_path: Path) -> None:
    marker = tmp_path / "started"

    def work(report: parallel.ProgressReport, value: str) -> str:
        marker.write_text(value, encoding="utf-8")
        report("graph", 1, 1)
        return f"worked with {value}"

    worker = parallel.start_gated_worker(work)
    # Waiting on the gate, the worker has not run `work`: nothing came back, nothing written.
    assert not select.select([worker.pipe], [], [], 0.2)[0]
    assert not marker.exists()
    worker.go("the pull's time")
    seen: list[tuple[str, int, int]] = []
    assert worker.join(lambda *a: seen.append(a)) == "worked with the pull's time"
    assert marker.read_text(encoding="utf-8") == "the pull's time" and seen == [("graph", 1, 1)]


def test_a_cancelled_gated_worker_ends_without_working(tmp_path: Path) -> None:
    marker = tmp_path / "started"

    def work(report: parallel.ProgressReport, value: object) -> None:
        marker.write_text("ran", encoding="utf-8")

    worker = parallel.start_gated_worker(work)
    worker.cancel()
    assert not marker.exists()
    with pytest.raises(ChildProcessError):
        os.waitpid(worker.pid, os.WNOHANG)  # reaped: no zombie left behind


def test_a_failing_full_pull_leaves_no_worker_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked: list[int] = []

    def counting(work):  # type: ignore[no-untyped-def]
        worker = parallel.start_gated_worker(work)
        forked.append(worker.pid)
        return worker

    monkeypatch.setattr(engine, "start_gated_worker", counting)

    class Failing(MemorySource):
        def export_pages(self, **kwargs: object):  # type: ignore[no-untyped-def,override]
            yield from super().export_pages(**kwargs)  # type: ignore[arg-type]
            raise ReadwiseUnavailable("export page 2: 503 after 5 attempts")

    source = Failing()
    source.add_book(1, "A book", ["one", "two"])
    (tmp_path / "vault").mkdir()
    (tmp_path / "graph").mkdir()
    store = StateStore.open(tmp_path / "state")
    try:
        with pytest.raises(ReadwiseUnavailable):
            run_pass(
                store,
                source,
                [
                    _runtime(tmp_path / "vault", "obs", ObsidianAdapter(), ""),
                    _runtime(tmp_path / "graph", "lsq", LogseqAdapter(), "pages"),
                ],
                base_url="memory://",
                overlap=timedelta(0),
                now=lambda: datetime(2030, 1, 1, tzinfo=UTC),
            )
        assert len(forked) == 1  # the worker was forked before the pull
        with pytest.raises(ChildProcessError):
            os.waitpid(forked[0], os.WNOHANG)  # and is gone and reaped
        assert store.book_count() == 0  # and the pull's transaction was rolled back
    finally:
        store.close()
    assert not list(tmp_path.rglob("*.md"))
