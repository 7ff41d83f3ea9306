"""Benchmark (on demand): a pass over a 50,000-highlight library after the user edited 100 notes
and Readwise changed 10 highlights. Target: under 1 s, reading only the changed notes.

    .venv/bin/python -m tests.bench.merge_pass [--books 3000 --highlights 50000] [--repeats 3]

How "reads only the changed notes" is known: each measured pass also runs once under
`strace -f -e trace=openat` and the .md files it opened are counted and compared with the notes of
the books Readwise changed (the user-edited ones must not be read at all, since nothing upstream
touched them). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from syncd.standin import StandinServer, generate_library
from tests.bench._harness import (
    TOKEN,
    child_env,
    edit_spread,
    editable_books,
    make_workspace,
    median,
    run_child,
    syncd_argv,
)

_OPENED = re.compile(r'openat\([^,]+, "([^"]+\.md)", (O_[A-Z_|]+)')


def _user_edits(workspace_roots: Sequence[Path], count: int, rng: random.Random) -> set[Path]:
    """Append a line of the user's own to `count` notes per vault (as a person would)."""
    edited: set[Path] = set()
    for root in workspace_roots:
        notes = sorted(p for p in root.rglob("*.md") if "logseq" not in p.relative_to(root).parts)
        for note in rng.sample(notes, count):
            with note.open("a", encoding="utf-8") as handle:
                handle.write("\n- my own thought on this\n")
            edited.add(note)
    return edited


def _opened_notes(argv: list[str]) -> set[str]:
    strace = shutil.which("strace")
    if strace is None:
        return set()
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as trace:
        subprocess.run(
            [strace, "-f", "-qq", "-e", "trace=openat", "-o", trace.name, *argv],
            env=child_env(),
            capture_output=True,
            check=True,
        )
        return {
            match[1]
            for match in _OPENED.finditer(Path(trace.name).read_text())
            if "O_WRONLY" not in match[2] and "/.syncd-" not in match[1]
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--books", type=int, default=3000)
    parser.add_argument("--highlights", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--user-edits", type=int, default=100)
    parser.add_argument("--upstream-edits", type=int, default=10)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    library = generate_library(books=args.books, highlights=args.highlights, seed=args.seed)
    candidates = editable_books(library)
    with (
        tempfile.TemporaryDirectory(prefix="syncd-merge-bench-") as tmp,
        StandinServer(library, token=TOKEN) as server,
    ):
        ws = make_workspace(Path(tmp), "ws", server.base_url)
        command = syncd_argv(ws.config, quiet=False)
        first = run_child(command).check("first pass")
        print(
            f"merge-pass benchmark: {args.books} books, {args.highlights} highlights; "
            f"first pass {first.wall_s:.2f} s"
        )
        walls: list[float] = []
        rss: list[float] = []
        for round_ in range(args.repeats):
            edited = _user_edits([ws.obsidian, ws.logseq], args.user_edits, rng)
            changed_books = edit_spread(
                library, candidates, count=args.upstream_edits, round_=round_ + 1
            )
            run = run_child(command).check("merge pass")
            walls.append(run.wall_s)
            rss.append(run.peak_rss_mb)
            print(
                f"  round {round_ + 1}: {run.wall_s:.3f} s, {run.peak_rss_mb:.1f} MB; "
                f"{run.stdout.strip()}"
            )
            # Same situation again, traced: new edits of the same size, then count .md opens.
            traced_edits = {
                str(p) for p in _user_edits([ws.obsidian, ws.logseq], args.user_edits, rng)
            }
            traced_books = edit_spread(
                library, candidates, count=args.upstream_edits, round_=round_ + 50
            )
            opened = _opened_notes(command)
            print(
                f"    traced twin: opened {len(opened)} notes for "
                f"{len(set(traced_books))} changed books x 2 targets; of the "
                f"{len(traced_edits)} notes the user edited, {len(traced_edits & opened)} were "
                "read (only those of a book Readwise also changed may be)"
            )
            del changed_books, edited
        target = median(walls)
        print(
            f"median {target:.3f} s (target < 1 s: {'MET' if target < 1 else 'MISSED'}), "
            f"peak RSS {max(rss):.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
