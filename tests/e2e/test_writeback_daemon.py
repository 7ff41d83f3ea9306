"""The resident daemon sends the user's edits to Readwise, and a stop while it waits on Readwise
is prompt and loses nothing. Every wait is on a log event or a threading.Event with a timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.standin import Fault, generate_library
from tests.e2e.conftest import Setup, make_setup
from tests.e2e.daemon_support import WAIT, Daemon, Notifications, poll_every, start_daemons
from tests.e2e.test_once import _books
from tests.e2e.test_writeback_e2e import _pick_book, _simple, add_child, enable_write_back, writes


@pytest.fixture
def wb(tmp_path: Path) -> Iterator[Setup]:
    for setup in make_setup(tmp_path, generate_library(books=12, highlights=120, seed=7)):
        enable_write_back(setup.config)
        poll_every(setup, 1)
        yield setup


@pytest.fixture
def start(wb: Setup, notify: Notifications) -> Iterator[Callable[..., Daemon]]:
    yield from start_daemons(wb, notify)


def test_the_daemon_sends_a_note_and_the_passes_after_do_nothing(
    wb: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    daemon = start()
    notify.wait_for(lambda m: m == "READY=1")
    daemon.wait_for("pass.summary")
    book = _pick_book(_books(wb))
    h = _simple(book)[0]
    obs = wb.obsidian / wb.pages("obs")[book.id][0]
    mark = daemon.mark()
    add_child(obs, h, "    - Note: sent by the daemon")
    daemon.wait_for("writeback.sent", since=mark, highlight_id=h.id, field="note")
    assert wb.library.highlight(h.id).note == "sent by the daemon"
    lsq = wb.logseq / wb.pages("lsq")[book.id][0]
    daemon.wait_for("file.written", since=mark, target="lsq", book_id=book.id)
    assert lsq.read_text(encoding="utf-8").count("sent by the daemon") == 1
    # Two more passes (the echo comes back in the first): nothing sent, nothing written.
    settled = daemon.mark()
    daemon.wait_for("pass.summary", since=settled)
    quiet = daemon.mark()
    sent = len(writes(wb))
    daemon.wait_for("pass.summary", since=quiet)
    daemon.wait_for("pass.summary", since=daemon.mark())
    assert daemon.named("writeback.sent", since=quiet) == []
    assert daemon.named("file.written", since=quiet) == []
    assert len(writes(wb)) == sent
    assert daemon.stop() < 5


def test_sigterm_while_a_change_waits_on_readwise_is_prompt_and_loses_nothing(
    wb: Setup, notify: Notifications, start: Callable[..., Daemon]
) -> None:
    daemon = start()
    notify.wait_for(lambda m: m == "READY=1")
    daemon.wait_for("pass.summary")
    book = _pick_book(_books(wb))
    h = _simple(book)[0]
    entered, release = threading.Event(), threading.Event()

    def hang() -> None:
        entered.set()
        release.wait(WAIT)  # Readwise is slow to answer this PATCH

    wb.server.faults.add_path_fault(f"/api/v2/highlights/{h.id}/", Fault.run(hang))
    add_child(wb.obsidian / wb.pages("obs")[book.id][0], h, "    - Note: survives a stop")
    assert entered.wait(WAIT)
    started = time.monotonic()
    daemon.signal(15)
    assert daemon.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    release.set()

    again = start()
    again.wait_for("writeback.resume", changes=1)
    again.wait_for("writeback.sent", highlight_id=h.id)
    assert wb.library.highlight(h.id).note == "survives a stop"
    assert again.stop() < 5
