"""structlog set-up: readable console on a TTY, JSON lines otherwise, secrets redacted.

Everything, structlog events and stdlib records (httpx, httpcore, ...) alike, goes through one
stdlib handler whose formatter runs the same processors, so one redaction step covers all output.
Redaction runs after exceptions are formatted, so tracebacks are redacted too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"

# Values registered with add_secret(); read at every event, so secrets added later still count.
_secrets: set[str] = set()

# The value of an Authorization header however it is printed: `Authorization: Token x`,
# `'Authorization': 'Token x'`, `(b'Authorization', b'Token x')`, `authorization=Bearer x`.
_AUTHORIZATION_VALUE = re.compile(
    r"""(?ix)
    (authorization ['"]? \s* [:=,] \s* [bf]? ['"]? \s* (?:(?:token|bearer|basic)\s+)?)
    [^\s'",;)}\]]+
    """
)
# A bare `Token <long key>` (Readwise keys are 50 characters; "Token rejected" is left alone).
_TOKEN_SCHEME_VALUE = re.compile(r"\b(Token\s+)[A-Za-z0-9_\-]{20,}")

# httpx/httpcore log request lines, edn_format (ply) its lexer tables: quiet unless -vv.
_CHATTY_LIBRARIES = ("httpx", "httpcore", "hpack", "edn_format", "ply")

# The handler configure_logging installed, so reconfiguring replaces it instead of stacking.
_installed_handler: logging.Handler | None = None


def add_secret(secret: str) -> None:
    """Redact this value (e.g. the Readwise token once it is read) from all further output."""
    if secret.strip():
        _secrets.add(secret)
        stripped = secret.strip()
        if stripped != secret:
            _secrets.add(stripped)


def redact_text(text: str) -> str:
    """The text with every registered secret and Authorization value replaced by [REDACTED]."""
    # Longest first, so a secret that contains another is removed whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    # Cheap substring tests first: these regexes would otherwise run on every logged string.
    lowered = text.lower()
    if "authorization" in lowered:
        text = _AUTHORIZATION_VALUE.sub(lambda match: match.group(1) + REDACTED, text)
    if "token" in lowered:
        text = _TOKEN_SCHEME_VALUE.sub(lambda match: match.group(1) + REDACTED, text)
    return text


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and key.lower() == "authorization"
            else _redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item) for item in value]
    # Any other object is rendered later with str() or repr(); replace it only if either would
    # show a secret, so harmless values keep their type for the renderer.
    for rendering in (str(value), repr(value)):
        if redact_text(rendering) != rendering:
            return redact_text(str(value))
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact every value of the event, nested ones included."""
    return {
        key: REDACTED if key.lower() == "authorization" else _redact_value(value)
        for key, value in event_dict.items()
    }


def _level_for(verbosity: int) -> int:
    if verbosity < 0:
        return logging.WARNING
    if verbosity == 0:
        return logging.INFO
    return logging.DEBUG


def configure_logging(
    *,
    verbosity: int = 0,
    stream: TextIO | None = None,
    json_lines: bool | None = None,
    secrets: Sequence[str] = (),
) -> None:
    """Send all logging to `stream` (stderr by default).

    verbosity: -1 (-q) warnings only, 0 info, 1 (-v) debug, 2 (-vv) also httpx/httpcore debug.
    json_lines: None picks JSON lines unless the stream is a terminal.
    """
    global _installed_handler
    for secret in secrets:
        add_secret(secret)
    output = stream if stream is not None else sys.stderr
    if json_lines is None:
        json_lines = not _is_terminal(output)

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    # Run on every event before it reaches the handler: structlog's own and stdlib's alike.
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        timestamper,
    ]
    renderer: Processor
    if json_lines:
        renderer = structlog.processors.JSONRenderer()
    else:
        colors = _is_terminal(output) and "NO_COLOR" not in os.environ
        # plain_traceback: fancy formatters (rich) print local variables, which may hold the token.
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    if _installed_handler is not None:
        root.removeHandler(_installed_handler)
    root.addHandler(handler)
    _installed_handler = handler
    level = _level_for(verbosity)
    root.setLevel(level)
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            # Format while still inside the `except` block that logged it.
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())
