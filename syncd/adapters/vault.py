"""File access bound to one vault root: every path checked to stay inside it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from syncd.adapters._fs import (
    StagedWrite,
    atomic_write,
    cleanup_temp_files,
    commit_staged,
    discard_staged,
    fsync_folders,
    make_durable,
    read_text_if_exists,
    resolve_inside,
    stage_write,
)
from syncd.errors import FileChangedError, UnsafePathError
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

    def write_batch(self, items: Sequence[tuple[str, str, str | None]]) -> list[Exception | None]:
        """Write many files atomically: stage every temp file, make them all durable at once,
        then re-check each target (the user may have saved it) and rename it into place, then
        fsync each folder once. Per item: None when written, else the error."""
        results: list[Exception | None] = [None] * len(items)
        staged: list[tuple[int, StagedWrite, str | None]] = []
        folders: dict[PurePosixPath, Path] = {}  # checked once per batch, not once per file
        for index, (relative, text, expected_hash) in enumerate(items):
            try:
                item = stage_write(
                    PurePosixPath(relative),
                    text,
                    vault_root=self.root,
                    fsync=False,
                    folders=folders,
                )
                staged.append((index, item, expected_hash))
            except Exception as exc:  # one bad file must not stop the batch
                results[index] = exc
        try:
            make_durable([item for _, item, _ in staged])
        except Exception as exc:
            for index, item, _ in staged:
                discard_staged(item)
                results[index] = exc
            return results
        touched: set[Path] = set()
        for index, item, expected_hash in staged:
            try:
                current = read_text_if_exists(item.target)
                if (None if current is None else text_hash(current)) != expected_hash:
                    discard_staged(item)
                    results[index] = FileChangedError(
                        f"{items[index][0]} changed since it was read; planning it again"
                    )
                    continue
                commit_staged(item)
                touched.add(item.target.parent)
            except Exception as exc:
                discard_staged(item)
                results[index] = exc
        fsync_folders(touched)
        return results

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
            try:
                path = resolve_inside(self.root, folder) if folder not in ("", ".") else self.root
            except UnsafePathError:
                continue  # a folder linked out of the vault: its pages are refused, one by one
            if path.is_dir():
                removed += cleanup_temp_files(path)
        return removed
