"""syncd.memory: cycles collected and glibc's malloc_trim called only where it exists."""

from __future__ import annotations

import gc
import platform
import sys
import weakref
from pathlib import Path

import pytest

from syncd import memory
from syncd.model import Book
from syncd.sync.state import StateStore


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_release_memory_trims_with_zero_padding_when_the_c_library_has_malloc_trim() -> None:
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    assert memory.release_memory(lambda: trim) is True
    assert calls == [0]


def test_release_memory_only_collects_where_there_is_no_malloc_trim() -> None:
    gc.disable()  # so only release_memory's own collection can free the cycle
    try:
        node = _Node()
        alive = weakref.ref(node)
        del node
        assert alive() is not None
        assert memory.release_memory(lambda: None) is False
        assert alive() is None
    finally:
        gc.enable()


def test_release_memory_without_collecting_only_trims() -> None:
    """After watcher events the daemon trims without a collection (milliseconds each time
    the user saves a note); the cycle is left to the next pass."""
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    gc.disable()
    try:
        node = _Node()
        alive = weakref.ref(node)
        del node
        assert memory.release_memory(lambda: trim, collect=False) is True
        assert calls == [0]
        assert alive() is not None
    finally:
        gc.enable()
        gc.collect()


def test_no_malloc_trim_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    memory.malloc_trim.cache_clear()
    monkeypatch.setattr(sys, "platform", "darwin")
    try:
        assert memory.malloc_trim() is None
    finally:
        memory.malloc_trim.cache_clear()


def test_a_c_library_without_the_symbol_gives_none() -> None:
    # musl has no malloc_trim: looking it up fails with AttributeError, which means "none".
    assert memory._symbol(None, "syncd_no_such_symbol") is None


def test_a_c_library_that_cannot_be_loaded_gives_none() -> None:
    assert memory._symbol("/nonexistent/libc-for-syncd.so", "malloc_trim") is None


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_glibc_malloc_trim_is_found_and_callable() -> None:
    memory.malloc_trim.cache_clear()
    trim = memory.malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)


def test_resident_mb_reads_vmrss(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tsyncd\nVmHWM:\t  90000 kB\nVmRSS:\t   51200 kB\n", encoding="ascii")
    assert memory.resident_mb(status) == 50.0
    assert memory.resident_mb(tmp_path / "missing") is None
    status.write_text("Name:\tsyncd\n", encoding="ascii")
    assert memory.resident_mb(status) is None


def test_the_store_forgets_the_books_kept_from_the_pull(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state")
    try:
        book = Book(id=7, title="Kept", author="A", category="books", source="kindle")
        with store.transaction():
            store.merge_book(book, rev=store.next_rev(), full=True)
        assert store._fresh  # kept parsed for the render that follows the pull
        store.release_memory()
        assert store._fresh == {}
        loaded = store.load_book(7)  # read again from the cache on disk
        assert loaded is not None and loaded.title == "Kept"
    finally:
        store.close()


def test_big_blocks_get_a_fixed_mmap_threshold_where_mallopt_exists() -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    assert memory.map_big_blocks_apart(lambda: mallopt) is True
    assert calls == [(-3, memory.BIG_BLOCK_BYTES)]  # M_MMAP_THRESHOLD
    assert memory.map_big_blocks_apart(lambda: None) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_mallopt_is_found() -> None:
    # Found, not called: the threshold would stay set for the rest of this test process.
    assert memory._mallopt() is not None
