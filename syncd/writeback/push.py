"""The write-back step of a pass: find what the user changed, send it, apply it locally.

Order within a pass (syncd.sync.engine calls these):

1. `resume`, before the pull: every change a killed or interrupted pass left in the outbox is
   sent first.
2. `push`, after the pull (so Readwise's current data is known) and before any page is planned:
   the pages of targets with `write_back` that the user changed are read, each highlight's block
   is diffed against the block syncd wrote (syncd.writeback.scan), the same field changed
   differently in two targets is a conflict, and every change left goes through the outbox
   (syncd.writeback.outbox). A confirmed change is applied to syncd's copy of the library at
   once, so the pages of the other targets get it in this same pass; the page it came from keeps
   the user's text (its block now says what Readwise says: see syncd.writeback.echo).

With `dry_run` nothing is sent and nothing recorded: the report lists what would be sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from syncd.adapters.base import Section
from syncd.errors import ReadwiseUnavailable
from syncd.model import Book
from syncd.notes.render import heading_level
from syncd.sync.merge import Format
from syncd.sync.state import PageRow, StateStore, text_hash
from syncd.writeback.diff import Change, Field
from syncd.writeback.outbox import (
    NoteRow,
    Op,
    Outbox,
    OutboxRow,
    PageLook,
    Seen,
    pages_to_look_at,
    record_seen,
)
from syncd.writeback.protocol import HighlightGone, Sender, WriteRejected
from syncd.writeback.scan import PageScan, scan_page

if TYPE_CHECKING:
    from syncd.sync.engine import TargetRuntime

log = structlog.get_logger("syncd.writeback")


@dataclass(slots=True)
class WriteBackReport:
    sent: list[OutboxRow] = field(default_factory=list)
    would_send: list[OutboxRow] = field(default_factory=list)  # --dry-run
    waiting: list[OutboxRow] = field(default_factory=list)
    dropped: list[OutboxRow] = field(default_factory=list)
    rejected: list[OutboxRow] = field(default_factory=list)
    conflicts: int = 0
    not_sent: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": len(self.sent),
            "waiting": len(self.waiting),
            "dropped": len(self.dropped),
            "rejected": len(self.rejected),
            "conflicts": self.conflicts,
            "not_sent": self.not_sent,
        }

    def dry_run_lines(self) -> list[str]:
        return [f"send     {row.origin}: {row.describe()}" for row in self.would_send] + [
            f"waiting  {row.origin}: {row.describe()}" for row in self.waiting
        ]


def _fmt(runtime: TargetRuntime) -> Format:
    return "logseq" if runtime.adapter.name == "logseq" else "obsidian"


class WriteBack:
    def __init__(
        self,
        sender: Sender,
        *,
        network: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        """`network` wraps every wait on Readwise (the daemon's, so SIGTERM can end one: the
        change stays in the outbox as `requested` and is looked for before it is resent)."""
        self._sender = sender
        self._network = network
        self.report = WriteBackReport()

    # --- 1. the outbox first ---

    def resume(self, store: StateStore, *, dry_run: bool = False, send: bool = True) -> None:
        """Send what the outbox holds (a pass's first step: the report starts here). `send`
        False: Readwise cannot be reached; what waits is counted, not sent."""
        self.report = WriteBackReport()
        outbox = Outbox(store)
        rows = outbox.open_rows()
        if dry_run or not send:
            self.report.waiting += rows
            return
        if rows:
            log.info("writeback.resume", changes=len(rows))
        self._deliver_all(outbox, rows, should_stop=None)

    # --- 2. this pass's edits ---

    def push(
        self,
        store: StateStore,
        runtimes: Sequence[TargetRuntime],
        *,
        dry_run: bool = False,
        should_stop: Callable[[], bool] | None = None,
        send: bool = True,
    ) -> WriteBackReport:
        """This pass's edits: found, agreed between targets, recorded as intents in the outbox,
        then sent. `send` False: Readwise cannot be reached; they are recorded and wait for the
        next pass that reaches it (its resume sends them)."""
        outbox = Outbox(store)
        proposals: dict[tuple[int, str], dict[str, tuple[int, Change]]] = {}
        looked: dict[str, list[Seen]] = {}
        for runtime in runtimes:
            if not runtime.policy.write_back:
                continue
            notes, scanned, looked[runtime.policy.name] = self._scan_target(
                store, runtime, proposals
            )
            self.report.conflicts += sum(1 for n in notes if n.kind == "conflict")
            self.report.not_sent += sum(1 for n in notes if n.kind == "not_sent")
            if not dry_run and scanned:
                outbox.replace_notes(runtime.policy.name, scanned, notes)
        intents, clashes = _agree(proposals)
        self.report.conflicts += len(clashes)
        if not dry_run and clashes:
            for target, _book_id, note in clashes:
                outbox.replace_notes(target, [], [note])
        if dry_run:
            self.report.would_send += [
                OutboxRow(0, hid, book_id, origin, op, value, "intent")
                for hid, book_id, origin, op, value in intents
            ]
            return self.report
        rows = outbox.add_intents(intents)
        # Only now: a pass killed before its intents were recorded looks at those pages again.
        for target, seen in looked.items():
            record_seen(store, target, seen)
        if not send:
            self.report.waiting += rows
            return self.report
        self._deliver_all(outbox, rows, should_stop=should_stop)
        return self.report

    def _scan_target(
        self,
        store: StateStore,
        runtime: TargetRuntime,
        proposals: dict[tuple[int, str], dict[str, tuple[int, Change]]],
    ) -> tuple[list[NoteRow], list[int], list[Seen]]:
        """Notes, the book ids of the pages scanned, and what each file looked like. A file is
        read only if its stat changed since the last look (or the book did); it is scanned only
        if the user edited it and the last look did not examine this very text already."""
        policy = runtime.policy
        enabled: tuple[Field, ...] = tuple(
            f for f in ("note", "tags", "text") if f in policy.write_back
        )
        fmt = _fmt(runtime)
        notes: list[NoteRow] = []
        scanned: list[int] = []
        seen: list[Seen] = []
        due: dict[int, tuple[str, PageLook]] = {}
        for look in pages_to_look_at(store, policy.name):
            try:
                stat = (policy.vault / look.path).stat()
            except OSError:
                continue  # gone or unreachable: the pass itself says what happened to it
            unchanged = (stat.st_mtime_ns, stat.st_size, look.rev)
            if look.seen is not None and (*look.seen[0:2], look.seen[3]) == unchanged:
                continue  # neither the file nor the book changed since the last look
            try:
                text = runtime.read_file(look.path)
            except Exception as error:  # unreadable: the pass reports it when it plans the page
                log.warning(
                    "writeback.unreadable", target=policy.name, path=look.path, error=str(error)
                )
                continue
            if text is None:
                continue
            digest = text_hash(text)
            seen.append((look.book_id, stat.st_mtime_ns, stat.st_size, digest, look.rev))
            if digest == look.written_hash and not look.user_modified:
                continue  # exactly as syncd wrote it: nothing of the user's in it
            # (A page the user edited is looked at again even when syncd merged it since: the
            # merge keeps the user's text, and an edit saved between this look and the merge
            # would otherwise never be seen.)
            if look.seen is not None and look.seen[2:] == (digest, look.rev):
                continue  # this very text was examined already, with the same upstream data
            due[look.book_id] = (text, look)
        pages = store.pages_of(policy.name, sorted(due))
        for book_id, (text, _look) in due.items():
            page = pages.get(book_id)
            book = store.load_book(book_id)
            if page is None or book is None or not page.blocks:
                continue
            scanned.append(book_id)
            scan = _scan(runtime, fmt, page, book, text, enabled)
            notes += _notes(policy.name, book_id, scan)
            for change in scan.changes:
                key = (change.highlight_id, change.field)
                proposals.setdefault(key, {})[policy.name] = (book_id, change)
        return notes, scanned, seen

    # --- sending ---

    def _deliver_all(
        self, outbox: Outbox, rows: Sequence[OutboxRow], *, should_stop: Callable[[], bool] | None
    ) -> None:
        for index, row in enumerate(rows):
            if should_stop is not None and should_stop():
                self.report.waiting += rows[index:]
                return
            try:
                done = self._deliver(outbox, row)
            except ReadwiseUnavailable as error:
                # Readwise is away: the rest waits in the outbox for the next pass.
                log.warning("writeback.paused", error=str(error), waiting=len(rows) - index)
                self.report.waiting += rows[index:]
                return
            if done.state == "confirmed":
                self.report.sent.append(done)
            elif done.state == "dropped":
                self.report.dropped.append(done)
            else:
                self.report.rejected.append(done)

    @staticmethod
    def _request(sender: Sender, row: OutboxRow, *, maybe_sent: bool) -> None:
        hid = row.highlight_id
        if row.op in ("note", "text"):
            sender.update_highlight(hid, {row.op: row.value})
        elif row.op == "tag_add":
            # After a kill the POST may have got through: look before sending it again.
            present = maybe_sent and any(n == row.value for _i, n in sender.highlight_tags(hid))
            if not present:
                sender.add_highlight_tag(hid, row.value)
        else:
            for tag_id, name in sender.highlight_tags(hid):
                if name == row.value:
                    _delete_tag(sender, hid, tag_id)

    def _deliver(self, outbox: Outbox, row: OutboxRow) -> OutboxRow:
        maybe_sent = row.state == "requested"  # a pass died after asking: look before resending
        if not maybe_sent:
            row = outbox.mark(row, "requested")
        sender, hid = self._sender, row.highlight_id
        try:
            with self._network():
                self._request(sender, row, maybe_sent=maybe_sent)
        except HighlightGone as gone:
            log.warning(
                "writeback.dropped",
                target=row.origin,
                highlight_id=hid,
                field=row.op,
                reason=f"gone in Readwise ({gone})",
            )
            return outbox.mark(row, "dropped", "the highlight is gone in Readwise (HTTP 404)")
        except WriteRejected as refused:
            log.error(
                "writeback.rejected",
                target=row.origin,
                highlight_id=hid,
                field=refused.field,
                message=refused.message,
            )
            return outbox.mark(
                row, "rejected", f"Readwise refused {refused.field}: {refused.message}"
            )
        done = outbox.confirm(row)
        log.info("writeback.sent", target=row.origin, highlight_id=hid, field=row.op)
        return done


def _delete_tag(sender: Sender, hid: int, tag_id: int) -> None:
    """A tag already gone (404 on it while the highlight is there) is what was wanted."""
    try:
        sender.delete_highlight_tag(hid, tag_id)
    except HighlightGone:
        if any(existing == tag_id for existing, _name in sender.highlight_tags(hid)):
            raise


def _scan(
    runtime: TargetRuntime,
    fmt: Format,
    page: PageRow,
    book: Book,
    text: str,
    enabled: tuple[Field, ...],
) -> PageScan:
    live = book.live_highlights()
    first = (Section("first", datetime.now(UTC), tuple(h.id for h in live)),)
    upstream = runtime.adapter.render_parts(book, first, page.page_title).blocks
    # The shapes the merge tracks as spans (syncd.sync.plan._ours): a user's highlight template,
    # or heading highlights among the default blocks.
    spans = runtime.adapter.tracks_spans or any(heading_level(h) for h in live)
    return scan_page(
        fmt=fmt,
        text=text,
        records=page.blocks,
        upstream=upstream,
        upstream_texts={h.id: h.text for h in live},
        enabled=enabled,
        tracks_spans=spans,
        highlights={h.id: h for h in live},
    )


def _notes(target: str, book_id: int, scan: PageScan) -> list[NoteRow]:
    notes = [
        NoteRow(target, book_id, c.highlight_id, c.field, "conflict", "changed in Readwise too",
                c.mine, c.upstream)
        for c in scan.conflicts
    ]  # fmt: skip
    notes += [
        NoteRow(target, book_id, n.highlight_id, n.field, "not_sent", n.reason, n.mine)
        for n in scan.not_sent
    ]
    return notes


def _agree(
    proposals: dict[tuple[int, str], dict[str, tuple[int, Change]]],
) -> tuple[list[tuple[int, int, str, Op, str]], list[tuple[str, int, NoteRow]]]:
    """One set of intents from every target's changes; a field two targets changed differently
    is a conflict in each of them (nothing sent)."""
    intents: list[tuple[int, int, str, Op, str]] = []
    clashes: list[tuple[str, int, NoteRow]] = []
    for (hid, name), by_target in proposals.items():
        distinct = {(c.value, c.added, c.removed) for _b, c in by_target.values()}
        if len(distinct) > 1:
            for target, (book_id, change) in by_target.items():
                others = "; ".join(
                    f"{t}: {_shown(c)}" for t, (_b, c) in by_target.items() if t != target
                )
                reason = "changed differently in another target"
                clashes.append(
                    (target, book_id, NoteRow(target, book_id, hid, name, "conflict", reason,
                                              _shown(change), others))
                )  # fmt: skip
            continue
        origin = sorted(by_target)[0]
        book_id, change = by_target[origin]
        if change.field in ("note", "text"):
            op: Op = "note" if change.field == "note" else "text"
            intents.append((hid, book_id, origin, op, change.value))
        else:
            intents += [(hid, book_id, origin, "tag_add", t) for t in change.added]
            intents += [(hid, book_id, origin, "tag_remove", t) for t in change.removed]
    return intents, clashes


def _shown(change: Change) -> str:
    if change.field != "tags":
        return change.value
    parts = [f"+{t}" for t in change.added] + [f"-{t}" for t in change.removed]
    return " ".join(parts)
