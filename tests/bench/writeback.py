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
        # the first highlight: after the Obsidian `## Highlights` heading (metadata items come
        # before it), or the first block nested under the Logseq section block
        first = next((i for i, line in enumerate(lines) if line == "## Highlights"), 0)
        marker = "\t- " if logseq else "- "
        starts = [i for i, line in enumerate(lines) if line.startswith(marker) and i > first]
        if not starts:
            continue
        note = "typed for the bench"
        child = f"\t\t- **Note**: {note}" if logseq else f"    - Note: {note}"
        at = starts[0] + 1
        more = "\t  " if logseq else "  "  # the highlight's own later lines
        while at < len(lines) and lines[at].startswith(more) and not lines[at].startswith("    -"):
            at += 1
        lines.insert(at, child)
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

        def timed(what: str) -> tuple[float, float]:
            runs = [run_child(argv).check(what) for _ in range(args.repeats)]
            return median(r.wall_s for r in runs), median(r.cpu_s for r in runs)

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
        print(f"no-op pass, write_back off:          {off[0]:.2f} s, {off[1]:.2f} s CPU")
        print(f"no-op pass, write_back on:           {on[0]:.2f} s, {on[1]:.2f} s CPU")
        print(
            f"pass sending {notes} notes:          {sending.wall_s:.2f} s,"
            f" {sending.cpu_s:.2f} s CPU"
            f" ({patches} PATCH requests)"
        )
        print(f"no-op pass after it:                 {after[0]:.2f} s, {after[1]:.2f} s CPU")


if __name__ == "__main__":
    main()
