"""A Kindle's new clipping reaches the vault while Readwise cannot be reached or refuses the
token: the device sources are synced without Readwise, the pass still fails with Readwise's exit
code, nothing is asked of Readwise beyond that failure, and the next pass that reaches it
catches up with nothing doubled."""

from __future__ import annotations

import sqlite3

import pytest

from syncd.standin import Fault
from tests.e2e.conftest import Setup
from tests.e2e.test_local_sources_e2e import APPENDED, _device
from tests.e2e.test_once import _books
from tests.e2e.test_writeback_e2e import (
    _pick_book,
    add_child,
    bare,
    page_path,
    writes,
)
from tests.e2e.test_writeback_e2e import wb as wb  # the fixture: a library for write-back

T1 = "2024-03-05T09:15:00+00:00"
T2 = "2024-03-07T18:40:00+00:00"
T3 = "2024-03-09T08:00:00+00:00"
AUTH = "/api/v2/auth/"


def _watermark(setup: Setup) -> str:
    db = sqlite3.connect(f"file:{setup.state / 'state.sqlite3'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM source WHERE key='watermark'").fetchone()
    finally:
        db.close()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    ("fault", "attempts", "exit_code", "said"),
    [
        (Fault.status(401), 1, 3, "token rejected"),  # never retried
        (Fault.status(503), 3, 4, "Readwise unavailable"),  # the e2e config's max_attempts
    ],
    ids=["token-refused", "readwise-down"],
)
def test_a_new_clipping_is_synced_while_readwise_fails(
    setup: Setup, fault: Fault, attempts: int, exit_code: int, said: str
) -> None:
    device = _device(setup)
    first = setup.run("--once", now=T1)
    assert first.returncode == 0, first.stderr
    meditations = setup.obsidian / "Readwise" / "Books" / "Meditations.md"
    assert "Waste no more time." not in meditations.read_text(encoding="utf-8")
    watermark = _watermark(setup)
    readwise_pages = {
        path: (setup.obsidian / path).read_bytes()
        for path, _title, status in setup.pages("obs").values()
        if status == "live" and "Meditations" not in path
    }

    # While Readwise fails: a clipping is added on the Kindle, and a highlight in Readwise.
    clippings = device / "My Clippings.txt"
    clippings.write_bytes(clippings.read_bytes() + APPENDED.encode())
    book_id = next(
        book for book, (path, _t, status) in setup.pages("obs").items()
        if status == "live" and "Meditations" not in path
    )  # fmt: skip
    setup.library.add_highlight(book_id, text="Added in Readwise during the outage")
    setup.server.faults.add_path_fault(AUTH, fault, times=attempts)

    failed = setup.run("--once", now=T2)

    assert failed.returncode == exit_code, failed.stderr
    assert said in failed.stderr
    assert "pass.devices_only" in failed.stderr
    assert meditations.read_text(encoding="utf-8").count("Waste no more time.") == 1
    assert _watermark(setup) == watermark  # Readwise's changes since are still to be pulled
    for path, before in readwise_pages.items():
        assert (setup.obsidian / path).read_bytes() == before, path
    status = setup.run("status")
    assert said.split()[0].lower() in status.stdout.lower(), status.stdout

    # Readwise back: its highlight arrives, the clipping stays once.
    again = setup.run("--once", now=T3)
    assert again.returncode == 0, again.stderr
    every = "".join(p.read_text(encoding="utf-8") for p in setup.obsidian.rglob("*.md"))
    assert every.count("Added in Readwise during the outage") == 1
    assert meditations.read_text(encoding="utf-8").count("Waste no more time.") == 1


def test_no_device_sources_no_pass_without_readwise(setup: Setup) -> None:
    """Without device sources a refused token fails the pass as before: nothing written."""
    assert setup.run("--once", now=T1).returncode == 0
    before = {p: p.read_bytes() for p in setup.obsidian.rglob("*.md")}
    setup.server.faults.add_path_fault(AUTH, Fault.status(401), times=1)

    failed = setup.run("--once", now=T2)

    assert failed.returncode == 3
    assert "pass.devices_only" not in failed.stderr
    assert {p: p.read_bytes() for p in setup.obsidian.rglob("*.md")} == before


def test_edits_typed_during_the_outage_wait_and_are_sent_when_readwise_is_back(
    wb: Setup,
) -> None:
    """The device-only pass records the user's note in the outbox without sending it, and may
    re-render the page around it; the next pass that reaches Readwise sends it once."""
    device = _device(wb)
    assert wb.run("--once", now=T1).returncode == 0
    book = _pick_book(_books(wb))
    first = bare(book)[0]
    obs = page_path(wb, "obs", book.id)
    add_child(obs, first, "    - Note: typed while Readwise was away")
    clippings = device / "My Clippings.txt"
    clippings.write_bytes(clippings.read_bytes() + APPENDED.encode())
    wb.server.faults.add_path_fault(AUTH, Fault.status(401), times=1)

    failed = wb.run("--once", now=T2)

    assert failed.returncode == 3, failed.stderr
    assert "pass.devices_only" in failed.stderr
    assert writes(wb) == []  # nothing was asked of Readwise but the refused token check
    meditations = wb.obsidian / "Readwise" / "Books" / "Meditations.md"
    assert meditations.read_text(encoding="utf-8").count("Waste no more time.") == 1

    back = wb.run("--once", now=T3)

    assert back.returncode == 0, back.stderr
    assert wb.library.highlight(first.id).note == "typed while Readwise was away"
    assert [m for m, _p, _b in writes(wb)] == ["PATCH"]
    assert "typed while Readwise was away" in page_path(wb, "lsq", book.id).read_text("utf-8")
