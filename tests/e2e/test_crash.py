"""kill -9 of `syncd --once` at seeded random moments, then a normal pass: every vault whole.

Each trial (after the first, which is the very first pass into empty vaults): the user edits
pages in both formats and deletes a file, Readwise changes nearly every book, then a pass is
killed and a normal pass recovers. Each trial's kill point is a seeded fraction of a pass (one in
each of TRIALS equal slices, so even a few trials cover the whole pass): even trials kill after
that fraction of a whole pass's log lines, odd ones after that fraction of its wall time
(start-up and pull included, as the last trial measured it). The delay is the thing under test,
not a wait for something. The checks are in crash_checks.py.

The Obsidian target writes with a custom template set (tests/templates/merge-obsidian-quote:
block quotes between `---` separators, the note a paragraph), so every check also holds for
highlights that are not `- ` list items; the Logseq target keeps Readwise's defaults.

CI runs 6 trials on a 300-book library; SYNCD_LONG=1 runs 120 on 600 books, and
SYNCD_CRASH_TRIALS=N sets the number of trials. `-s` prints where the kills landed.

Two moments are rare at random, so a test each makes them on purpose: a kill between a first
pass's writes and its commit, and a kill inside SQLite's checkpoint.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from syncd.standin import generate_library
from syncd.sync.state import StateStore
from tests.e2e.conftest import ROOT, TOKEN, Setup, make_setup, use_templates, write_config
from tests.e2e.crash_checks import (
    CRASH_TEMPLATES,
    Expectations,
    MldocQueue,
    change_upstream,
    check_recovered,
    in_progress_order,
    kill_phase,
    kill_points,
    make_user_edits,
    parse_event,
    pass_time,
    progress_bucket,
    state_integrity,
)

LONG = os.environ.get("SYNCD_LONG") == "1"
TRIALS = int(os.environ.get("SYNCD_CRASH_TRIALS", "120" if LONG else "6"))
BOOKS, HIGHLIGHTS = (600, 6000) if LONG else (300, 4000)
# Logseq pages mldoc reads per trial besides those edited in the trial (every page at the end);
# a page the user never touched must equal syncd's render anyway.
MLDOC_SAMPLE = 40 if LONG else 0


@pytest.fixture
def big(tmp_path: Path) -> Iterator[Setup]:
    library = generate_library(books=BOOKS, highlights=HIGHLIGHTS, seed=11)
    for setup in make_setup(tmp_path, library):
        use_templates(setup.config, "obs", CRASH_TEMPLATES)
        yield setup


@dataclass(frozen=True)
class KillPlan:
    after_events: int | None = None  # SIGKILL once the child printed this many log lines
    after_seconds: float | None = None  # or this long after it was started

    def __str__(self) -> str:
        if self.after_events is not None:
            return f"kill after {self.after_events} log lines"
        if self.after_seconds is not None:
            return f"kill after {self.after_seconds:.3f} s"
        return "no kill"


@dataclass
class Run:
    killed: bool
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)


def run_once(setup: Setup, now: str, plan: KillPlan) -> Run:
    """`syncd --once` killed as `plan` says (or left to finish); every line it printed is read,
    so the pipe never fills, and the lines show where the kill landed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update(READWISE_TOKEN=TOKEN, PYTHONPATH=str(ROOT), SYNCD_NOW=now)
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "syncd", "--config", str(setup.config), "--once"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    run = Run(killed=False, seconds=0.0)

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            run.events.append(parse_event(line))
            if len(run.events) == plan.after_events:
                child.send_signal(signal.SIGKILL)  # from here: no lag through another thread

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if plan.after_seconds is not None:
        try:
            child.wait(timeout=plan.after_seconds)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
    code = child.wait(timeout=120)
    run.seconds = time.monotonic() - started
    reader.join(timeout=10)
    assert child.stderr is not None
    child.stderr.close()
    run.killed = code == -signal.SIGKILL
    assert run.killed or code == 0, f"exit {code}: {run.events[-5:]}"
    return run


def _calibrate(setup: Setup, tmp_path: Path) -> Run:
    """A whole first pass of the same library into empty vaults of their own: how many log lines
    and seconds a pass takes, the range the kill points are drawn from."""
    folder = tmp_path / "calibration"
    folder.mkdir()
    config, obsidian, logseq, state = write_config(folder, setup.server.base_url)
    use_templates(config, "obs", CRASH_TEMPLATES)
    own = Setup(setup.server, setup.library, config, obsidian, logseq, state)
    run = run_once(own, pass_time(0), KillPlan())
    pages = [p.read_text(encoding="utf-8") for p in obsidian.rglob("*.md")]
    # Block quotes (a page may start with a Reader heading highlight, `#### text`), no list.
    assert any("## Highlights\n> " in page for page in pages), "not the custom template"
    assert not any("## Highlights\n- " in page for page in pages), "not the custom template"
    return run


@pytest.mark.mldoc
def test_kill_9_at_random_moments_then_recover(big: Setup, tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(20241125)
    full = _calibrate(big, tmp_path)
    span = full.seconds  # how long a whole pass takes now: the range the delays are drawn from
    points = kill_points(rng, TRIALS)
    expect = Expectations()
    mldoc = MldocQueue(tmp_path / "mldoc")
    phases: Counter[str] = Counter()
    progress: Counter[str] = Counter()
    plans: Counter[str] = Counter()
    recovered: Counter[str] = Counter()
    for trial in range(TRIALS):
        now = pass_time(trial)
        if trial > 0:
            make_user_edits(big, rng, trial, expect)
            change_upstream(big, rng, trial, expect)
        if trial % 2 == 0:  # the very first pass (trial 0) is cut after a log line
            plan = KillPlan(after_events=max(1, math.ceil(points[trial] * len(full.events))))
            plans["after N log lines"] += 1
        else:
            plan = KillPlan(after_seconds=points[trial] * span)
            plans["after a delay"] += 1
        killed = run_once(big, now, plan)
        phases[kill_phase(killed.events, killed.killed)] += 1
        progress[progress_bucket(len(killed.events), len(full.events))] += 1
        recovery_started = time.monotonic()
        done = big.run("--once", now=now)
        # Every trial adds a section to most pages, so passes get slower: the killed pass and
        # the recovery together did one whole pass (and one more start-up).
        span = max(full.seconds, killed.seconds + time.monotonic() - recovery_started)
        label = f"trial {trial} ({plan})"
        assert done.returncode == 0, f"{label}: {done.stderr[-2000:]}"
        _tally_recovery(recovered, [parse_event(line) for line in done.stderr.splitlines()])
        check_recovered(big, expect, mldoc=mldoc, label=label, rng=rng, mldoc_sample=MLDOC_SAMPLE)
    final = big.run("--once", now=pass_time(TRIALS))
    assert final.returncode == 0, final.stderr[-2000:]
    assert "0 created, 0 updated" in final.stdout  # nothing left half done
    check_recovered(big, expect, mldoc=mldoc, label="final", rng=rng, mldoc_sample=None)
    read = mldoc.check()
    print(
        f"\n{TRIALS} trials on {BOOKS} books / {HIGHLIGHTS} highlights; a whole pass: "
        f"{len(full.events)} log lines, {full.seconds:.2f} s; {time.monotonic() - started:.1f} s"
        f"\nwhere the kills landed: {dict(phases.most_common())}"
        f"\nlog lines printed before the kill, of a whole pass's: {in_progress_order(progress)}"
        f"\nkill plans: {dict(plans)}"
        f"\nrecovery passes: {dict(recovered)}"
        f"\nuser and upstream changes: {dict(expect.counts())}; mldoc read {read} pages"
    )


def _tally_recovery(tally: Counter[str], events: list[dict[str, Any]]) -> None:
    """What the recovery pass found of the killed one: unfinished writes it finished or dropped,
    pages written but never recorded that it adopted."""
    intents = [e for e in events if e.get("event") == "recovered.intents"]
    if intents:
        tally["passes finishing or dropping writes"] += 1
        tally["writes finished"] += sum(int(e.get("finalized", 0)) for e in intents)
        tally["writes dropped"] += sum(int(e.get("dropped", 0)) for e in intents)
    for event in events:
        if event.get("event") == "pass.summary":
            adopted = sum(int(t.get("adopted", 0)) for t in event.get("targets", []))
            if adopted:
                tally["passes adopting unrecorded pages"] += 1
                tally["pages adopted"] += adopted


def test_pages_written_but_never_recorded_are_taken_back_as_syncds_own(
    setup: Setup, tmp_path: Path
) -> None:
    """kill -9 after a first pass wrote its pages and before it recorded them, made on purpose:
    every page file in place, no row for any. The next pass takes each back as its own page,
    untouched and recorded as a clean run records it; a title clash included (Logseq writes the
    title made unique with the book id in `title::`)."""
    folder = tmp_path / "clean"
    folder.mkdir()
    clean = Setup(setup.server, setup.library, *write_config(folder, setup.server.base_url))
    assert clean.run("--once", now=pass_time(0)).returncode == 0
    shutil.copytree(clean.obsidian, setup.obsidian, dirs_exist_ok=True)
    shutil.copytree(clean.logseq, setup.logseq, dirs_exist_ok=True)
    clashes = [p for p in setup.logseq.glob("pages/*.md") if "(highlights) (" in p.name]
    assert clashes, "the library should hold two books with the same title"

    again = setup.run("--once", now=pass_time(0))
    assert again.returncode == 0, again.stderr[-2000:]
    for target in ("obs", "lsq"):
        assert setup.pages(target) == clean.pages(target)  # same paths, titles, statuses
    store = StateStore.open(setup.state)
    try:
        for target in ("obs", "lsq"):
            mistaken = [p.path for p in store.pages(target) if p.user_modified]
            assert mistaken == [], f"{target}: syncd's own pages taken for user edits"
    finally:
        store.close()


_FILLER = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA wal_autocheckpoint=0")
db.execute("CREATE TABLE crash_filler (n INTEGER, blob BLOB)")
db.execute("BEGIN")
for n in range(3000):
    db.execute("INSERT INTO crash_filler VALUES (?, randomblob(1000))", (n,))
db.execute("COMMIT")
os._exit(0)  # killed: no checkpoint at close, the commit lives in the WAL only
"""


def _checkpoint_cut_short(database: Path) -> None:
    """What kill -9 in the middle of a checkpoint leaves: the WAL's newest copy of every page
    that lies inside the database file written back (page 1 first: its header now counts the
    pages to come), the pages beyond the file's end not yet."""
    wal = database.with_name(database.name + "-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    salts = wal[16:24]
    newest: dict[int, bytes] = {}
    for offset in range(32, len(wal) - page_size - 23, 24 + page_size):
        if wal[offset + 8 : offset + 16] != salts:
            break  # left over from an earlier generation of the WAL
        page = int.from_bytes(wal[offset : offset + 4], "big")
        newest[page] = wal[offset + 24 : offset + 24 + page_size]
    pages_in_file = database.stat().st_size // page_size
    with open(database, "r+b") as file:
        for page in sorted(p for p in newest if p <= pages_in_file):
            file.seek((page - 1) * page_size)
            file.write(newest[page])
    header = database.read_bytes()[:100]
    assert int.from_bytes(header[28:32], "big") > pages_in_file  # shorter than its header says


def test_kill_9_during_a_checkpoint_is_not_taken_for_damage(setup: Setup, tmp_path: Path) -> None:
    assert setup.run("--once", now=pass_time(0)).returncode == 0
    database = setup.state / "state.sqlite3"
    filler = subprocess.run([sys.executable, "-c", _FILLER, str(database)], check=False)
    assert filler.returncode == 0
    _checkpoint_cut_short(database)
    # SQLite itself reads the store whole (from a copy: opening it finishes the checkpoint).
    witness = tmp_path / "witness"
    shutil.copytree(setup.state, witness)
    db = sqlite3.connect(witness / "state.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM crash_filler").fetchone()[0] == 3000
    db.close()
    # So must syncd: no "damaged, run rebuild-state" (exit 7) for a checkpoint cut short.
    again = setup.run("--once", now=pass_time(0))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 created, 0 updated" in again.stdout
    assert state_integrity(setup.state) == "ok"
