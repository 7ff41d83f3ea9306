"""File access bound to one vault root: every path checked to stay inside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from syncd.adapters._fs import atomic_write, cleanup_temp_files, read_text_if_exists, resolve_inside


class VaultFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, relative: str) -> str | None:
        return read_text_if_exists(resolve_inside(self.root, relative))

    def write(self, relative: str, text: str) -> None:
        atomic_write(resolve_inside(self.root, relative), text, vault_root=self.root)

    def cleanup_temp(self, folders: Sequence[str]) -> int:
        removed = 0
        for folder in folders:
            path = resolve_inside(self.root, folder) if folder not in ("", ".") else self.root
            if path.is_dir():
                removed += cleanup_temp_files(path)
        return removed
