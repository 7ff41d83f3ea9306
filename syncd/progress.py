"""A one-line progress display on a TTY (stderr); nothing when output is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from syncd.wording import counted


class ProgressLine:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty()
        self._last = 0.0

    def pulled(self, books: int, highlights: int) -> None:
        self._show(
            f"Pulling from Readwise: {counted(books, 'book')}, {counted(highlights, 'highlight')}"
        )

    def target(self, target: str, done: int, total: int) -> None:
        width = 24
        filled = width * done // total if total else width
        bar = "#" * filled + "-" * (width - filled)
        self._show(f"{target}: [{bar}] {done}/{total} books", force=done == total)

    def _show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:  # redraw at most 10 times a second
            return
        self._last = now
        self._stream.write("\r\x1b[2K" + text)
        self._stream.flush()

    def done(self) -> None:
        if self.enabled:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
