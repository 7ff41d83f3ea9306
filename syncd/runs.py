"""What a pass leaves behind for `syncd status` and the log: the run records and the summary
line (shared by `--once` and the daemon)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from syncd.sync.engine import PassSummary
from syncd.sync.state import RunRecord, StateStore
from syncd.wording import counted


def record_pass(store: StateStore, summary: PassSummary, started_at: str) -> None:
    """One run record per target; a target with failed notes keeps its first error."""
    finished = datetime.now(UTC).isoformat()
    for target in summary.targets:
        store.record_run(
            RunRecord(
                target=target.name,
                started_at=started_at,
                finished_at=finished,
                result="paused" if target.paused else "failed" if target.failed else "ok",
                # Every failed note (a template that failed on a book, a file that could not
                # be written) for `syncd status`; the first is also the run's error.
                summary={**target.as_dict(), "errors": [m for _k, m in target.errors[:50]]},
                error=target.errors[0][1] if target.errors else None,
            )
        )


def record_error(store: StateStore, targets: Iterable[str], started_at: str, message: str) -> None:
    """The pass as a whole failed (Readwise away, a vault missing, ...): say so for every target."""
    finished = datetime.now(UTC).isoformat()
    for name in targets:
        store.record_run(
            RunRecord(
                target=name,
                started_at=started_at,
                finished_at=finished,
                result="error",
                summary={},
                error=message,
            )
        )


def summary_line(summary: PassSummary, *, dry_run: bool = False) -> str:
    """One line per pass: per target files created / updated / unchanged, highlights added,
    elapsed seconds."""
    parts = []
    verb = "would be " if dry_run else ""
    for t in summary.targets:
        parts.append(
            f"{t.name}: {t.created} {verb}created, {t.updated} {verb}updated, "
            f"{t.unchanged} unchanged, {counted(t.highlights_added, 'highlight')} added"
            + (f", {t.failed} FAILED" if t.failed else "")
            + (", PAUSED (would remove too many highlights; see the log)" if t.paused else "")
            + f" ({t.elapsed:.2f} s)"
        )
    edits = summary.writeback
    if edits is not None and (edits.sent or edits.waiting or edits.conflicts or edits.rejected):
        parts.append(
            f"to Readwise: {counted(len(edits.sent), 'edit')} sent, {len(edits.waiting)} waiting, "
            f"{counted(edits.conflicts, 'conflict')}"
            + (f", {len(edits.rejected)} refused" if edits.rejected else "")
            + ("; see `syncd status`" if edits.conflicts or edits.rejected else "")
        )
    return "syncd: " + "; ".join(parts) + f" [pass {summary.elapsed:.2f} s]"
