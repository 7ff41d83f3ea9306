"""File access bound to one vault root: every path checked to stay inside it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from syncd.adapters._fs import atomic_write, cleanup_temp_files, read_text_if_exists, resolve_inside
from syncd.errors import FileChangedError
from syncd.sync.state import text_hash


class VaultFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, relative: str) -> str | None:
        return read_text_if_exists(resolve_inside(self.root, relative))

    def write(self, relative: str, text: str, expected_hash: str | None = None) -> None:
        """Replace the file, if it still holds what the plan was made from (`expected_hash`;
        None: it must not exist yet). The user may have saved it in the meantime."""
        path = resolve_inside(self.root, relative)
        current = read_text_if_exists(path)
        current_hash = None if current is None else text_hash(current)
        if current_hash != expected_hash:
            raise FileChangedError(f"{relative} changed since it was read; planning it again")
        atomic_write(path, text, vault_root=self.root)

    def list_markdown(self, folder: str = "") -> list[str]:
        """Every .md file under `folder` (relative paths), skipping dot folders and Logseq's
        backup folder: what editors and sync tools keep beside notes."""
        base = self.root / folder if folder else self.root
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and d not in ("bak", "node_modules")
            )
            rel = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if name.endswith(".md") and not name.startswith("."):
                    found.append((rel / name).as_posix())
        return found

    def cleanup_temp(self, folders: Sequence[str]) -> int:
        removed = 0
        for folder in folders:
            path = resolve_inside(self.root, folder) if folder not in ("", ".") else self.root
            if path.is_dir():
                removed += cleanup_temp_files(path)
        return removed
