"""Giving a pass's memory back to the operating system, so an idle daemon is small.

A pass over a big library parses books and pages by the thousand; when it ends, Python frees
them, but the allocator keeps the freed memory in the process: glibc's malloc holds on to freed
heap (the top of the heap only goes back past a threshold, the middle never), so the resident
size stays near the pass's peak for as long as the daemon sleeps. `release_memory` collects
reference cycles and then asks glibc to return every whole free page (`malloc_trim(0)`, which
also releases free pages in the middle of the heap, with madvise). Elsewhere (musl, macOS) there
is no such call and only the collection runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys
from collections.abc import Callable
from pathlib import Path

Trim = Callable[[int], int]


@functools.cache
def malloc_trim() -> Trim | None:
    """glibc's malloc_trim, or None where the C library has none (not Linux, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    return _symbol(ctypes.util.find_library("c"), "malloc_trim")


def _symbol(library: str | None, name: str) -> Trim | None:
    try:
        function = getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    trim: Trim = function
    return trim


# mallopt(3) parameter: requests of at least this size get their own mapping.
_M_MMAP_THRESHOLD = -3
# glibc's default starts at 128 KiB but rises (up to 32 MB) each time such a block is freed, so
# after a pass the big strings of later passes (page texts, JSON rows) land in the heap among
# small long-lived objects, and their pages stay resident. A fixed threshold keeps them apart:
# freed, they go back to the OS at once.
BIG_BLOCK_BYTES = 128 * 1024


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    mallopt: Callable[[int, int], int] = function
    return mallopt


def map_big_blocks_apart(
    mallopt: Callable[[], Callable[[int, int], int] | None] = _mallopt,
) -> bool:
    """For a long-running process: blocks of BIG_BLOCK_BYTES and more always get their own
    mapping (glibc), so freeing them returns their memory. True if the C library took it."""
    function = mallopt()
    return function is not None and function(_M_MMAP_THRESHOLD, BIG_BLOCK_BYTES) == 1


def release_memory(trim: Callable[[], Trim | None] = malloc_trim, *, collect: bool = True) -> bool:
    """Collect cycles (`collect`: some milliseconds), then give free heap pages back to the OS
    where the C library can (a fraction of a millisecond). True if the C library was asked to
    trim."""
    if collect:
        gc.collect()
    function = trim()
    if function is None:
        return False
    function(0)
    return True


def resident_mb(status: Path = Path("/proc/self/status")) -> float | None:
    """This process's resident memory (VmRSS) in MB, where /proc tells it (Linux)."""
    try:
        with status.open(encoding="ascii") as lines:
            for line in lines:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None
