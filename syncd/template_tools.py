"""`syncd templates init` and `syncd templates show`: the library side of the commands."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from syncd.adapters.base import Section
from syncd.adapters.registry import make_adapter
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.notes.template_set import TemplateFormat, write_defaults
from syncd.sync.state import StateStore


def init_templates(folder: Path, fmt: TemplateFormat) -> list[Path]:
    """Write Readwise's default templates for `fmt` into `folder` (never over a file)."""
    return write_defaults(folder, fmt)


def show_page(cfg: Config, target_name: str, book_id: int, now: datetime) -> tuple[str, str]:
    """(path, text) of the book's page as the target's templates render it now: with the
    sections syncd already wrote, or as a new page dated `now`. Reads the state store only."""
    target = next((t for t in cfg.targets if t.name == target_name), None)
    if target is None:
        names = ", ".join(t.name for t in cfg.targets)
        raise ConfigError([f"--target {target_name}: no such target (targets: {names})"])
    adapter = make_adapter(target)
    with contextlib.closing(StateStore.open(cfg.state.dir)) as store:
        book = store.load_book(book_id)
        page = store.page(target.name, book_id)
    if book is None:
        raise ConfigError([f"book {book_id}: not in the state store yet; run `syncd --once` first"])
    if page is not None and page.sections:
        title, sections, path = page.page_title, tuple(page.sections), page.path
    else:
        title = adapter.page_title(book)
        live = tuple(h.id for h in book.live_highlights())
        sections = (Section("first", now, live),)
        path = (adapter.folder_for(book) / adapter.file_name(title)).as_posix()
    return path, adapter.render_page(book, sections, title)
