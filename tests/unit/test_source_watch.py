"""The device-source poller: a settled change, an appearance and a vanishing are each handed on
once. Waits are on a threading.Event with a timeout, never sleeps."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.config import SourceConfig
from syncd.sources.source_watch import SourceChanged, SourceWatcher, signature

WAIT = 10.0


@pytest.fixture
def changes() -> queue.SimpleQueue[SourceChanged]:
    return queue.SimpleQueue()


@pytest.fixture
def watcher(changes: queue.SimpleQueue[SourceChanged]) -> Iterator[SourceWatcher]:
    running = SourceWatcher(changes.put, file_poll=0.01, folder_poll=0.01)
    yield running
    running.stop()


def test_append_vanish_and_appear(
    tmp_path: Path, watcher: SourceWatcher, changes: queue.SimpleQueue[SourceChanged]
) -> None:
    clippings = tmp_path / "My Clippings.txt"
    clippings.write_text("one\n", encoding="utf-8")
    source = SourceConfig("kindle", "kindle_clippings", clippings)
    watcher.start([source])
    assert changes.empty()  # the state at start is the baseline: the first pass reads it
    with clippings.open("a", encoding="utf-8") as handle:
        handle.write("two\n")
    assert changes.get(timeout=WAIT) == SourceChanged("kindle")
    clippings.unlink()  # unplugged
    assert changes.get(timeout=WAIT) == SourceChanged("kindle")
    clippings.write_text("one\ntwo\nthree\n", encoding="utf-8")  # plugged in again
    assert changes.get(timeout=WAIT) == SourceChanged("kindle")


def test_a_koreader_folder_signature_follows_its_sidecars(tmp_path: Path) -> None:
    source = SourceConfig("kobo", "koreader", tmp_path / "Books")
    assert signature(source) == ()  # not mounted
    sidecar = tmp_path / "Books" / "Dune.sdr" / "metadata.epub.lua"
    sidecar.parent.mkdir(parents=True)
    sidecar.write_text("return {}", encoding="utf-8")
    (tmp_path / "Books" / "Dune.epub").write_text("not a sidecar", encoding="utf-8")
    first = signature(source)
    assert [entry[0] for entry in first] == [str(sidecar)]
    sidecar.write_text("return { ['annotations'] = {} }", encoding="utf-8")
    assert signature(source) != first
