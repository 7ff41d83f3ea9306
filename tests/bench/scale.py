"""Benchmark (on demand): how a first pass and a no-op pass grow with the library.

    .venv/bin/python -m tests.bench.scale [--sizes 1000,10000,50000,200000]

For each size (highlights; books = highlights / 17, about a real library's ratio) it prints the
first pass and the no-op pass: wall seconds, peak RSS of the syncd process, and seconds per 1,000
highlights, so linear time and sub-linear memory show at a glance. Targets: linear first-pass time,
sub-linear memory, a no-op pass flat in library size apart from a stat per file. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from syncd.standin import StandinServer, generate_library
from tests.bench._harness import TOKEN, make_workspace, median, run_child, syncd_argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="first and no-op pass time per library size")
    parser.add_argument("--sizes", default="1000,10000,50000,200000")
    parser.add_argument("--repeats", type=int, default=3, help="no-op passes per size (median)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    print(
        f"{'highlights':>10} {'books':>6} | {'first s':>8} {'RSS MB':>7} {'s/1k hl':>8} | "
        f"{'no-op s':>8} {'RSS MB':>7}"
    )
    for size in sizes:
        books = max(1, size // 17)
        library = generate_library(books=books, highlights=size, seed=1)
        with (
            tempfile.TemporaryDirectory(prefix="syncd-scale-") as tmp,
            StandinServer(library, token=TOKEN) as server,
        ):
            ws = make_workspace(Path(tmp), "ws", server.base_url)
            command = syncd_argv(ws.config, quiet=True)
            first = run_child(command).check(f"first pass at {size}")
            noops = [run_child(command).check(f"no-op pass at {size}") for _ in range(args.repeats)]
            noop = median(run.wall_s for run in noops)
            print(
                f"{size:>10} {books:>6} | {first.wall_s:>8.2f} {first.peak_rss_mb:>7.1f} "
                f"{first.wall_s / size * 1000:>8.3f} | {noop:>8.3f} "
                f"{max(run.peak_rss_mb for run in noops):>7.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
