"""On-demand benchmark of device sources (Kindle `My Clippings.txt`).

    python -m tests.bench.local_sources [--entries 20000] [--books 200] [--repeats 5]
                                        [--appends 40] [--workdir DIR]

1. parse + diff: a generated clippings file of `--entries` entries (highlights, notes on
   some of them, bookmarks, an extended highlight now and then, over `--books` books) is
   parsed and folded into a state store that already holds the previous read, with one clipping
   appended since: what every pass does after a save. Median of `--repeats`. Target: < 1 s.
   Also printed: the parse alone, and the first fold into an empty store.
2. append -> vault: a daemon (`syncd` without --once, one Obsidian target, the Kindle file as
   its only source) runs; `--appends` times one clipping is appended to the file, and the time
   from the write's close (the file settled) to the daemon's `file.written` event for that book
   is measured. Target: p95 < 2 s.

Prints figures and MET/MISSED; asserts nothing; never collected by pytest.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from syncd.config import SourceConfig
from syncd.sources.kindle_clippings import parse_clippings
from syncd.sources.local_pass import LocalSources
from syncd.sync.state import StateStore
from tests.bench.daemon import DaemonUnderTest

PARSE_DIFF_TARGET_S = 1.0
APPEND_P95_TARGET_S = 2.0
SEPARATOR = "=========="
WORDS = [
    *("the", "mind", "is", "everything", "what", "you", "think", "become", "courage"),
    *("patience", "memory", "silence", "river", "stone", "light", "window", "craft", "habit"),
    *("attention", "time", "small", "steps", "every", "day", "ordinary", "life"),
]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40))).capitalize() + "."


def _stamp(moment: datetime) -> str:
    return moment.strftime("%A, %B %-d, %Y %-I:%M:%S %p")


def entry(title: str, kind: str, location: int, text: str, moment: datetime) -> str:
    where = f"page {location // 15 + 1} | Location {location}-{location + 2}"
    if kind == "Note":
        where = f"page {location // 15 + 1} | Location {location + 2}"
    meta = f"- Your {kind} on {where} | Added on {_stamp(moment)}"
    return f"{title}\r\n{meta}\r\n\r\n{text}\r\n{SEPARATOR}\r\n"


def generate(entries: int, books: int, seed: int) -> str:
    rng = random.Random(seed)
    titles = [f"Book Number {n} (Author {n % 37}, Some)" for n in range(books)]
    moment = datetime(2020, 1, 1, 8, 0, 0)
    out = ["\ufeff"]
    locations = dict.fromkeys(titles, 10)
    written = 0
    while written < entries:
        title = rng.choice(titles)
        locations[title] += rng.randint(3, 60)
        location = locations[title]
        moment += timedelta(minutes=rng.randint(1, 90))
        text = _sentence(rng)
        out.append(entry(title, "Highlight", location, text, moment))
        written += 1
        roll = rng.random()
        if roll < 0.15 and written < entries:
            out.append(entry(title, "Note", location, _sentence(rng), moment))
            written += 1
        elif roll < 0.2 and written < entries:
            out.append(entry(title, "Highlight", location, text + " " + _sentence(rng), moment))
            written += 1  # extended
        elif roll < 0.25 and written < entries:
            out.append(entry(title, "Bookmark", location + 5, "", moment))
            written += 1
    return "".join(out)


def _fold(store: StateStore, sources: LocalSources) -> tuple[float, float]:
    """(wall, CPU) seconds of one read and fold."""
    started, cpu = time.perf_counter(), time.process_time()
    with store.transaction():
        sources.fold(store)
    return time.perf_counter() - started, time.process_time() - cpu


def parse_and_diff(workdir: Path, entries: int, books: int, repeats: int) -> bool:
    text = generate(entries, books, seed=1)
    clippings = workdir / "My Clippings.txt"
    clippings.write_bytes(text.encode("utf-8"))
    print(f"file: {entries} entries, {books} books, {len(text.encode()) / 1e6:.1f} MB")
    parse_times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = parse_clippings(text)
        parse_times.append(time.perf_counter() - started)
    highlights = sum(len(b.highlights) for b in result.books)
    print(f"parse alone: {statistics.median(parse_times):.3f} s ({highlights} highlights)")

    store = StateStore.open(workdir / "state")
    try:
        source = SourceConfig("kindle", "kindle_clippings", clippings)
        first, first_cpu = _fold(store, LocalSources([source]))
        print(
            f"first read into an empty store (parse + fold): {first:.3f} s, CPU {first_cpu:.3f} s"
        )
        steady: list[float] = []
        steady_cpu: list[float] = []
        moment = datetime(2030, 1, 1, 9, 0, 0)
        for n in range(repeats):
            moment += timedelta(minutes=5)
            with clippings.open("ab") as handle:
                handle.write(
                    entry(
                        "Book Number 3 (Author 3, Some)",
                        "Highlight",
                        900_000 + n,
                        f"Appended clipping {n}.",
                        moment,
                    ).encode()
                )
            wall, cpu = _fold(store, LocalSources([source]))  # as a new process: nothing cached
            steady.append(wall)
            steady_cpu.append(cpu)
        median_s = statistics.median(steady)
    finally:
        store.close()
    met = median_s < PARSE_DIFF_TARGET_S
    print(
        f"parse + diff after one appended clipping: median {median_s:.3f} s, "
        f"max {max(steady):.3f} s (target < {PARSE_DIFF_TARGET_S} s): {'MET' if met else 'MISSED'}"
    )
    # CPU time says what the code costs when other processes share the cores (wall time then
    # grows with the load average; `uptime` before a run tells how busy the machine is).
    print(f"  CPU time of the same: median {statistics.median(steady_cpu):.3f} s")
    return met


def append_latency(workdir: Path, appends: int) -> bool:
    vault = workdir / "vault"
    vault.mkdir()
    clippings = workdir / "kindle" / "My Clippings.txt"
    clippings.parent.mkdir()
    clippings.write_bytes(generate(2000, 40, seed=2).encode("utf-8"))
    config = workdir / "config.toml"
    config.write_text(
        f'[state]\ndir = "{workdir / "daemon-state"}"\n\n'
        f'[[sources]]\nname = "kindle"\nkind = "kindle_clippings"\npath = "{clippings}"\n\n'
        f'[[targets]]\nname = "obs"\nformat = "obsidian"\nvault = "{vault}"\n\n'
        '[daemon]\npoll_interval = "1h"\n',
        encoding="utf-8",
    )
    daemon = DaemonUnderTest(config)
    latencies = []
    try:
        daemon.wait_for("pass.summary", since=0)
        moment = datetime(2031, 1, 1, 9, 0, 0)
        for n in range(appends):
            mark = daemon.mark()
            moment += timedelta(minutes=3)
            title = f"Appended Book {n % 5} (Bench Author)"
            data = entry(title, "Highlight", 100 + n, f"Appended clipping number {n}.", moment)
            with clippings.open("ab") as handle:
                handle.write(data.encode())
            settled = time.time()  # closed: the file is complete
            received, _event = daemon.wait_for("file.written", since=mark, target="obs")
            latencies.append(received - settled)
            daemon.wait_for("pass.summary", since=mark)  # the next append starts a new pass
    finally:
        daemon.stop()
    latencies.sort()
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    met = p95 < APPEND_P95_TARGET_S
    print(
        f"append -> vault ({appends} appends): p50 {statistics.median(latencies):.2f} s, "
        f"p95 {p95:.2f} s, max {latencies[-1]:.2f} s (target p95 < {APPEND_P95_TARGET_S} s): "
        f"{'MET' if met else 'MISSED'}"
    )
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--books", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--appends", type=int, default=40)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="syncd-bench-local-") as tmp:
        root = Path(tmp)
        (root / "parse").mkdir()
        (root / "daemon").mkdir()
        parse_and_diff(root / "parse", args.entries, args.books, args.repeats)
        append_latency(root / "daemon", args.appends)
    return 0


if __name__ == "__main__":
    sys.exit(main())
