"""On-demand benchmark: a first pass and a 10-edit pass with users' own templates, side by side
with Readwise's default templates, in the same run.

    python -m tests.bench.templates [--books 3000 --highlights 50000 --seed 1]
                                    [--first-repeats 2] [--repeats 3] [--workdir DIR]

One Obsidian and one Logseq target, as in tests/bench/first_pass.py; the custom set is
tests/bench/templates/ (an Obsidian callout with block ids, front matter and a custom file
name; a Logseq quote with child blocks, no header and a namespaced title). The variants take
turns (default, custom, default, ...) so disk noise hits both alike. Target: custom <= 1.5x the
default. It asserts nothing and is never collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from syncd.standin import StandinServer, generate_library
from tests.bench._harness import (
    TOKEN,
    ChildRun,
    edit_spread,
    editable_books,
    make_workspace,
    median,
    run_child,
    syncd_argv,
)

CUSTOM = Path(__file__).resolve().parent / "templates"
TARGET_RATIO = 1.5
EDITS = 10


def _wall(runs: Sequence[ChildRun]) -> float:
    return median(run.wall_s for run in runs)


def run(args: argparse.Namespace) -> int:
    print(
        f"syncd templates benchmark: {args.books} books, {args.highlights} highlights, seed "
        f"{args.seed}; obsidian + logseq; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    library = generate_library(books=args.books, highlights=args.highlights, seed=args.seed)
    variants = {"default": None, "custom": CUSTOM}
    first: dict[str, list[ChildRun]] = {name: [] for name in variants}
    edited: dict[str, list[ChildRun]] = {name: [] for name in variants}
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-tpl-", dir=args.workdir) as tmp_name,
        StandinServer(library, token=TOKEN) as server,
    ):
        tmp = Path(tmp_name)
        workspaces = {}
        for round_ in range(args.first_repeats):
            for name, templates in variants.items():
                space = make_workspace(
                    tmp, f"{name}-{round_}", server.base_url, templates=templates
                )
                argv = syncd_argv(space.config, quiet=True)
                first[name].append(run_child(argv).check(f"{name} first pass"))
                workspaces[name] = space
        candidates = editable_books(library)
        for round_ in range(args.repeats):
            edit_spread(library, candidates, count=EDITS, round_=round_)
            for name in variants:
                argv = syncd_argv(workspaces[name].config, quiet=True)
                edited[name].append(run_child(argv).check(f"{name} edit pass"))
                # The other variant sees the same edits on its turn of this round.
    rule = "-" * 96
    print(rule)
    print(f"  {'pass':34} {'default s':>10} {'custom s':>10} {'ratio':>7}  target  runs (custom)")
    for label, runs in (("first pass", first), (f"{EDITS} edits in {EDITS} books", edited)):
        default, custom = _wall(runs["default"]), _wall(runs["custom"])
        ratio = custom / default
        met = "MET" if ratio <= TARGET_RATIO else "MISSED"
        walls = ", ".join(f"{r.wall_s:.3f}" for r in runs["custom"])
        print(
            f"  {label:34} {default:10.3f} {custom:10.3f} {ratio:6.2f}x  "
            f"<= {TARGET_RATIO}x {met:6} {walls}"
        )
    for name in variants:
        cpu = median(r.cpu_s for r in first[name])
        rss = max(r.peak_rss_mb for r in first[name])
        print(f"  first pass {name:8} cpu {cpu:6.2f} s, peak RSS {rss:6.1f} MB")
    print(rule)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.templates")
    parser.add_argument("--books", type=int, default=3000)
    parser.add_argument("--highlights", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first-repeats", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
