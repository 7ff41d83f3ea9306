"""`syncd` as a resident daemon in a subprocess, against the stand-in server, with a real
NOTIFY_SOCKET. Every wait is on an event (a JSON log line on the child's stderr, or a datagram
on the notify socket) with a timeout; nothing sleeps to synchronise."""

from __future__ import annotations

import json
import os
import platform
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.daemon import backoff_delay
from syncd.standin import Fault, StandinServer, generate_library
from syncd.sync.state import StateStore, text_hash
from tests.e2e.conftest import TOKEN, Setup, make_setup
from tests.e2e.daemon_support import (
    NOW,
    Daemon,
    Notifications,
    live_book,
    page_row,
    poll_every,
    start_daemons,
)


def _check_consistent(setup: Setup) -> None:
    """No unfinished write, every live page file holds exactly what the state says was written
    (or, for a page the user edited, still has the user's text), no temp file left."""
    store = StateStore.open(setup.state)
    try:
        assert store.integrity_check() == "ok"
        for target, root in (("obs", setup.obsidian), ("lsq", setup.logseq)):
            assert store.pending_intents(target) == []
            assert list(root.rglob(".syncd-*")) == []
            for page in store.pages(target):
                if page.status != "live":
                    continue
                text = (root / page.path).read_text(encoding="utf-8")
                if not page.user_modified:
                    assert text_hash(text) == page.written_hash, page.path
                ids = [i for s in page.sections for i in s.highlight_ids]
                assert len(ids) == len(set(ids))  # no highlight twice
    finally:
        store.close()


_GLIBC = platform.libc_ver()[0] == "glibc"


# --- tests ---------------------------------------------------------------------------------------


def test_ready_follows_upstream_records_edits_and_stops_cleanly(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    poll_every(setup, 1)
    daemon = start()
    notify.wait_for(lambda m: m == "READY=1")
    first = daemon.wait_for("pass.summary")
    assert first["targets"][0]["created"] > 0, daemon.events
    # What the pass parsed is given back before the daemon sleeps (malloc_trim on glibc).
    released = daemon.wait_for("memory.released")
    assert released["trimmed"] is _GLIBC
    assert released["rss_mb"] > 0
    notify.wait_for(lambda m: m.startswith("STATUS=last pass"))

    # Upstream change -> the vault follows within one poll (1 s +-10%, plus the pass).
    book_id, obs_file = live_book(setup, "obs")
    mark = daemon.mark()
    changed_at = time.monotonic()
    setup.library.add_highlight(book_id, text="Followed by the daemon")
    daemon.wait_for("file.written", since=mark, target="obs", book_id=book_id)
    assert time.monotonic() - changed_at < 1.1 + 2.0
    assert obs_file.read_text(encoding="utf-8").count("Followed by the daemon") == 1

    # A user edit is recorded in the state, and nothing is written back into the file.
    mark = daemon.mark()
    user_text = obs_file.read_text(encoding="utf-8") + "\nMy own line.\n"
    obs_file.write_text(user_text, encoding="utf-8")
    edited = daemon.wait_for("page.edited", since=mark, target="obs", book_id=book_id)
    assert edited["path"] == obs_file.relative_to(setup.obsidian).as_posix()
    row = page_row(setup, "obs", book_id)
    assert row["user_modified"] == 1
    assert row["seen_hash"] == text_hash(user_text)
    mtime = obs_file.stat().st_mtime_ns
    daemon.wait_for("pass.summary", since=daemon.mark())  # a whole pass after the edit
    assert obs_file.read_text(encoding="utf-8") == user_text
    assert obs_file.stat().st_mtime_ns == mtime
    # syncd's own writes never came back as edits: only the user's one was reported.
    assert [e["book_id"] for e in daemon.named("page.edited")] == [book_id]

    # status works while the daemon runs (no network), and a second daemon is refused.
    status = setup.run("status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["targets"][0]["last_run"]["result"] == "ok"
    second = setup.run()
    assert second.returncode == 6
    assert f"PID {daemon.process.pid}" in second.stderr

    mark = len(notify.messages)
    assert daemon.stop() < 5
    notify.wait_for(lambda m: m == "STOPPING=1", since=mark)
    assert daemon.named("daemon.stopped")


def test_memory_is_given_back_again_after_the_pass_s_own_writes_come_back(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    """A pass releases its memory, then its own writes arrive as watcher events and recording
    them fills SQLite's cache again: the daemon releases once more after them (issue 14)."""
    poll_every(setup, 1)
    daemon = start(args=["-v"])  # the release after events is logged at debug
    daemon.wait_for("memory.released")
    book_id, obs_file = live_book(setup, "obs")
    mark = daemon.mark()
    setup.library.add_highlight(book_id, text="Written by the pass, seen by the watcher")
    written = daemon.wait_for("file.written", since=mark, target="obs", book_id=book_id)
    since_write = daemon.events.index(written)
    released = daemon.wait_for("memory.released", since=since_write, after="watch")
    assert released["trimmed"] is _GLIBC
    assert obs_file.read_text(encoding="utf-8").count("seen by the watcher") == 1


def test_watchdog_pings_at_half_the_interval(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    poll_every(setup, 600)
    daemon = start(("WATCHDOG_USEC", "400000"))  # every 0.2 s
    notify.wait_for(lambda m: m == "READY=1")
    daemon.wait_for("pass.summary")
    mark = len(notify.messages)
    for _ in range(3):  # keeps coming while the loop is idle
        notify.wait_for(lambda m: m == "WATCHDOG=1", since=mark)
        mark = len(notify.messages)
    daemon.stop()


def test_sighup_with_a_bad_then_a_good_config(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    poll_every(setup, 1)
    good = setup.config.read_text(encoding="utf-8")
    daemon = start()
    notify.wait_for(lambda m: m == "READY=1")
    daemon.wait_for("pass.summary")

    mark = daemon.mark()
    setup.config.write_text(good.replace("[daemon]", "[deamon]"), encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    failed = daemon.wait_for("config.reload_failed", since=mark)
    assert any('unknown section (did you mean "daemon"?)' in p for p in failed["problems"])
    assert failed["level"] == "error"
    notify.wait_for(lambda m: m.startswith("STATUS=config reload failed"))
    # Still running on the old config: it keeps following Readwise.
    book_id, _path = live_book(setup, "obs")
    setup.library.add_highlight(book_id, text="After a bad reload")
    daemon.wait_for("file.written", since=mark, target="obs", book_id=book_id)

    mark = daemon.mark()
    lsq_off = good.replace('name = "lsq"', 'name = "lsq"\nenabled = false')
    setup.config.write_text(lsq_off.replace("poll_interval = 1", "poll_interval = 2"))
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config.reloaded", since=mark)
    assert reloaded["poll_interval_s"] == 2.0
    assert reloaded["targets"] == ["obs"]
    summary = daemon.wait_for("pass.summary", since=daemon.events.index(reloaded) + 1)
    assert [t["target"] for t in summary["targets"]] == ["obs"]
    assert daemon.stop() < 5


@pytest.fixture
def big(tmp_path: Path) -> Iterator[Setup]:
    yield from make_setup(tmp_path, generate_library(books=600, highlights=6000, seed=11))


@pytest.fixture
def start_big(big: Setup, notify: Notifications) -> Iterator[Callable[..., Daemon]]:
    yield from start_daemons(big, notify)


def test_sigterm_during_a_pass_finishes_the_batch_and_exits_0_within_5_s(
    big: Setup, notify: Notifications, start_big: Callable[..., Daemon]
) -> None:
    daemon = start_big()
    daemon.wait_for("file.written")
    mark = len(notify.messages)
    assert daemon.stop() < 5
    notify.wait_for(lambda m: m == "STOPPING=1", since=mark)
    assert daemon.named("pass.stopped"), "the pass should have been cut short"
    assert not daemon.named("pass.summary")
    _check_consistent(big)
    written = len(daemon.named("file.written"))
    live = sum(1 for t in ("obs", "lsq") for row in big.pages(t).values() if row[2] == "live")
    assert 0 < live == written  # every file reported written is recorded, nothing more
    # The next run picks up where it stopped.
    done = big.run("--once", now=NOW)
    assert done.returncode == 0, done.stderr[-2000:]
    _check_consistent(big)


def test_sigterm_while_waiting_for_readwise_exits_within_5_s(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    setup.server.faults.fail_next_exports(1, Fault.delay(60))  # a reply that takes a minute
    daemon = start()
    notify.wait_for(lambda m: m == "STATUS=pass running")
    assert daemon.stop() < 5
    stopped = daemon.wait_for("pass.stopped")
    assert "Readwise" in stopped["reason"]
    assert setup.pages("obs") == {}  # the pull was one transaction: nothing half-kept


def test_kill_9_during_a_pass_then_restart_is_consistent(
    big: Setup, notify: Notifications, start_big: Callable[..., Daemon]
) -> None:
    assert big.run("--once", now=NOW).returncode == 0
    # While no syncd runs: the user edits a page, and Readwise gains highlights in many books.
    book_id, edited = live_book(big, "obs", 3)
    user_text = edited.read_text(encoding="utf-8").replace(
        "## Highlights", "My line, keep it.\n\n## Highlights"
    )
    edited.write_text(user_text, encoding="utf-8")
    books = sorted(big.pages("obs"))
    added = {bid: f"Added upstream to {bid}" for bid in books[:400:2]}
    added[book_id] = f"Added upstream to {book_id}"
    for bid, text in added.items():
        big.library.add_highlight(bid, text=text)

    daemon = start_big()
    scan = daemon.wait_for("scan.done", target="obs")
    assert scan["edited"] == 1  # the start-up scan saw the edit before anything was written
    daemon.wait_for("file.written")
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait(timeout=10)

    again = start_big()
    summary = again.wait_for("pass.summary")
    assert all(t["failed"] == 0 for t in summary["targets"])
    again.stop()
    _check_consistent(big)
    text = edited.read_text(encoding="utf-8")
    assert text.startswith(user_text.rstrip("\n"))  # the user's version, whole
    assert text.count("My line, keep it.") == 1
    for target, root in (("obs", big.obsidian), ("lsq", big.logseq)):
        pages = big.pages(target)
        for bid, marker in added.items():
            page_text = (root / pages[bid][0]).read_text(encoding="utf-8")
            assert page_text.count(marker) == 1, (target, bid)  # not lost, not duplicated


def test_start_up_scan_finds_moves_and_deletions_made_while_stopped(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    assert setup.run("--once", now=NOW).returncode == 0
    moved_id, moved = live_book(setup, "obs", 0)
    deleted_id, deleted = live_book(setup, "obs", 1)
    target = setup.obsidian / "Readwise" / "Moved by me.md"
    os.rename(moved, target)
    deleted.unlink()
    setup.library.add_highlight(moved_id, text="Goes to the moved page")
    setup.library.add_highlight(deleted_id, text="Not recreated")

    daemon = start()
    scan = daemon.wait_for("scan.done", target="obs")
    assert (scan["moved"], scan["deleted_by_user"]) == (1, 1)
    daemon.wait_for("pass.summary")
    daemon.stop()
    pages = setup.pages("obs")
    assert pages[moved_id][0] == "Readwise/Moved by me.md"
    assert target.read_text(encoding="utf-8").count("Goes to the moved page") == 1
    assert not moved.exists() and not deleted.exists()
    assert pages[deleted_id][2] == "deleted_by_user"


def test_watcher_follows_renames_deletions_and_a_vanishing_vault(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    poll_every(setup, 600)
    daemon = start()
    daemon.wait_for("pass.summary")
    moved_id, moved = live_book(setup, "obs", 0)
    deleted_id, deleted = live_book(setup, "obs", 1)
    mark = daemon.mark()
    renamed = moved.with_name("Renamed in Obsidian.md")
    os.rename(moved, renamed)
    event = daemon.wait_for("page.moved", since=mark, book_id=moved_id)
    assert event["path"] == renamed.relative_to(setup.obsidian).as_posix()
    deleted.unlink()
    daemon.wait_for("page.deleted_by_user", since=mark, book_id=deleted_id)
    pages = setup.pages("obs")
    assert pages[moved_id][0] == event["path"]
    assert pages[deleted_id][2] == "deleted_by_user"

    # The whole graph folder goes away (a sync tool restoring it) and comes back.
    mark = daemon.mark()
    aside = setup.logseq.with_name("graph-aside")
    os.rename(setup.logseq, aside)
    daemon.wait_for("vault.missing", since=mark, target="lsq")
    os.rename(aside, setup.logseq)
    daemon.wait_for("vault.rearmed", since=mark, target="lsq")
    daemon.wait_for("scan.done", since=mark, target="lsq", reason="vault came back")
    lsq_id, lsq_file = live_book(setup, "lsq", 0)
    lsq_file.write_text(lsq_file.read_text(encoding="utf-8") + "- mine\n", encoding="utf-8")
    daemon.wait_for("page.edited", since=mark, target="lsq", book_id=lsq_id)
    assert len(daemon.named("vault.missing", since=mark)) == 1
    assert not daemon.named("page.deleted_by_user", since=mark)  # gone folder is not deletion
    daemon.stop()


def test_recovers_by_itself_when_readwise_comes_back(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    poll_every(setup, 1)
    daemon = start()
    daemon.wait_for("pass.summary")
    port = int(setup.server.base_url.rsplit(":", 1)[1])
    mark = daemon.mark()
    # stop() closes the listening socket; the connection httpx keeps alive would still be
    # served, so every request on it is answered with a TCP reset, which closes it.
    setup.server.faults.add_random(1, probability=1.0, faults=[Fault.reset()], exports_only=False)
    setup.server.stop()
    first = daemon.wait_for("pass.failed", since=mark)
    second = daemon.wait_for("pass.failed", since=daemon.events.index(first) + 1)
    assert second["retry_in_s"] == 2 * first["retry_in_s"]  # backing off, doubling
    notify.wait_for(lambda m: m.startswith("STATUS=error:"))
    book_id, obs_file = live_book(setup, "obs")
    setup.library.add_highlight(book_id, text="Written once Readwise is back")
    with StandinServer(setup.library, token=TOKEN, port=port):
        mark = daemon.mark()
        daemon.wait_for("pass.summary", since=mark)
        assert obs_file.read_text(encoding="utf-8").count("Written once Readwise is back") == 1
        daemon.stop()
    status = setup.run("status", "--json")
    assert json.loads(status.stdout)["targets"][0]["last_run"]["result"] == "ok"


def test_a_full_reconcile_every_full_reconcile_interval(
    setup: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    poll_every(setup, 1, "full_reconcile_interval = 2\n")
    daemon = start()
    first = daemon.wait_for("pass.summary")
    assert first["full"] is True  # nothing pulled yet: the first pull is a full one anyway
    incremental = daemon.wait_for("pass.summary", full=False)
    later = daemon.wait_for("pass.summary", since=daemon.events.index(incremental) + 1, full=True)
    assert later["full"] is True
    daemon.stop()
    exports = [r for r in setup.server.requests if "/export" in r.path]
    assert any("updatedAfter" in r.query for r in exports)
    assert sum("updatedAfter" not in r.query for r in exports) >= 2


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff_delay(300, n) for n in range(1, 7)] == [300, 600, 1200, 2400, 3600, 3600]
    assert backoff_delay(7200, 3) == 7200  # a poll interval above the cap is kept


def test_dry_run_is_refused_without_once(setup: Setup) -> None:
    result = setup.run("--dry-run")
    assert result.returncode == 2
    assert "--dry-run needs --once" in result.stderr
