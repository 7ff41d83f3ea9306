"""kill -9 of the resident daemon during a pass, at seeded random points, then a restart: the
restarted daemon's pass finishes the job and every vault is whole (the checks in
crash_checks.py, the same as for `syncd --once`).

Each trial (after the first, the very first pass): while no daemon runs, the user edits pages and
Readwise changes nearly every book; a daemon starts and is killed once it has logged its N-th
line (N seeded: one point in each of TRIALS equal slices of the lines a whole first pass logs,
its start-up scan, pull and every file written); a new daemon starts, its pass summary is
waited for, it is stopped, and the vaults and the state are checked. Every wait is on a log
line, with a timeout.

CI runs 3 trials on a 200-book library; SYNCD_LONG=1 runs 30 on 600 books, and
SYNCD_DAEMON_CRASH_TRIALS=N sets the number of trials. `-s` prints where the kills landed.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.standin import generate_library
from tests.e2e.conftest import Setup, make_setup, write_config
from tests.e2e.crash_checks import (
    Expectations,
    MldocQueue,
    change_upstream,
    check_recovered,
    in_progress_order,
    kill_phase,
    kill_points,
    make_user_edits,
    pass_time,
    progress_bucket,
)
from tests.e2e.daemon_support import Daemon, Notifications

LONG = os.environ.get("SYNCD_LONG") == "1"
TRIALS = int(os.environ.get("SYNCD_DAEMON_CRASH_TRIALS", "30" if LONG else "3"))
BOOKS, HIGHLIGHTS = (600, 6000) if LONG else (200, 2500)
MLDOC_SAMPLE = 40 if LONG else 0  # other Logseq pages per trial than the edited (all at the end)
PASS_WAIT = 120.0  # a whole pass of the big library on a loaded 2-core machine, with room

pytestmark = pytest.mark.mldoc


class KillableDaemon(Daemon):
    def kill_after(self, lines: int) -> None:
        """SIGKILL once it has logged `lines` lines (or its pass summary, if that comes first)."""

        def due() -> bool:
            return (
                len(self.events) >= lines
                or any(e.get("event") == "pass.summary" for e in self.events)
                or self.process.poll() is not None
            )

        with self._cond:
            assert self._cond.wait_for(due, timeout=PASS_WAIT), self.events[-5:]
        self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(timeout=10)
        # A daemon never ends by itself: anything but our SIGKILL is a failure.
        assert code == -signal.SIGKILL, f"exit {code}: {self.events[-3:]} {self.other_lines[-5:]}"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Setup]:
    yield from make_setup(tmp_path, generate_library(books=BOOKS, highlights=HIGHLIGHTS, seed=23))


def _lines_of_a_whole_pass(world: Setup, notify: Notifications, tmp_path: Path) -> int:
    """A daemon's first pass of the same library into vaults of its own: how many lines it logs
    up to its pass summary, the range the kill points are drawn from."""
    folder = tmp_path / "calibration"
    folder.mkdir()
    config, obsidian, logseq, state = write_config(folder, world.server.base_url)
    own = Setup(world.server, world.library, config, obsidian, logseq, state)
    daemon = Daemon(own, notify, ("SYNCD_NOW", pass_time(0)))
    try:
        summary = daemon.wait_for("pass.summary", timeout=PASS_WAIT)
        daemon.stop()
        return daemon.events.index(summary) + 1
    finally:
        daemon.close()


def _restart_and_finish(world: Setup, notify: Notifications, now: str) -> list[dict[str, Any]]:
    """A new daemon: its first pass ends with nothing failed, then it stops cleanly."""
    daemon = Daemon(world, notify, ("SYNCD_NOW", now))
    try:
        summary = daemon.wait_for("pass.summary", timeout=PASS_WAIT)
        assert all(t["failed"] == 0 for t in summary["targets"]), summary
        daemon.stop()
        return daemon.events
    finally:
        daemon.close()


def test_daemon_killed_mid_pass_then_restarted(
    world: Setup, notify: Notifications, tmp_path: Path
) -> None:
    started = time.monotonic()
    rng = random.Random(20241126)
    whole_pass = _lines_of_a_whole_pass(world, notify, tmp_path)
    points = kill_points(rng, TRIALS)
    expect = Expectations()
    mldoc = MldocQueue(tmp_path / "mldoc")
    phases: Counter[str] = Counter()
    progress: Counter[str] = Counter()
    recovered: Counter[str] = Counter()
    for trial in range(TRIALS):
        now = pass_time(trial)
        if trial > 0:
            make_user_edits(world, rng, trial, expect)
            change_upstream(world, rng, trial, expect)
        lines = max(1, math.ceil(points[trial] * whole_pass))
        label = f"trial {trial} (kill after {lines} log lines)"
        daemon = KillableDaemon(world, notify, ("SYNCD_NOW", now))
        try:
            daemon.kill_after(lines)
        finally:
            daemon.close()
        phases[kill_phase(daemon.events, killed=True)] += 1
        progress[progress_bucket(len(daemon.events), whole_pass)] += 1
        events = _restart_and_finish(world, notify, now)
        intents = [e for e in events if e.get("event") == "recovered.intents"]
        if intents:
            recovered["restarts finishing or dropping writes"] += 1
            recovered["writes finished"] += sum(e["finalized"] for e in intents)
            recovered["writes dropped"] += sum(e["dropped"] for e in intents)
        check_recovered(world, expect, mldoc=mldoc, label=label, rng=rng, mldoc_sample=MLDOC_SAMPLE)
    final = world.run("--once", now=pass_time(TRIALS))
    assert final.returncode == 0, final.stderr[-2000:]
    assert "0 created, 0 updated" in final.stdout  # nothing left half done
    check_recovered(world, expect, mldoc=mldoc, label="final", rng=rng, mldoc_sample=None)
    read = mldoc.check()
    print(
        f"\n{TRIALS} daemon trials on {BOOKS} books / {HIGHLIGHTS} highlights; a whole first "
        f"pass logs {whole_pass} lines; {time.monotonic() - started:.1f} s"
        f"\nwhere the kills landed: {dict(phases.most_common())}"
        f"\nlog lines before the kill, of a whole pass's: {in_progress_order(progress)}"
        f"\nrestarts: {dict(recovered)}"
        f"\nuser and upstream changes: {dict(expect.counts())}; mldoc read {read} pages"
    )
