"""Benchmark (on demand): what `write_back` costs a pass, and a pass that sends 100 notes.

    .venv/bin/python -m tests.bench.writeback [--books 3000 --highlights 50000] [--repeats 3]

Figures, each the median of `--repeats` runs of `syncd --once` as a child process: a no-op pass
with `write_back` off, the same with it on (every live page's file is read and hashed to find
the edited ones), a pass that finds and sends 100 notes typed into 100 pages (50 per vault; the
stand-in answers at once, so this is syncd's own time), and the no-op pass after it (the 100
edited pages are read and diffed again, nothing is sent). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from syncd.standin import StandinServer, generate_library
from tests.bench._harness import TOKEN, make_workspace, median, run_child, syncd_argv


def _enable(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    for fmt in ("obsidian", "logseq"):
        text = text.replace(f'format = "{fmt}"\n', f'format = "{fmt}"\nwrite_back = ["note"]\n')
    config.write_text(text, encoding="utf-8")


def _add_notes(root: Path, count: int, rng: random.Random, logseq: bool) -> int:
    """A note under the first highlight of `count` pages (as a person would type it)."""
    pages = sorted(p for p in root.rglob("*.md") if "logseq" not in p.relative_to(root).parts)
    added = 0
    for page in rng.sample(pages, min(count, len(pages))):
        lines = page.read_text(encoding="utf-8").split("\n")
        marker = "\t- " if logseq else "- "
        starts = [i for i, line in enumerate(lines) if line.startswith(marker)]
        if not starts:
            continue
        note = "typed for the bench"
        child = f"\t\t- **Note**: {note}" if logseq else f"    - Note: {note}"
        lines.insert(starts[0] + 1, child)
        page.write_text("\n".join(lines), encoding="utf-8")
        added += 1
    return added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--books", type=int, default=3000)
    parser.add_argument("--highlights", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    library = generate_library(books=args.books, highlights=args.highlights, seed=args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-wb-") as folder,
        StandinServer(library, token=TOKEN) as server,
    ):
        ws = make_workspace(Path(folder), "ws", server.base_url)
        argv = syncd_argv(ws.config, quiet=True)
        run_child(argv).check("first pass")

        def timed(what: str) -> float:
            return median(run_child(argv).check(what).wall_s for _ in range(args.repeats))

        off = timed("no-op pass, write_back off")
        _enable(ws.config)
        on = timed("no-op pass, write_back on")
        rng = random.Random(args.seed)
        notes = _add_notes(ws.obsidian, 50, rng, logseq=False)
        notes += _add_notes(ws.logseq, 50, rng, logseq=True)
        before = len(server.requests)
        sending = run_child(argv).check("pass sending the notes")
        patches = sum(1 for r in server.requests[before:] if r.method == "PATCH")
        after = timed("no-op pass after")
        print(f"library: {args.books} books, {args.highlights} highlights, two targets")
        print(f"no-op pass, write_back off:           {off:.2f} s")
        print(f"no-op pass, write_back on:            {on:.2f} s  (+{on - off:.2f} s)")
        print(
            f"pass sending {notes} notes:           {sending.wall_s:.2f} s"
            f"  ({patches} PATCH requests, {sending.cpu_s:.2f} s CPU)"
        )
        print(f"no-op pass after (100 edited pages):  {after:.2f} s")


if __name__ == "__main__":
    main()
