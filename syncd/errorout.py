"""Where the error that ends a command is said, once per reader:

- on a terminal: one plain `syncd: error: ...` line (the log event too only with -v);
- in the systemd journal (stderr is the stream JOURNAL_STREAM names): one structured event;
- anywhere else (a pipe, a cron mail, a file): both, the event for programs reading the JSON
  lines and the plain line for the person reading the mail.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TextIO

import structlog


def is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True if `stream` is the journal connection systemd gave the service (`dev:inode`)."""
    expected = environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False  # not a real file (a test's StringIO, a closed stream)
    return expected == f"{info.st_dev}:{info.st_ino}"


def report_failure(
    log: structlog.stdlib.BoundLogger,
    stream: TextIO,
    *,
    event: str,
    line: str,
    verbose: int,
    environ: Mapping[str, str] = os.environ,
    **fields: Any,
) -> None:
    """Say `line` to a person and/or log `event` with `fields`, as the module docstring says."""
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    journal = not terminal and is_journal(stream, environ)
    if journal or not terminal or verbose > 0:
        log.error(event, **fields)
    if not journal:
        print(line, file=stream)
