"""The daemon watching device files: a Kindle unplugged (the file vanishes), plugged in again
with a new clipping (it appears), and a file cut short: nothing lost, nothing doubled. Every wait
is on a log event of the running daemon."""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.conftest import Setup
from tests.e2e.daemon_support import Daemon, poll_every
from tests.e2e.test_local_sources_e2e import APPENDED, _device


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
