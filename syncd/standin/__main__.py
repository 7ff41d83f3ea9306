"""Run the stand-in in the foreground: `python -m syncd.standin --books 3000 --highlights 50000`.

Prints the base URL on one line, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from syncd.standin.library import generate_library, sample_library
from syncd.standin.server import Quirks, StandinServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m syncd.standin", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--books", type=int, default=None, help="generate this many books")
    parser.add_argument("--highlights", type=int, default=None, help="and this many highlights")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--token", required=True, help="the token clients must send")
    parser.add_argument("--page-highlights", type=int, default=1000)
    parser.add_argument("--cursor-type", choices=("int", "str"), default="int")
    parser.add_argument("--timestamp-style", choices=("ms", "us"), default="ms")
    parser.add_argument("--book-meta-in-incremental", action="store_true")
    parser.add_argument("--rate-limit", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if (args.books is None) != (args.highlights is None):
        print("error: give --books and --highlights together (or neither for the sample)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.books is None:
        library = sample_library()
    else:
        library = generate_library(books=args.books, highlights=args.highlights, seed=args.seed)
    quirks = Quirks(
        cursor_type=args.cursor_type,
        page_highlights=args.page_highlights,
        book_meta_in_incremental=args.book_meta_in_incremental,
        timestamp_style=args.timestamp_style,
        rate_limit=args.rate_limit,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with StandinServer(library, token=args.token, quirks=quirks, port=args.port) as server:
        print(server.base_url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
