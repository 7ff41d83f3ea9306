"""syncd's CLI under tracemalloc, for `python -m tests.bench.daemon_memory --tracemalloc FILE`.

    python -m tests.bench._tracemalloc FILE ARGS...

On SIGUSR1 the process appends to FILE its VmRSS, /proc/self/smaps_rollup, glibc's mallinfo2,
the 25 source lines holding the most Python memory now, and the 25 that held the most at the
highest point since the previous dump (a thread samples the traced total every 50 ms and keeps a
snapshot whenever it rises 1 MB above the last one kept). tracemalloc costs memory and time of
its own: the figures of a run with it say where the memory is, not how much the daemon holds
without it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from types import FrameType

from syncd.cli import main

TOP = 25
_SAMPLE_S = 0.05
_RISE_BYTES = 2**20


class _PeakKeeper:
    """The snapshot taken nearest the highest traced total since the last `take`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tracemalloc.Snapshot | None = None
        self._kept_bytes = 0

    def sample_forever(self) -> None:
        while True:
            time.sleep(_SAMPLE_S)  # a sampling period, not a wait for another thread
            current, _peak = tracemalloc.get_traced_memory()
            if current > self._kept_bytes + _RISE_BYTES:
                snapshot = tracemalloc.take_snapshot()
                with self._lock:
                    self._kept, self._kept_bytes = snapshot, current

    def take(self) -> tuple[tracemalloc.Snapshot | None, int]:
        with self._lock:
            kept, kept_bytes = self._kept, self._kept_bytes
            self._kept, self._kept_bytes = None, tracemalloc.get_traced_memory()[0]
        return kept, kept_bytes


_PEAKS = _PeakKeeper()


_previous: list[tracemalloc.Snapshot] = []


def _dump(out: Path) -> None:
    snapshot = tracemalloc.take_snapshot()
    stats = snapshot.statistics("lineno")
    total = sum(stat.size for stat in stats)
    lines = [f"==== traced {total / 2**20:.1f} MB in {len(stats)} lines"]
    status = Path("/proc/self/status").read_text(encoding="ascii").splitlines()
    lines += [line for line in status if line.startswith(("VmRSS", "VmHWM"))]
    lines += Path("/proc/self/smaps_rollup").read_text(encoding="ascii").splitlines()[1:]
    lines += [
        f"{stat.size / 2**20:8.2f} MB {stat.count:8d} {stat.traceback}" for stat in stats[:TOP]
    ]
    lines += _big_mappings()
    lines += _mallinfo()
    if _previous:
        grown = [d for d in snapshot.compare_to(_previous[-1], "lineno") if d.count_diff > 0]
        grown.sort(key=lambda d: -d.count_diff)
        lines.append(f"==== more blocks than at the previous dump: {len(grown)} lines")
        lines += [
            f"{d.count_diff:+8d} blocks {d.size_diff / 2**10:+9.1f} KB {d.traceback}"
            for d in grown[:TOP]
        ]
    _previous[:] = [snapshot]
    peak, peak_bytes = _PEAKS.take()
    if peak is not None:
        lines.append(f"==== at the highest point since the last dump: {peak_bytes / 2**20:.1f} MB")
        lines += [
            f"{stat.size / 2**20:8.2f} MB {stat.count:8d} {stat.traceback}"
            for stat in peak.statistics("lineno")[:TOP]
        ]
    with out.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        # pymalloc's arenas (in use, and the bytes they hold): written by C to fd 2.
        saved = os.dup(2)
        os.dup2(handle.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo() -> list[str]:
    """glibc's own account of the heap: bytes obtained (arena), in use, free (fordblks)."""
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
    except (OSError, AttributeError):
        return []
    function.restype = _Mallinfo2
    info = function()
    return [
        f"mallinfo2 {name} {getattr(info, name) / 2**20:.2f} MB"
        for name in ("arena", "uordblks", "fordblks", "keepcost", "hblkhd")
    ] + [f"mallinfo2 ordblks {info.ordblks} free chunks"]


def _big_mappings(min_kb: int = 1024) -> list[str]:
    """The mappings holding at least `min_kb` resident: which heap (brk, a thread's arena, an
    mmap) the memory is in."""
    found: list[str] = []
    header = ""
    for line in Path("/proc/self/smaps").read_text(encoding="ascii").splitlines():
        if not line[:1].isupper() or ":" not in line.split()[0]:
            header = line
        elif line.startswith("Rss:") and int(line.split()[1]) >= min_kb:
            found.append(f"mapping {line.split()[1]:>8} kB  {header}")
    return found


if __name__ == "__main__":
    target = Path(sys.argv[1])

    def on_usr1(_signum: int, _frame: FrameType | None) -> None:
        _dump(target)

    tracemalloc.start()
    threading.Thread(target=_PEAKS.sample_forever, daemon=True).start()
    signal.signal(signal.SIGUSR1, on_usr1)
    sys.exit(main(sys.argv[2:]))
