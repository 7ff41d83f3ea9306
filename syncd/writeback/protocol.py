"""What the write-back needs from a Readwise client, and the two answers it handles itself.

Kept apart from syncd.sources so that the write-back logic never imports httpx: a test or a
dry run passes any object with these four methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class HighlightGone(Exception):
    """404: the highlight (or the tag) no longer exists in Readwise."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: HTTP 404, gone in Readwise")
        self.method = method
        self.path = path


class WriteRejected(Exception):
    """400: Readwise refused the value of `field` (its own words in `message`)."""

    def __init__(self, method: str, path: str, field: str, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP 400, field {field!r}: {message}")
        self.method = method
        self.path = path
        self.field = field
        self.message = message


class Sender(Protocol):
    def update_highlight(self, highlight_id: int, fields: Mapping[str, str]) -> dict[str, Any]: ...

    def highlight_tags(self, highlight_id: int) -> list[tuple[int, str]]: ...

    def add_highlight_tag(self, highlight_id: int, name: str) -> tuple[int, str]: ...

    def delete_highlight_tag(self, highlight_id: int, tag_id: int) -> None: ...
