"""`syncd rebuild-state`: a fresh state store, rebuilt from what the vaults already hold.

The old database is renamed aside under a timestamped name and kept (with its WAL and SHM files,
so it still opens as it was). Then a normal pass runs on an empty store: for each book it finds
the page already in the vault (see `plan._adopt`). A page exactly as syncd renders it is recorded
as syncd's own, unchanged; a page the user edited is adopted block by block, so their edits stay
theirs. Nothing is duplicated, and no file is rewritten unless Readwise has something new for it.

What only the old store knew is not rebuilt: a note or highlight the user deleted from a vault is
written again, and open conflicts are forgotten (the user's text stays in the file).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from syncd.errors import StateError
from syncd.lock import StateLock
from syncd.sync.engine import PassSummary
from syncd.sync.state import PAGE_LIVE, STATE_FILE, StateStore
from syncd.wording import counted

KEPT_MARK = ".before-rebuild-"
# SQLite's companions first: a leftover WAL beside a new, empty database would be replayed into
# it. The database itself goes last.
_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class SetAside:
    """The old state files and the names they are kept under (none: there was no state)."""

    state_file: Path
    moved: tuple[tuple[Path, Path], ...]

    @property
    def kept_as(self) -> Path | None:
        """The old database's new name, if there was one."""
        return next((new for old, new in self.moved if old == self.state_file), None)

    def describe(self) -> str:
        if not self.moved:
            return f"syncd: no state store at {self.state_file}; building a new one"
        kept = self.kept_as or self.moved[0][1]
        return (
            f"syncd: state store {self.state_file} moved aside to {kept} "
            f"({len(self.moved)} file{'s' if len(self.moved) > 1 else ''}); delete it once the "
            "vaults look right, or move it back to undo"
        )


def _kept_name(state_file: Path, now: datetime) -> Path:
    """`state.sqlite3.before-rebuild-20240305T091500Z`, made unique if that name is taken."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{state_file.name}{KEPT_MARK}{stamp}"
    candidate, number = base, 1
    while any((state_file.parent / (candidate + suffix)).exists() for suffix in ("", *_COMPANIONS)):
        number += 1
        candidate = f"{base}-{number}"
    return state_file.parent / candidate


def set_aside_state(state_dir: Path, *, now: datetime) -> SetAside:
    """Rename the state database and its companions aside; the caller holds the state lock."""
    state_file = state_dir / STATE_FILE
    kept = _kept_name(state_file, now)
    moved: list[tuple[Path, Path]] = []
    for suffix in (*_COMPANIONS, ""):
        old = state_file.with_name(state_file.name + suffix)
        new = kept.with_name(kept.name + suffix)
        if not os.path.lexists(old):
            continue
        try:
            os.rename(old, new)
        except OSError as exc:
            raise StateError(
                f"cannot move {old} aside to {new}: {exc.strerror or exc}; make {state_dir} "
                "writable (nothing was rebuilt)"
            ) from exc
        moved.append((old, new))
    return SetAside(state_file, tuple(moved))


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """One target's pages after the rebuild pass."""

    target: str
    as_syncd_wrote: int  # syncd's own pages, recorded unchanged
    with_edits: int  # pages the user had edited, adopted block by block
    created: int  # books that had no page in the vault
    updated: int  # pages Readwise had something new for
    highlights_added: int


def rebuilt_targets(store: StateStore, summary: PassSummary) -> list[Rebuilt]:
    out: list[Rebuilt] = []
    for target in summary.targets:
        # A fresh store marks a page user-modified only when it was adopted with the user's edits.
        live = [p for p in store.pages(target.name) if p.status == PAGE_LIVE]
        with_edits = sum(1 for p in live if p.user_modified)
        out.append(
            Rebuilt(
                target=target.name,
                as_syncd_wrote=target.adopted - with_edits,
                with_edits=with_edits,
                created=target.created,
                updated=target.updated,
                highlights_added=target.highlights_added,
            )
        )
    return out


def describe_rebuilt(rebuilt: Rebuilt) -> str:
    line = (
        f"syncd: {rebuilt.target}: "
        f"{counted(rebuilt.as_syncd_wrote + rebuilt.with_edits, 'page')} "
        f"recognised ({rebuilt.as_syncd_wrote} exactly as syncd writes them, {rebuilt.with_edits} "
        "adopted block by block: edited by you or first synced on another day, your text kept), "
        f"{rebuilt.created} created, {rebuilt.updated} updated, "
        f"{counted(rebuilt.highlights_added, 'highlight')} added"
    )
    if rebuilt.created:
        # Only the old store knew which notes the user deleted on purpose.
        line += (
            f"\n  the {rebuilt.created} created had no note in the vault; if you had deleted "
            "any on purpose, delete them again and syncd will leave them deleted"
        )
    return line


def rebuild_state(
    state_dir: Path,
    run_pass: Callable[[], PassSummary],
    *,
    now: datetime,
    say: Callable[[str], None],
) -> PassSummary:
    """Set the old state aside (under the state lock: never under a running syncd), then run
    `run_pass` (a normal pass, which takes the lock itself) on a fresh store and `say` what
    happened. If the pass fails, the fresh store stays and the next pass finishes the job."""
    with StateLock(state_dir):
        aside = set_aside_state(state_dir, now=now)
        StateStore.open(state_dir).close()  # the new store, so a failure shows here, not mid-pass
    say(aside.describe())
    summary = run_pass()
    store = StateStore.open(state_dir)
    try:
        for rebuilt in rebuilt_targets(store, summary):
            say(describe_rebuilt(rebuilt))
    finally:
        store.close()
    return summary
