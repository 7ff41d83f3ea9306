"""On-demand benchmark of what a quiet daemon costs (issue 14): start-up and resident memory.

    python -m tests.bench.daemon_memory [--books 3000 --highlights 50000 --seed 1]
        [--user-notes 20000] [--small-books 300 --small-highlights 5000] [--no-small]
        [--idle-seconds 60] [--passes 200] [--tracemalloc FILE] [--workdir DIR]
        [--before-tree DIR [--rounds 5]]

For each library (the big one, and a small one for "flat in library size"): one Obsidian vault
holding `--user-notes` unrelated notes of the user's, one Logseq graph; one `syncd --once` (the
first pass: its time, CPU and peak), then the daemon (poll interval 5 minutes) and:

- READY: spawn to the `daemon.ready` event (interpreter, imports, state open, start-up scan);
- idle VmRSS 15 s after READY (the daemon's own first pass has run by then);
- idle CPU over `--idle-seconds`, as % of one core;
- big library only: SIGHUP to a 5 s poll, one pass applying 10 upstream edits, VmRSS when its
  summary is logged and 4 s later (before the next pull); then a 1 s poll and `--passes`
  passes of 10 edits each, VmRSS after each: the growth from the first to the last.

Prints every figure beside the issue's target and the figure main had before issue 14's changes
(BEFORE), and MET/MISSED; asserts nothing; never collected by pytest. Times (READY, first pass,
CPU) vary with the machine's load; resident memory does not.
`--before-tree DIR`: a checkout of main before issue 14 (`git worktree add ../before bb6cd4a`);
the first pass (--once, big library) then runs `--rounds` times from each checkout, turn about,
into fresh vaults from the same server, and the medians are compared: "within 5% of today's"
measured on this machine now, not against a figure from another day's load.
`--tracemalloc FILE`: the daemon runs under tracemalloc (tests/bench/_tracemalloc.py) and appends
its biggest allocations to FILE when idle and after the edit pass (figures then include
tracemalloc's own overhead).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syncd.standin import Library, StandinServer, generate_library
from tests.bench._harness import (
    MB,
    ROOT,
    TOKEN,
    child_env,
    edit_spread,
    editable_books,
    make_workspace,
    run_child,
    syncd_argv,
)
from tests.bench.daemon import DaemonUnderTest

# Measured with this benchmark on main at ea4a870, before issue 14's changes: one run with the
# defaults but `--passes 100 --idle-seconds 30`, 2 shared cores under heavy load (so its times
# are long: the issue measured READY 2.7 s on a quiet machine). Memory does not depend on load.
BEFORE: dict[str, float] = {
    "ready_s": 9.15,
    "idle_rss_mb": 111.11,
    "small_idle_rss_mb": 49.57,
    "flat_mb": 61.54,
    "small_ready_s": 2.56,
    "edit_pass_rss_mb": 111.60,
    "return_mb": 0.48,
    "idle_cpu_pct": 0.0,
    "growth_mb": 6.05,
    "last_pass_rss_mb": 117.67,
    "first_pass_peak_mb": 132.56,
    "first_pass_s": 29.15,
    "first_pass_cpu_s": 11.23,
}

READY_TARGET_S = 1.5
IDLE_RSS_TARGET_MB = 60.0
FLAT_TARGET_MB = 10.0
RETURN_TOLERANCE_MB = 5.0
IDLE_CPU_TARGET_PCT = 0.5
GROWTH_TARGET_MB = 5.0
FIRST_PEAK_TARGET_MB = 200.0
FIRST_SLOWER_TOLERANCE = 0.05
IDLE_AFTER_READY_S = 15.0
EDIT_POLL_S = 5.0


@dataclass
class Figures:
    """What one library's run measured (the pass figures only for the big library)."""

    first_pass_s: float = 0.0
    first_pass_cpu_s: float = 0.0
    first_pass_peak_mb: float = 0.0
    # --before-tree: first-pass wall times (s) of this checkout and of the one before issue 14
    first_pass_now: list[float] = field(default_factory=list)
    first_pass_before: list[float] = field(default_factory=list)
    ready_s: float = 0.0
    idle_rss_mb: float = 0.0
    idle_cpu_pct: float = 0.0
    edit_pass_rss_mb: float = 0.0  # when the 10-edit pass's summary is logged
    edit_pass_later_rss_mb: float = 0.0  # 4 s later, before the next pull
    rss_over_passes: list[float] = field(default_factory=list)

    @property
    def growth_mb(self) -> float:
        rss = self.rss_over_passes
        return rss[-1] - rss[0] if len(rss) > 1 else 0.0


def write_user_notes(vault: Path, count: int) -> None:
    """`count` notes of the user's that syncd has nothing to do with, 100 to a folder."""
    for index in range(count):
        folder = vault / "Notes" / f"{index // 100:03d}"
        if index % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"note {index}.md").write_text(
            f"# Note {index}\n\ntags: #project/{index % 37} #idea\n\n"
            + f"A thought of the user's, linked to [[Note {(index * 7) % max(count, 1)}]].\n" * 6,
            encoding="utf-8",
        )


def measure(
    args: argparse.Namespace, *, books: int, highlights: int, passes: bool, workdir: Path
) -> Figures:
    figures = Figures()
    library = generate_library(books=books, highlights=highlights, seed=args.seed)
    with StandinServer(library, token=TOKEN) as server:
        if passes and args.before_tree is not None:
            _first_pass_turns(args, server.base_url, workdir, figures)
        ws = make_workspace(workdir, f"lib-{highlights}", server.base_url)
        write_user_notes(ws.obsidian, args.user_notes)
        first = run_child(syncd_argv(ws.config, quiet=True)).check("the first pass (--once)")
        figures.first_pass_s, figures.first_pass_cpu_s = first.wall_s, first.cpu_s
        figures.first_pass_peak_mb = first.peak_rss_mb

        base_config = ws.config.read_text(encoding="utf-8")
        ws.config.write_text(base_config + '\n[daemon]\npoll_interval = "5m"\n', encoding="utf-8")
        runner: tuple[str, ...] = ("-m", "syncd")
        if args.tracemalloc is not None:
            runner = ("-m", "tests.bench._tracemalloc", str(args.tracemalloc))
        spawned = time.time()
        daemon = DaemonUnderTest(ws.config, runner=runner)
        try:
            ready_at, _ = daemon.wait_for("daemon.ready", since=0)
            figures.ready_s = ready_at - spawned
            daemon.wait_for("pass.summary", since=0)
            time.sleep(max(0.0, ready_at + IDLE_AFTER_READY_S - time.time()))  # the idle window
            figures.idle_rss_mb = daemon.rss_mb()
            _tracemalloc_dump(daemon, args.tracemalloc, f"idle, {highlights} highlights")

            cpu_before, window_start = daemon.cpu_seconds(), time.monotonic()
            time.sleep(args.idle_seconds)  # the measurement window itself
            window = time.monotonic() - window_start
            figures.idle_cpu_pct = 100 * (daemon.cpu_seconds() - cpu_before) / window
            if passes:
                _edit_passes(daemon, ws.config, base_config, library, args, figures)
        finally:
            daemon.stop()
    return figures


def _first_pass_turns(
    args: argparse.Namespace, base_url: str, workdir: Path, figures: Figures
) -> None:
    """`--rounds` first passes from each checkout, turn about (before, now; now, before; ...),
    so a change in the machine's load falls on both alike."""
    trees = [
        (args.before_tree.resolve(), figures.first_pass_before),
        (ROOT, figures.first_pass_now),
    ]
    for round_ in range(args.rounds):
        for tree, times in trees if round_ % 2 == 0 else reversed(trees):
            ws = make_workspace(workdir, f"turn-{round_}-{len(times)}-{tree.name}", base_url)
            write_user_notes(ws.obsidian, args.user_notes)
            run = run_child(syncd_argv(ws.config, quiet=True), root=tree)
            times.append(run.check(f"the first pass from {tree}").wall_s)
            print(f"  first pass from {tree}: {run.wall_s:.2f} s", flush=True)
            shutil.rmtree(ws.root)


def _edit_passes(
    daemon: DaemonUnderTest,
    config: Path,
    base_config: str,
    library: Library,
    args: argparse.Namespace,
    figures: Figures,
) -> None:
    candidates = editable_books(library)
    _poll(daemon, config, base_config, EDIT_POLL_S)
    edit_spread(library, candidates, count=10, round_=0)
    _updated_pass(daemon)
    figures.edit_pass_rss_mb = daemon.rss_mb()
    time.sleep(EDIT_POLL_S * 0.8)  # within the poll interval (the next pull is >= 4.5 s away)
    figures.edit_pass_later_rss_mb = daemon.rss_mb()
    _tracemalloc_dump(daemon, args.tracemalloc, "after a 10-edit pass")

    _poll(daemon, config, base_config, 1.0)
    for round_ in range(1, args.passes + 1):
        edit_spread(library, candidates, count=10, round_=round_)
        summary_at = _updated_pass(daemon)
        # Each pass at the same point, once it is over (its memory released), not wherever the
        # summary happens to fall in the release: the growth then compares like with like.
        daemon.wait_for("memory.released", since=summary_at)
        figures.rss_over_passes.append(daemon.rss_mb())
    _tracemalloc_dump(daemon, args.tracemalloc, f"after {args.passes} more passes")


def _poll(daemon: DaemonUnderTest, config: Path, base_config: str, seconds: float) -> None:
    mark = daemon.mark()
    config.write_text(base_config + f"\n[daemon]\npoll_interval = {seconds:g}\n", encoding="utf-8")
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for("config.reloaded", since=mark)


def _updated_pass(daemon: DaemonUnderTest) -> int:
    """Wait for a pass that applied the edits just made (one begun before them may miss them);
    where its summary is in the daemon's events."""
    since = daemon.mark()
    found = daemon.wait_for("pass.summary", since=since)
    if sum(t["updated"] for t in found[1]["targets"]) == 0:
        since = daemon.mark()
        found = daemon.wait_for("pass.summary", since=since)
    return daemon.events.index(found, since)


def _tracemalloc_dump(daemon: DaemonUnderTest, out: Path | None, label: str) -> None:
    if out is None:
        return
    with out.open("a", encoding="utf-8") as handle:
        handle.write(f"\n######## {label}\n")
    size = out.stat().st_size
    daemon.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while out.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.2)  # polling the file the daemon appends to, not a guess at its speed
    time.sleep(0.5)  # the dump is written in one call; let it finish


def imports_rss_mb() -> float:
    """VmRSS of an interpreter that imported syncd's CLI and daemon, doing nothing else."""
    code = (
        "import syncd.cli, syncd.daemon\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=True
    )
    return int(out.stdout) * 1024 / MB


def _row(
    name: str, before: float | None, now: float, unit: str, target: str, met: bool | None
) -> None:
    shown_before = "" if before is None else f"{before:10.2f}"
    verdict = "" if met is None else ("MET" if met else "MISSED")
    print(f"{name:44} {shown_before:>10} {now:10.2f} {unit:3} {target:22} {verdict}")


def report(big: Figures, small: Figures | None, args: argparse.Namespace) -> None:
    b = BEFORE.get
    print()
    print(f"{'measure':44} {'before':>10} {'now':>10}     {'target':22}")
    first_before = b("first_pass_s")
    _row(
        "READY after spawn",
        b("ready_s"),
        big.ready_s,
        "s",
        f"<= {READY_TARGET_S:g} s",
        big.ready_s <= READY_TARGET_S,
    )
    _row(
        f"idle VmRSS {IDLE_AFTER_READY_S:g} s after READY",
        b("idle_rss_mb"),
        big.idle_rss_mb,
        "MB",
        f"<= {IDLE_RSS_TARGET_MB:g} MB",
        big.idle_rss_mb <= IDLE_RSS_TARGET_MB,
    )
    if small is not None:
        _row(
            f"idle VmRSS at {args.small_highlights} highlights",
            b("small_idle_rss_mb"),
            small.idle_rss_mb,
            "MB",
            "",
            None,
        )
        diff = big.idle_rss_mb - small.idle_rss_mb
        _row(
            f"  difference {args.highlights} - {args.small_highlights}",
            b("flat_mb"),
            diff,
            "MB",
            f"<= {FLAT_TARGET_MB:g} MB",
            diff <= FLAT_TARGET_MB,
        )
        _row("READY after spawn, small library", b("small_ready_s"), small.ready_s, "s", "", None)
    if big.rss_over_passes or big.edit_pass_rss_mb:
        _row(
            "VmRSS when a 10-edit pass ends",
            b("edit_pass_rss_mb"),
            big.edit_pass_rss_mb,
            "MB",
            "",
            None,
        )
        back = big.edit_pass_later_rss_mb - big.idle_rss_mb
        _row(
            f"  {EDIT_POLL_S * 0.8:g} s later, minus idle",
            b("return_mb"),
            back,
            "MB",
            f"within +-{RETURN_TOLERANCE_MB:g} MB",
            abs(back) <= RETURN_TOLERANCE_MB,
        )
    _row(
        f"idle CPU over {args.idle_seconds:g} s",
        b("idle_cpu_pct"),
        big.idle_cpu_pct,
        "%",
        f"<= {IDLE_CPU_TARGET_PCT:g}% of a core",
        big.idle_cpu_pct <= IDLE_CPU_TARGET_PCT,
    )
    if big.rss_over_passes:
        _row(
            f"VmRSS growth over {len(big.rss_over_passes)} passes",
            b("growth_mb"),
            big.growth_mb,
            "MB",
            f"<= {GROWTH_TARGET_MB:g} MB",
            big.growth_mb <= GROWTH_TARGET_MB,
        )
        _row(
            "  VmRSS after the last pass",
            b("last_pass_rss_mb"),
            big.rss_over_passes[-1],
            "MB",
            "",
            None,
        )
        rss = big.rss_over_passes
        if len(rss) >= 20:
            ends = statistics.mean(rss[-10:]) - statistics.mean(rss[:10])
            _row("  mean of the last 10 - of the first 10", None, ends, "MB", "", None)
            _row("  lowest / highest after a pass", min(rss), max(rss), "MB", "", None)
    _row(
        "first pass (--once) peak",
        b("first_pass_peak_mb"),
        big.first_pass_peak_mb,
        "MB",
        f"<= {FIRST_PEAK_TARGET_MB:g} MB",
        big.first_pass_peak_mb <= FIRST_PEAK_TARGET_MB,
    )
    if big.first_pass_before and big.first_pass_now:
        before_median = statistics.median(big.first_pass_before)
        now_median = statistics.median(big.first_pass_now)
        _row(
            f"first pass, median of {len(big.first_pass_now)} turns",
            before_median,
            now_median,
            "s",
            "<= before + 5%",
            now_median <= before_median * (1 + FIRST_SLOWER_TOLERANCE),
        )
        _row("  now / before", None, now_median / before_median, "x", "", None)
    else:
        first_limit = None if first_before is None else first_before * (1 + FIRST_SLOWER_TOLERANCE)
        _row(
            "first pass (--once) wall time",
            first_before,
            big.first_pass_s,
            "s",
            "<= before + 5% (--before-tree)",
            None if first_limit is None else big.first_pass_s <= first_limit,
        )
    _row("  its CPU (user + system)", b("first_pass_cpu_s"), big.first_pass_cpu_s, "s", "", None)
    _row("interpreter with syncd's imports", None, imports_rss_mb(), "MB", "(context)", None)
    print(
        "\nTimes and CPU depend on the machine's load (on a shared machine they vary by tens of "
        "percent between runs); resident memory does not."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--books", type=int, default=3000)
    parser.add_argument("--highlights", type=int, default=50_000)
    parser.add_argument("--small-books", type=int, default=300)
    parser.add_argument("--small-highlights", type=int, default=5000)
    parser.add_argument("--no-small", action="store_true", help="skip the small library")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--user-notes", type=int, default=20_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--tracemalloc", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--before-tree",
        type=Path,
        default=None,
        help="a checkout before issue 14: first passes from both, turn about",
    )
    parser.add_argument("--rounds", type=int, default=5, help="first passes from each tree")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="syncd-memory-bench-") as tmp:
        small = None
        if not args.no_small:
            print(f"small library: {args.small_books} books, {args.small_highlights} highlights")
            small = measure(
                args,
                books=args.small_books,
                highlights=args.small_highlights,
                passes=False,
                workdir=Path(tmp),
            )
        print(
            f"library: {args.books} books, {args.highlights} highlights, "
            f"{args.user_notes} user notes (seed {args.seed})"
        )
        big = measure(
            args,
            books=args.books,
            highlights=args.highlights,
            passes=args.passes > 0,
            workdir=Path(tmp),
        )
    report(big, small, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
