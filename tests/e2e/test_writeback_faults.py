"""The fault matrix over the write-back's requests: PATCH (a note), POST (a tag), DELETE (a tag).

For each kind of edit and each fault the stand-in can inject, on the first write request of the
pass (the one carrying the edit): the pass completes with the change in the stand-in's data
exactly once (no tag doubled, even when a reset or a cut-short answer hid that Readwise had
applied it), the waits the client asked for are the ones the fault calls for (Retry-After, else
backoff; injected, never slept), and the pass after sends nothing. A revoked token stops the
pass (TokenRejected, exit 3) with the change kept in the outbox, sent by the next pass. A 404
(highlight deleted in Readwise meanwhile) drops the change with a log line; a 400 is logged with
the field and not retried.

Passes run in-process over real HTTP. SYNCD_LONG=1 also repeats each retryable fault three
times in a row (the change still arrives once).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.config import load_config
from syncd.errors import TokenRejected
from syncd.model import Book
from syncd.runtime import build_targets, make_client
from syncd.sources.readwise import RetryPolicy
from syncd.sources.readwise_write import ReadwiseWriter, RequestPacer
from syncd.standin import Fault, Library, generate_library
from syncd.sync.engine import PassSummary, run_pass
from syncd.sync.state import StateStore
from syncd.writeback.push import WriteBack
from tests.e2e.conftest import TOKEN, Setup, make_setup
from tests.e2e.test_once import _books
from tests.e2e.test_writeback_e2e import _pick_book, _simple, add_child, enable_write_back, writes

LONG = os.environ.get("SYNCD_LONG") == "1"
RETRY = RetryPolicy(max_attempts=6, backoff_initial=1.0, backoff_max=8.0, timeout=0.5)
SLOW = 3.0  # a delayed answer: six times the client's timeout


@dataclass
class Clock:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run_in_process(setup: Setup, clock: Clock) -> PassSummary:
    cfg = load_config(setup.config, environ={})
    with (
        httpx.Client() as http,
        contextlib.closing(StateStore.open(cfg.state.dir)) as store,
    ):
        writer = ReadwiseWriter(
            http,
            token=TOKEN,
            base_url=cfg.readwise.base_url,
            retry=RETRY,
            sleep=clock.sleep,
            pacer=RequestPacer(clock=lambda: clock.now, sleep=clock.sleep),
        )
        return run_pass(
            store,
            make_client(http, cfg, TOKEN),
            build_targets(cfg),
            base_url=cfg.readwise.base_url,
            overlap=timedelta(seconds=300),
            now=lambda: datetime(2024, 3, 7, 18, 40).astimezone(),
            writeback=WriteBack(writer),
        )


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Setup]:
    library: Library = generate_library(books=8, highlights=80, seed=7)
    for setup in make_setup(tmp_path, library):
        enable_write_back(setup.config)
        run_in_process(setup, Clock())
        yield setup


def make_edit(setup: Setup, kind: str) -> tuple[int, str]:
    """One edit of `kind` in the Obsidian vault: (highlight id, the note or tag name)."""
    book = _pick_book({b.id: b for b in _books_of(setup)})
    root = setup.obsidian
    path = root / setup.pages("obs")[book.id][0]
    if kind == "note":
        h = _simple(book)[0]
        add_child(path, h, "    - Note: sent through a fault ⚡")
        return h.id, "sent through a fault ⚡"
    if kind == "tag_add":
        h = _simple(book)[0]
        add_child(path, h, "    - Tags: [[through a fault]]")
        return h.id, "through a fault"
    h = _simple(book)[1]
    setup.library.edit_highlight(h.id, tags=["to remove"])
    run_in_process(setup, Clock())  # the tag reaches the page first
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[[to remove]]", "", 1), encoding="utf-8")
    return h.id, "to remove"


def _books_of(setup: Setup) -> list[Book]:
    return list(_books(setup).values())


def arrived(setup: Setup, kind: str, hid: int, value: str) -> bool:
    highlight = setup.library.highlight(hid)
    names = [t.name for t in highlight.tags]
    assert len(names) == len(set(names)), f"a tag is there twice: {names}"
    if kind == "note":
        return highlight.note == value
    if kind == "tag_add":
        return names.count(value) == 1
    return value not in names


RETRYABLE = {
    "429 Retry-After 3": (Fault.throttle(retry_after=3), [3.0]),
    "429 no Retry-After": (Fault.throttle(retry_after=None), None),
    "429 Retry-After garbage": (Fault.throttle(retry_after="soon"), None),
    "500": (Fault.status(500), None),
    "502": (Fault.status(502), None),
    "503": (Fault.status(503), None),
    "504": (Fault.status(504), None),
    "reset mid-answer": (Fault.reset(0.3), None),
    "answer cut short": (Fault.truncate(0.3), None),
    "captive portal 200": (Fault.captive_portal(), None),
    "answer slower than the timeout": (Fault.delay(SLOW), None),
}
KINDS = ["note", "tag_add", "tag_remove"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault_name", sorted(RETRYABLE))
def test_a_retryable_fault_on_the_write_still_delivers_once(
    ws: Setup, kind: str, fault_name: str
) -> None:
    fault, waits = RETRYABLE[fault_name]
    hid, value = make_edit(ws, kind)
    before = len([r for r in ws.server.requests if r.method in ("PATCH", "POST", "DELETE")])
    repeats = 3 if LONG else 1
    ws.server.faults.add_write_faults({before + n: fault for n in range(1, repeats + 1)})
    clock = Clock()
    summary = run_in_process(ws, clock)
    assert summary.writeback is not None and len(summary.writeback.sent) == 1
    assert arrived(ws, kind, hid, value)
    if kind != "note" and fault.kind in ("reset", "truncate", "delay"):
        # Readwise applied the first request, only its answer was lost: the retry finds the tag
        # there (or gone) and sends nothing more. (A 204 with no body may even lose nothing.)
        assert len(clock.sleeps) <= 1
    else:
        assert len(clock.sleeps) == repeats
    if waits is not None:
        assert clock.sleeps == waits * repeats
    else:
        assert all(0 < s <= RETRY.backoff_max for s in clock.sleeps)
    sent = len(writes(ws))
    again = run_in_process(ws, Clock())
    assert again.writeback is not None and again.writeback.sent == []
    assert len(writes(ws)) == sent  # the pass after sends nothing
    assert ws.server.errors == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_revoked_token_stops_the_pass_and_the_change_waits(ws: Setup, kind: str) -> None:
    hid, value = make_edit(ws, kind)
    before = len([r for r in ws.server.requests if r.method in ("PATCH", "POST", "DELETE")])
    ws.server.faults.add_write_faults({before + 1: Fault.revoked()})
    with pytest.raises(TokenRejected) as caught:
        run_in_process(ws, Clock())
    assert caught.value.exit_code == 3 and TOKEN not in str(caught.value)
    assert not arrived(ws, kind, hid, value)
    summary = run_in_process(ws, Clock())  # the token works again: the outbox goes first
    assert summary.writeback is not None and len(summary.writeback.sent) == 1
    assert arrived(ws, kind, hid, value)


def test_a_highlight_deleted_in_readwise_meanwhile_is_dropped_with_a_log_line(ws: Setup) -> None:
    hid, _value = make_edit(ws, "note")
    ws.server.faults.add_path_fault(
        f"/api/v2/highlights/{hid}/", Fault.run(lambda: ws.library.delete_highlight(hid))
    )
    with capture_logs() as logs:
        summary = run_in_process(ws, Clock())
    assert summary.writeback is not None and len(summary.writeback.dropped) == 1
    assert [e["highlight_id"] for e in logs if e["event"] == "writeback.dropped"] == [hid]
    again = run_in_process(ws, Clock())
    assert again.writeback is not None and again.writeback.sent == []


def test_a_refused_value_is_logged_with_the_field_and_not_retried(ws: Setup) -> None:
    book = _pick_book({b.id: b for b in _books_of(ws)})
    h = _simple(book)[0]
    path = ws.obsidian / ws.pages("obs")[book.id][0]
    add_child(path, h, "    - Note: " + "x" * 9000)  # over Readwise's 8191 characters
    with capture_logs() as logs:
        summary = run_in_process(ws, Clock())
    assert summary.writeback is not None and len(summary.writeback.rejected) == 1
    (event,) = [e for e in logs if e["event"] == "writeback.rejected"]
    assert event["field"] == "note" and "8191" in event["message"]
    assert [r.method for r in ws.server.requests if r.method == "PATCH"] == ["PATCH"]
    assert not ws.library.highlight(h.id).note


def test_an_edit_saved_while_the_pass_sends_is_sent_by_the_next_pass(ws: Setup) -> None:
    """The user saves a second note while the first one is being sent (after the page was
    looked at, before syncd merges it): the merge keeps it, and the next pass sends it."""
    book = _pick_book({b.id: b for b in _books_of(ws)})
    first, second = _simple(book)[:2]
    path = ws.obsidian / ws.pages("obs")[book.id][0]
    add_child(path, first, "    - Note: the first note")
    saved = []

    def user_saves_meanwhile() -> None:
        if not saved:
            saved.append(True)
            add_child(path, second, "    - Note: saved during the pass")

    ws.server.faults.add_path_fault(
        f"/api/v2/highlights/{first.id}/", Fault.run(user_saves_meanwhile)
    )
    run_in_process(ws, Clock())
    assert ws.library.highlight(first.id).note == "the first note"
    assert saved and "saved during the pass" in path.read_text(encoding="utf-8")
    summary = run_in_process(ws, Clock())
    assert summary.writeback is not None and len(summary.writeback.sent) == 1
    assert ws.library.highlight(second.id).note == "saved during the pass"
