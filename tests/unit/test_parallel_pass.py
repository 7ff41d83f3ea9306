"""A pass split over two processes (one target each) ends exactly like the same pass in one."""

from __future__ import annotations

import functools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.adapters.base import Adapter
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.adapters.vault import VaultFiles
from syncd.sync import engine
from syncd.sync.engine import PassSummary, TargetRuntime, run_pass
from syncd.sync.plan import TargetPolicy
from syncd.sync.state import StateStore
from tests.harness import SECTION_TIME, MemorySource

BOOKS = 60


def _runtime(root: Path, name: str, adapter: Adapter, folder: str) -> TargetRuntime:
    files = VaultFiles(root)
    return TargetRuntime(
        policy=TargetPolicy(name=name, vault=root),
        adapter=adapter,
        read_file=files.read,
        write_file=files.write,
        write_batch=files.write_batch,
        cleanup_temp=files.cleanup_temp,
        list_files=functools.partial(files.list_markdown, folder),
    )


def _library() -> MemorySource:
    source = MemorySource()
    for book_id in range(1, BOOKS + 1):
        texts = [f"Highlight {n} of book {book_id}" for n in range(1, 6)]
        source.add_book(book_id, f"Book number {book_id}", texts)
    return source


class _World:
    """Two vaults, one state store, one library: what one syncd sees."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.obsidian = root / "vault"
        self.logseq = root / "graph"
        self.obsidian.mkdir(parents=True)
        self.logseq.mkdir(parents=True)
        self.source = _library()
        self.clock = datetime(2030, 1, 1, tzinfo=UTC)

    def sync(self) -> PassSummary:
        self.clock += timedelta(hours=1)
        clock = self.clock
        store = StateStore.open(self.root / "state")
        try:
            return run_pass(
                store,
                self.source,
                [
                    _runtime(self.obsidian, "obs", ObsidianAdapter(), ""),
                    _runtime(self.logseq, "lsq", LogseqAdapter(), "pages"),
                ],
                base_url="memory://",
                overlap=timedelta(0),
                now=lambda: SECTION_TIME,
                clock=lambda: clock,
            )
        finally:
            store.close()

    def snapshot(self) -> tuple[dict[str, bytes], list[tuple[object, ...]]]:
        files = {
            p.relative_to(self.root).as_posix(): p.read_bytes()
            for p in sorted(self.root.rglob("*.md"))
        }
        db = sqlite3.connect(self.root / "state" / "state.sqlite3")
        try:
            rows = db.execute(
                "SELECT target, book_id, path, status, user_modified, sections, written_hash, "
                "blocks, tombstones, head, pending FROM pages ORDER BY target, book_id"
            ).fetchall()
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            db.close()
        return files, rows

    def user_and_upstream_changes(self) -> None:
        page = self.obsidian / "Readwise" / "Articles" / "Book number 7.md"
        page.write_text(page.read_text(encoding="utf-8") + "\nMy own line.\n", encoding="utf-8")
        (self.logseq / "pages" / "Book number 9 (highlights).md").unlink()
        for book_id in range(1, BOOKS + 1, 3):
            self.source.add_highlight(book_id, f"Added later to {book_id}")
        self.source.edit(self.source.live_ids(7)[0], text="Edited upstream, book 7")


def _run(root: Path, monkeypatch: pytest.MonkeyPatch, *, parallel: bool) -> list[object]:
    monkeypatch.setattr(engine, "PARALLEL_MIN_BOOKS", 1 if parallel else 10**9)
    monkeypatch.setattr(engine, "FORK_BEFORE_FULL_PULL", parallel)
    world = _World(root)
    first = world.sync()
    after_first = world.snapshot()
    world.user_and_upstream_changes()
    second = world.sync()
    summaries = [
        [
            (t.name, t.created, t.updated, t.unchanged, t.failed, t.highlights_added)
            for t in s.targets
        ]
        for s in (first, second)
    ]
    return [summaries, after_first, world.snapshot()]


def test_two_processes_write_exactly_what_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked: list[str] = []
    real_start, real_gated = engine.start_worker, engine.start_gated_worker

    def counting(work):  # type: ignore[no-untyped-def]
        forked.append("after the pull")
        return real_start(work)

    def counting_gated(work):  # type: ignore[no-untyped-def]
        forked.append("before the pull")
        return real_gated(work)

    monkeypatch.setattr(engine, "start_worker", counting)
    monkeypatch.setattr(engine, "start_gated_worker", counting_gated)
    two = _run(tmp_path / "two", monkeypatch, parallel=True)
    # Both passes really ran the logseq target in a worker: the first (a full pull) forked it
    # before the pull, the second (incremental) after it.
    assert forked == ["before the pull", "after the pull"]
    forked.clear()
    one = _run(tmp_path / "one", monkeypatch, parallel=False)
    assert forked == []
    assert two == one
    summaries = two[0]
    assert summaries[0] == [("obs", BOOKS, 0, 0, 0, BOOKS * 5), ("lsq", BOOKS, 0, 0, 0, BOOKS * 5)]
