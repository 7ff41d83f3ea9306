"""kill -9 of `syncd --once` mid-pass, then a normal pass: every file whole, none duplicated.

The kill lands after the N-th log event the child printed (N seeded per trial), so it hits the
pull, the intents, the writes and the commits at different points without timing guesses.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from syncd.adapters.base import Adapter, Section
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.standin import generate_library
from syncd.sync.state import StateStore
from tests.e2e.conftest import ROOT, TOKEN, Setup, make_setup

NOW = "2024-06-01T10:00:00+00:00"


@pytest.fixture
def big(tmp_path: Path) -> Iterator[Setup]:
    yield from make_setup(tmp_path, generate_library(books=300, highlights=4000, seed=11))


def _kill_after_events(setup: Setup, events: int) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update(READWISE_TOKEN=TOKEN, PYTHONPATH=str(ROOT), SYNCD_NOW=NOW)
    child = subprocess.Popen(
        [sys.executable, "-m", "syncd", "--config", str(setup.config), "--once"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert child.stderr is not None
    seen = 0
    for _line in child.stderr:
        seen += 1
        if seen >= events:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    child.stderr.close()
    return seen


def _check_consistent(setup: Setup) -> None:
    store = StateStore.open(setup.state)
    try:
        assert store.integrity_check() == "ok"
        adapters: list[tuple[str, Path, Adapter]] = [
            ("obs", setup.obsidian, ObsidianAdapter()),
            ("lsq", setup.logseq, LogseqAdapter()),
        ]
        for target, root, adapter in adapters:
            assert store.pending_intents(target) == []
            temp = [p for p in root.rglob(".syncd-*")]
            assert temp == []
            for page in store.pages(target):
                if page.status != "live":
                    continue
                book = store.load_book(page.book_id)
                assert book is not None
                text = (root / page.path).read_text(encoding="utf-8")
                local = datetime.fromisoformat(NOW).astimezone()
                sections = [Section(s.kind, local, s.highlight_ids) for s in page.sections]
                assert text == adapter.render_page(book, sections, page.page_title)
                ids = [i for s in page.sections for i in s.highlight_ids]
                assert len(ids) == len(set(ids))  # no highlight in two sections
            files = {
                p.relative_to(root).as_posix()
                for p in root.rglob("*.md")
                if p.relative_to(root).parts[0] != "logseq"
            }
            assert files == {p.path for p in store.pages(target) if p.status == "live"}
    finally:
        store.close()


def test_kill_9_at_random_moments_then_recover(big: Setup) -> None:
    rng = random.Random(20241125)
    trials = int(os.environ.get("SYNCD_CRASH_TRIALS", "6"))
    for trial in range(trials):
        if trial % 2 == 1:  # give later passes something to append and rewrite
            snapshot = big.library.snapshot()
            for book_id in rng.sample(sorted(snapshot.exported_book_ids()), 5):
                big.library.add_highlight(book_id, text=f"Added before trial {trial}")
        _kill_after_events(big, rng.randint(1, 500))
        done = big.run("--once", now=NOW)
        assert done.returncode == 0, done.stderr[-2000:]
        _check_consistent(big)
    final = big.run("--once", now=NOW)
    assert "0 created, 0 updated" in final.stdout
    db = sqlite3.connect(big.state / "state.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
