"""Run syncd's CLI and report this process's own peak RSS: `python -m tests.bench._rss ARGS`.

ru_maxrss from wait4 is not enough here: Linux folds the RSS high-water mark of the process that
forked the child (the benchmark, holding a whole stand-in library) into the child's ru_maxrss.
VmHWM in /proc/self/status belongs to the exec'd program's own memory map, so it is syncd's alone.
"""

from __future__ import annotations

import sys

from syncd.cli import main


def _peak_kb() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


if __name__ == "__main__":
    code = main(sys.argv[1:])
    peak = _peak_kb()
    if peak is not None:
        sys.stderr.write(f"\nBENCH_VMHWM_KB {peak}\n")
    sys.exit(code)
