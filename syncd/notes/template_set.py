"""A target's templates: Readwise's seven export templates, each the user's file or the default.

A templates folder holds one file per field of Readwise's preferences page; a file that is absent
keeps the default, an empty file renders nothing (as on Readwise). The defaults ship in
`syncd/templates/readwise/<format>/` in Readwise's own dialect: `syncd templates init` copies
them, and a file still equal to its default is rendered by syncd's compiled twin of it (the
fast path), so only what the user changed costs a Jinja render.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from syncd.notes.dialect import (
    TemplateProblem,
    UserTemplate,
    compile_template,
    read_template_file,
)

TemplateFormat = Literal["obsidian", "logseq"]

SLOTS: dict[TemplateFormat, tuple[str, ...]] = {
    "obsidian": (
        "file_name",
        "page_title",
        "page_metadata",
        "highlights_header",
        "highlight",
        "yaml_front_matter",
        "sync_notification",
    ),
    "logseq": (
        "page_title",
        "page_metadata",
        "highlights_header",
        "highlight",
        "sync_notification",
    ),
}
SUFFIX = ".j2"


@functools.cache
def default_source(fmt: TemplateFormat, slot: str) -> str | None:
    """The shipped default of a slot (None: Obsidian's sync notification, off by default)."""
    path = resources.files("syncd").joinpath("templates", "readwise", fmt, slot + SUFFIX)
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8")


def _same(source: str, default: str | None) -> bool:
    return default is not None and source.rstrip("\n") == default.rstrip("\n")


@dataclass(frozen=True)
class TemplateSet:
    """The templates of one target. `custom` holds the slots whose file differs from the
    default; every other slot renders as the default."""

    format: TemplateFormat
    folder: Path | None = None
    custom: Mapping[str, UserTemplate] = field(default_factory=dict)
    # The sync notification, when one is written (Logseq: on by default; Obsidian: only with a
    # sync_notification file); None when off.
    notification: UserTemplate | None = None

    def get(self, slot: str) -> UserTemplate | None:
        """The user's template for `slot`, or None when the default applies."""
        return self.custom.get(slot)

    @property
    def digest(self) -> str:
        """Changes whenever what the templates render changes (the defaults: "default")."""
        if not self.custom:
            return "default"
        text = "\x00".join(f"{slot}\x00{t.source}" for slot, t in sorted(self.custom.items()))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def default_set(fmt: TemplateFormat) -> TemplateSet:
    return TemplateSet(format=fmt, notification=_default_notification(fmt))


def _default_notification(fmt: TemplateFormat) -> UserTemplate | None:
    source = default_source(fmt, "sync_notification")
    if source is None:
        return None
    return compile_template("sync_notification", f"<default {fmt} sync_notification>", source)


FileStamp = tuple[str, int, int]  # (path, size, mtime_ns)


def folder_stamp(folder: Path | None) -> tuple[FileStamp, ...]:
    """What changes when a template in `folder` is edited, added or removed: each `.j2`
    file's size and mtime (a few stats, cheap enough for every pass)."""
    if folder is None:
        return ()
    found: list[FileStamp] = []
    try:
        paths = sorted(folder.glob("*" + SUFFIX))
    except OSError:
        return ()
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue
        found.append((str(path), info.st_size, info.st_mtime_ns))
    return tuple(found)


def load_template_set(fmt: TemplateFormat, folder: Path | None) -> TemplateSet:
    """The templates in `folder` (None: the defaults). Raises TemplateProblem for a folder that
    is missing, a file that is unreadable or does not compile, or a file no slot is named for."""
    if folder is None:
        return default_set(fmt)
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise TemplateProblem(str(folder), None, f"{why} (templates = ...)")
    slots = SLOTS[fmt]
    _refuse_strangers(fmt, folder, slots)
    custom: dict[str, UserTemplate] = {}
    notification = _default_notification(fmt)
    for slot in slots:
        path = folder / (slot + SUFFIX)
        if not path.exists():
            continue
        source = read_template_file(path)
        template = compile_template(slot, str(path), source)
        if slot == "sync_notification":
            notification = template if source.strip() else None
            continue
        if not _same(source, default_source(fmt, slot)):
            custom[slot] = template
    return TemplateSet(format=fmt, folder=folder, custom=custom, notification=notification)


def _refuse_strangers(fmt: TemplateFormat, folder: Path, slots: tuple[str, ...]) -> None:
    """A `.j2` file that names no slot of this format was meant for one: say which."""
    for path in sorted(folder.glob("*" + SUFFIX)):
        slot = path.name[: -len(SUFFIX)]
        if slot in slots:
            continue
        other = next((f for f, names in SLOTS.items() if f != fmt and slot in names), None)
        if other is not None:
            message = f'is a template of format "{other}" only; this target is "{fmt}"'
        else:
            close = difflib.get_close_matches(slot, slots, n=1, cutoff=0.6)
            hint = f' (did you mean "{close[0]}{SUFFIX}"?)' if close else ""
            names = ", ".join(s + SUFFIX for s in slots)
            message = f"names no template{hint}; the files are: {names}"
        raise TemplateProblem(str(path), None, message)


def write_defaults(folder: Path, fmt: TemplateFormat) -> list[Path]:
    """`syncd templates init`: the default set, one file per slot, into `folder` (created).
    Never overwrites: a file already there is a TemplateProblem."""
    wanted = [(slot, default_source(fmt, slot)) for slot in SLOTS[fmt]]
    files = [(folder / (slot + SUFFIX), source) for slot, source in wanted if source is not None]
    for path, _source in files:
        if path.exists():
            raise TemplateProblem(str(path), None, "already exists; not overwritten")
    folder.mkdir(parents=True, exist_ok=True)
    for path, source in files:
        path.write_text(source, encoding="utf-8")
    return [path for path, _ in files]
