"""The exception tree. Every error syncd raises on purpose knows its exit code.

    SyncdError                      1  anything else
    ├── ConfigError                 2  bad config or usage (carries every problem found)
    ├── TemplateError               2  a user's template that does not compile or render
    ├── TokenRejected               3  Readwise said 401/403 to the token
    ├── ReadwiseUnavailable         4  gave up after retries (endpoint, last status, attempts)
    │   └── ApiDataError            4  a reply we cannot read as the API documents it
    ├── VaultError                  5  vault missing, unmounted, not writable, unsafe path
    │   └── UnsafePathError         5  a path that would leave the vault
    │   └── FileChangedError        5  the user saved a page between plan and write (re-planned)
    ├── LockHeld                    6  another instance holds the state dir
    ├── StateError                  7  state store corrupt, from a newer schema, or unwritable
    ├── SafetyStop                  8  a pass would remove highlights from too many pages
    └── LocalSourceError            9  a device file ([[sources]]) that cannot be read; only
                                       that source is skipped, the pass goes on

Messages never contain the Readwise token: they are built from endpoints and statuses only.
"""

from __future__ import annotations

from collections.abc import Sequence


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""

    exit_code = 1


class ConfigError(SyncdError):
    """The config file (or the command line) is wrong; lists every problem at once."""

    exit_code = 2

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class TemplateError(SyncdError):
    """A user's template file is wrong: it names the file and, where known, the line."""

    exit_code = 2


class TokenRejected(SyncdError):
    exit_code = 3


class ReadwiseUnavailable(SyncdError):
    exit_code = 4

    def __init__(
        self, message: str, *, endpoint: str = "", status: int | None = None, attempts: int = 0
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        self.attempts = attempts
        super().__init__(message)


class ApiDataError(ReadwiseUnavailable):
    """A reply that parses as JSON but not as the shape api.md documents."""


class VaultError(SyncdError):
    exit_code = 5


class UnsafePathError(VaultError):
    pass


class FileChangedError(VaultError):
    """The file changed after it was read for planning; it is planned again, not overwritten."""


class LockHeld(SyncdError):
    exit_code = 6


class StateError(SyncdError):
    exit_code = 7


class SafetyStop(SyncdError):
    exit_code = 8


class LocalSourceError(SyncdError):
    """A device file that cannot be read as its kind says (not a clippings file, code in a Lua
    sidecar, too big, binary). Only that source (or sidecar) is skipped for the pass."""

    exit_code = 9
