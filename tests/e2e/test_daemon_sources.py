"""The daemon watching device files: a Kindle unplugged (the file vanishes), plugged in again
with a new clipping (it appears), and a file cut short: nothing lost, nothing doubled. Every wait
is on a log event of the running daemon."""

from __future__ import annotations

from collections.abc import Callable

from syncd.standin import Fault
from tests.e2e.conftest import Setup
from tests.e2e.daemon_support import Daemon, poll_every
from tests.e2e.test_local_sources_e2e import APPENDED, _device

SECOND = (
    "Meditations (Marcus Aurelius)\r\n- Your Highlight on Location 1700-1701 | Added on Monday, "
    "January 8, 2024 9:00:00 AM\r\n\r\nThen act.\r\n==========\r\n"
)


def test_unplug_plug_in_and_a_cut_file(setup: Setup, start: Callable[..., Daemon]) -> None:
    device = _device(setup)
    poll_every(setup, 3600)  # Readwise is asked only at start: every later pass is the device's
    clippings = device / "My Clippings.txt"
    original = clippings.read_bytes()
    daemon = start()
    daemon.wait_for("pass.summary")
    page = setup.obsidian / "Readwise" / "Books" / "Meditations.md"
    written = page.read_text(encoding="utf-8")
    assert "You have power over your mind" in written

    mark = daemon.mark()
    unplugged = device.parent / "unplugged.txt"
    clippings.rename(unplugged)  # the Kindle is unplugged: its file is gone
    daemon.wait_for("source.missing", since=mark, source="kindle")
    daemon.wait_for("pass.summary", since=mark)
    assert page.read_text(encoding="utf-8") == written  # nothing removed

    mark = daemon.mark()
    clippings.write_bytes(original + APPENDED.encode())  # plugged in again, one clipping more
    daemon.wait_for("file.written", since=mark, path="Readwise/Books/Meditations.md")
    text = page.read_text(encoding="utf-8")
    assert text.count("Waste no more time.") == 1
    assert text.count("You have power over your mind") == 1

    mark = daemon.mark()
    clippings.write_bytes(original[: len(original) // 2])  # a copy cut short mid-entry
    daemon.wait_for("source.read", since=mark, source="kindle")
    daemon.wait_for("pass.summary", since=mark)
    after = page.read_text(encoding="utf-8")
    assert after == text  # a Kindle log cut short deletes nothing
    assert daemon.stop() < 5


def test_a_clipping_is_synced_while_readwise_refuses_the_token(
    setup: Setup, start: Callable[..., Daemon]
) -> None:
    device = _device(setup)
    poll_every(setup, 3600)
    daemon = start()
    daemon.wait_for("pass.summary")
    page = setup.obsidian / "Readwise" / "Books" / "Meditations.md"
    clippings = device / "My Clippings.txt"

    mark = daemon.mark()
    setup.server.faults.add_path_fault("/api/v2/auth/", Fault.status(401), times=1)
    clippings.write_bytes(clippings.read_bytes() + APPENDED.encode())  # the Kindle saved

    daemon.wait_for("pass.devices_only", since=mark)
    daemon.wait_for("file.written", since=mark, path="Readwise/Books/Meditations.md")
    failed = daemon.wait_for("pass.failed", since=mark, kind="TokenRejected")
    assert failed["retry_in_s"] >= 3600  # Readwise is asked again after the back-off
    assert page.read_text(encoding="utf-8").count("Waste no more time.") == 1

    # In the back-off, the Kindle saves again: synced at once, without asking Readwise.
    mark, asked = daemon.mark(), len(setup.server.requests)
    clippings.write_bytes(clippings.read_bytes() + SECOND.encode())
    daemon.wait_for("file.written", since=mark, path="Readwise/Books/Meditations.md")
    summary = daemon.wait_for("pass.summary", since=mark)
    assert summary["targets"][0]["updated"] >= 1
    assert len(setup.server.requests) == asked  # Readwise was not asked
    assert page.read_text(encoding="utf-8").count("Then act.") == 1
