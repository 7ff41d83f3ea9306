"""On-demand benchmark of `syncd --once` against the stand-in Readwise server.

    python -m tests.bench.first_pass [--books 3000 --highlights 50000 --seed 1]
                                     [--repeats 3] [--profile] [--workdir DIR] [--syncd-quiet]

Prints a table: the floor measured in this run (plain paging + plain writes of the same bytes),
the first pass into fresh vaults, a no-op pass and a pass after 10 upstream edits, each with wall
time (interpreter start-up included) and the child's own peak RSS, and whether each target is met.
It asserts nothing and is never collected by pytest. See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from syncd.standin import Library, StandinServer, generate_library
from tests.bench._harness import (
    MB,
    ROOT,
    TOKEN,
    ChildRun,
    WriteMode,
    edit_spread,
    editable_books,
    floor_paging,
    make_workspace,
    median,
    parse_summary,
    produced_files,
    run_child,
    settle_disk,
    syncd_argv,
    time_writes,
)

FIRST_PASS_FACTOR = 2.0  # first pass <= 2x floor
NOOP_TARGET_S = 0.5
EDIT_TARGET_S = 0.7
RSS_TARGET_MB = 200.0
EDITS = 10
IMPORT_CODE = '"import syncd.cli"'


@dataclass(frozen=True, slots=True)
class Repeated:
    """A measurement run several times: the median is what counts."""

    runs: list[ChildRun]

    @property
    def wall_s(self) -> float:
        return median(r.wall_s for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)

    def walls(self) -> str:
        return ", ".join(f"{r.wall_s:.3f}" for r in self.runs)


def _met(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def _counts(run: ChildRun) -> str:
    """What syncd said it did, summed over targets ("" if it printed no summary)."""
    counts = parse_summary(run.stdout)
    if not counts:
        return ""
    parts = []
    for name, c in counts.items():
        text = f"{name} +{c['created']} ~{c['updated']} ={c['unchanged']}"
        if c["failed"]:
            text += f" !{c['failed']}"
        parts.append(text)
    return " ".join(parts)


def _startup_times(repeats: int) -> tuple[float, float]:
    """Median wall seconds of a bare interpreter and of `import syncd.cli`."""

    def timed(code: str) -> float:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
        )
        return time.perf_counter() - started

    timed("import syncd.cli")  # warm the .pyc files and the page cache first
    bare = median(timed("pass") for _ in range(repeats))
    imported = median(timed("import syncd.cli") for _ in range(repeats))
    return bare, imported


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "-T", str(path)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        return out[-1].split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "?"


# ---- profiling ----------------------------------------------------------------------------------


def _label(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function  # a builtin, e.g. <method 'execute' of 'sqlite3.Cursor' objects>
    path = Path(filename)
    try:
        shown = path.relative_to(ROOT).as_posix()
    except ValueError:
        parts = path.parts
        cut = next(
            (i + 1 for i, p in enumerate(parts) if p in ("site-packages", "lib-dynload")), None
        )
        if cut is None:
            cut = next((i + 1 for i, p in enumerate(parts) if p.startswith("python3")), 0)
        shown = "/".join(parts[cut:]) or filename
    return f"{shown}:{line}({function})"


def _print_profile(title: str, prof: Path, top: int) -> None:
    stats = pstats.Stats(str(prof))
    table = stats.stats  # type: ignore[attr-defined]  # pstats keeps its dict untyped
    rows = [
        (key, calls, own, cum, callers)
        for key, (_prim, calls, own, cum, callers) in table.items()
        if not key[0].startswith("<frozen") and key[2] != "<built-in method builtins.exec>"
    ]
    print(f"\n{title}: top {top} by cumulative seconds (import machinery left out)")
    print(f"  {'cum s':>8} {'own s':>8} {'calls':>9}  function")
    for key, calls, own, cum, _callers in sorted(rows, key=lambda r: r[3], reverse=True)[:top]:
        print(f"  {cum:8.3f} {own:8.3f} {calls:9d}  {_label(key)}")
    print(f"{title}: top {top // 2} by own seconds, with the caller that spent most on it")
    for key, calls, own, cum, callers in sorted(rows, key=lambda r: r[2], reverse=True)[: top // 2]:
        via = max(callers.items(), key=lambda item: item[1][3])[0] if callers else None
        shown = f" <- {_label(via)}" if via else ""
        print(f"  {cum:8.3f} {own:8.3f} {calls:9d}  {_label(key)}{shown}")


def _profile_passes(tmp: Path, base_url: str, args: argparse.Namespace) -> None:
    """cProfile a first pass and then a no-op pass into one fresh workspace.

    Only syncd's main thread is profiled: time its writer threads spend shows up as waits.
    """
    workspace = make_workspace(tmp, "profiled", base_url)
    out_dir = Path(args.profile_dir) if args.profile_dir else tmp
    out_dir.mkdir(parents=True, exist_ok=True)
    quiet, top = args.syncd_quiet, args.top
    for name in ("first pass", "no-op pass"):
        prof = out_dir / f"{name.split()[0]}-pass.prof"
        argv = [sys.executable, "-m", "tests.bench._profile", str(prof), "--"]
        argv += syncd_argv(workspace.config, quiet=quiet)[3:]  # drop `python -m syncd`
        run = run_child(argv).check(f"profiled {name}")
        _print_profile(f"{name} under cProfile ({run.wall_s:.2f} s wall)", prof, top)


# ---- the benchmark ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Results:
    repeats: int
    bare_s: float
    import_s: float
    generated_s: float
    paging: list[dict[str, float]]
    files: int
    written_mb: float
    plain_s: float
    fsync_s: float
    atomic_s: float
    first: Repeated
    noop: Repeated
    edited: Repeated

    @property
    def paging_s(self) -> float:
        return median(p["seconds"] for p in self.paging)

    @property
    def floor_s(self) -> float:
        return self.paging_s + self.plain_s

    @property
    def floor_fsync_s(self) -> float:
        return self.paging_s + self.fsync_s


def measure(
    args: argparse.Namespace, tmp: Path, library: Library, base_url: str, generated_s: float
) -> Results:
    repeats = args.repeats
    bare_s, import_s = _startup_times(repeats)
    paging = [floor_paging(base_url) for _ in range(repeats)]

    workspace = make_workspace(tmp, "bench", base_url)
    argv = syncd_argv(workspace.config, quiet=args.syncd_quiet)
    first = run_child(argv).check("syncd first pass")
    firsts = [first]
    for extra in range(1, args.first_repeats):
        # Each further first pass gets its own fresh vaults and state; the median counts.
        fresh = make_workspace(tmp, f"bench-first-{extra}", base_url)
        again = run_child(syncd_argv(fresh.config, quiet=args.syncd_quiet)).check("first pass")
        firsts.append(again)
        # Not deleted until the end: on ext4 without a journal (this project's VMs), creating
        # files within minutes of deleting thousands scans every recently freed inode, which
        # made the next timed step up to 2x slower.

    files = produced_files(workspace)
    written_mb = sum(len(data) for data in files.values()) / MB
    # The disk is the noisiest part: the modes take turns, each into a fresh folder, and each
    # write floor is the median of `repeats` rounds.
    timings: dict[WriteMode, list[float]] = {"plain": [], "fsync": [], "atomic": []}
    for round_ in range(repeats):
        for mode, seconds in timings.items():
            settle_disk()
            seconds.append(time_writes(files, tmp / f"floor-{mode}-{round_}", mode))
    floors = {mode: median(seconds) for mode, seconds in timings.items()}

    noop = Repeated([run_child(argv).check("no-op pass") for _ in range(repeats)])
    candidates = editable_books(library)
    edit_runs = []
    for round_ in range(repeats):
        edit_spread(library, candidates, count=EDITS, round_=round_)
        edit_runs.append(run_child(argv).check("edit pass"))
    if args.keep:
        keep = Path(tempfile.mkdtemp(prefix="syncd-bench-kept-"))
        shutil.move(workspace.root, keep / "bench")
        print(f"kept the benchmark workspace in {keep / 'bench'}")
    return Results(
        repeats=repeats,
        bare_s=bare_s,
        import_s=import_s,
        generated_s=generated_s,
        paging=paging,
        files=len(files),
        written_mb=written_mb,
        plain_s=floors["plain"],
        fsync_s=floors["fsync"],
        atomic_s=floors["atomic"],
        first=Repeated(firsts),
        noop=noop,
        edited=Repeated(edit_runs),
    )


def _line(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:52} {seconds:8.3f} s  {note}".rstrip())


def _pass_row(label: str, wall_s: float, rss_mb: float, target: str, ok: bool, said: str) -> None:
    print(f"  {label:36} {wall_s:8.3f} {rss_mb:8.1f}  {target:24} {_met(ok):7} {said}".rstrip())


def report(r: Results) -> None:
    p0 = r.paging[0]
    rule = "-" * 100
    print(rule)
    print("context")
    _line("python -c pass (interpreter start-up)", r.bare_s)
    _line("python -c " + IMPORT_CODE, r.import_s)
    _line("generate_library (in this process, not timed below)", r.generated_s)
    print(
        f"  export: {int(p0['pages'])} pages, {p0['bytes'] / MB:.1f} MB JSON, "
        f"{int(p0['books'])} books, {int(p0['highlights'])} highlights; "
        f"syncd wrote {r.files} files, {r.written_mb:.1f} MB"
    )
    print("floor (measured in this run)")
    walls = ", ".join(f"{p['seconds']:.3f}" for p in r.paging)
    _line(f"export paging, httpx + json.loads (median of {r.repeats})", r.paging_s, f"({walls})")
    _line(f"write the same bytes, open/write (median of {r.repeats})", r.plain_s)
    _line(f"write the same bytes, open/write/fsync (median of {r.repeats})", r.fsync_s)
    _line("write, atomic (temp+fsync+rename+dir fsync)", r.atomic_s, "[info only]")
    _line("FLOOR = paging + write", r.floor_s)
    _line("FLOOR WITH FSYNC = paging + write/fsync", r.floor_fsync_s)

    print("syncd passes (subprocess; wall includes start-up; RSS is the child's own peak)")
    print(f"  {'pass':36} {'wall s':>8} {'RSS MB':>8}  {'target':24} {'':7} syncd said")
    first = r.first
    limit = FIRST_PASS_FACTOR * r.floor_s
    _pass_row(
        f"first pass, fresh (median of {len(first.runs)})"
        if len(first.runs) > 1
        else "first pass (fresh vaults + state)",
        first.wall_s,
        first.peak_rss_mb,
        f"<= 2x floor = {limit:.2f} s",
        first.wall_s <= limit,
        _counts(first.runs[0]),
    )
    if len(first.runs) > 1:
        print(f"  {'':36} runs: {first.walls()}")
    strict_ok = first.wall_s <= FIRST_PASS_FACTOR * r.floor_fsync_s
    print(f"  {'':36} cpu (user+sys) of the first pass: {first.runs[0].cpu_s:.2f} s")
    print(
        f"  {'':36} ratio {first.wall_s / r.floor_s:.2f}x floor, "
        f"{first.wall_s / r.floor_fsync_s:.2f}x floor with fsync (<= 2x: {_met(strict_ok)})"
    )
    _pass_row(
        f"no-op pass (median of {r.repeats})",
        r.noop.wall_s,
        r.noop.peak_rss_mb,
        f"<= {NOOP_TARGET_S} s",
        r.noop.wall_s <= NOOP_TARGET_S,
        _counts(r.noop.runs[-1]),
    )
    print(f"  {'':36} runs: {r.noop.walls()}")
    _pass_row(
        f"{EDITS} edits in {EDITS} books (median of {r.repeats})",
        r.edited.wall_s,
        r.edited.peak_rss_mb,
        f"<= {EDIT_TARGET_S} s",
        r.edited.wall_s <= EDIT_TARGET_S,
        _counts(r.edited.runs[-1]),
    )
    print(f"  {'':36} runs: {r.edited.walls()}")
    rss = {"first": first.peak_rss_mb, "no-op": r.noop.peak_rss_mb, "edits": r.edited.peak_rss_mb}
    worst = max(rss, key=lambda k: rss[k])
    print(
        f"  {f'peak RSS, every pass (worst: {worst})':36} {'':8} {rss[worst]:8.1f}  "
        f"{f'<= {RSS_TARGET_MB:.0f} MB':24} {_met(rss[worst] <= RSS_TARGET_MB)}"
    )
    print(f"  {'floor paging process, for scale':36} {'':8} {p0['peak_rss_mb']:8.1f}")
    print(rule)
    print("syncd said: +created ~updated =unchanged per target (its summary line, last run)")


def run(args: argparse.Namespace) -> int:
    print(
        f"syncd one-shot benchmark: {args.books} books, {args.highlights} highlights, "
        f"seed {args.seed}; targets obsidian + logseq; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    started = time.perf_counter()
    library = generate_library(books=args.books, highlights=args.highlights, seed=args.seed)
    generated_s = time.perf_counter() - started
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-", dir=args.workdir) as tmp_name,
        StandinServer(library, token=TOKEN) as server,
    ):
        tmp = Path(tmp_name)
        print(f"working in {tmp} ({_filesystem(tmp)}); measuring...", flush=True)
        report(measure(args, tmp, library, server.base_url, generated_s))
        if args.profile:
            _profile_passes(tmp, server.base_url, args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.first_pass", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--books", type=int, default=3000)
    parser.add_argument("--highlights", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each cheap measurement (median shown)"
    )
    parser.add_argument(
        "--workdir", default=None, help="parent of the temp folder (default: $TMPDIR)"
    )
    parser.add_argument(
        "--syncd-quiet", action="store_true", help="pass -q to syncd (no per-file log lines)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile a first pass and a no-op pass"
    )
    parser.add_argument("--top", type=int, default=30, help="rows of each profile table")
    parser.add_argument(
        "--profile-dir", default=None, help="keep the .prof files here (for snakeviz, pstats)"
    )
    parser.add_argument(
        "--first-repeats", type=int, default=1, help="first passes to run (median shown)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the vaults and state afterwards")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeats < 1 or args.first_repeats < 1:
        raise SystemExit("--repeats and --first-repeats must be at least 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
