"""The Readwise token must never show: every end-to-end suite runs its outputs and its files
(vaults, graphs, the state store and its WAL) through these checks."""

from __future__ import annotations

from pathlib import Path


def assert_token_absent(token: str, *outputs: str | bytes | None) -> None:
    """No output (stdout, stderr, an error message) contains the token."""
    for output in outputs:
        if output is None:
            continue
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
        assert token not in text, "the Readwise token appeared in syncd's output"


def assert_token_absent_from_files(token: str, *roots: Path) -> int:
    """No file under the roots holds the token (as UTF-8 bytes); returns how many were read."""
    needle = token.encode("utf-8")
    checked = 0
    for root in roots:
        if not root.exists():
            continue
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                assert needle not in path.read_bytes(), f"the Readwise token is stored in {path}"
                checked += 1
    return checked
