"""syncd's CLI under tracemalloc, for `python -m tests.bench.daemon_memory --tracemalloc FILE`.

    python -m tests.bench._tracemalloc FILE ARGS...

On SIGUSR1 the process appends to FILE its VmRSS, /proc/self/smaps_rollup and the 25 source
lines holding the most Python memory. tracemalloc costs memory and time of its own: the figures
of a run with it say where the memory is, not how much the daemon holds without it.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

from syncd.cli import main

TOP = 25


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
    signal.signal(signal.SIGUSR1, on_usr1)
    sys.exit(main(sys.argv[2:]))
