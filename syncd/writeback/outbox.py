"""The write-back outbox in the state store: each change to send is a row that goes

    intent -> requested -> confirmed        (or dropped: 404, or rejected: 400)

with every step its own committed transaction, and the confirmation committed together with the
change applied to syncd's copy of the library (so the pages of every target get it in the same
pass). After a kill -9 a row is found as `intent` (never sent: send it) or `requested` (maybe
sent: a note or text PATCH is sent again, which is harmless; a tag is first looked for in the
highlight's tag list, so it is never sent twice).

`writeback_notes` holds, per page, what the last look at it found and did not send (conflicts
with both values, deletions, uncertain matches), for `syncd status`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from syncd.model import Book
from syncd.sync.state import StateStore

Op = Literal["note", "text", "tag_add", "tag_remove"]
State = Literal["intent", "requested", "confirmed", "dropped", "rejected"]
OPEN_STATES: tuple[State, ...] = ("intent", "requested")
_KEEP_FINISHED = 500  # finished rows kept for `syncd status` ("what was sent")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    highlight_id: int
    book_id: int
    origin: str  # the target whose page the change came from
    op: Op
    value: str  # the note or text, or the tag name
    state: State
    detail: str = ""
    updated_at: str = ""

    def describe(self) -> str:
        what = {
            "note": "note",
            "text": "text",
            "tag_add": "add tag",
            "tag_remove": "remove tag",
        }[self.op]
        return f"highlight {self.highlight_id}: {what} {self.value.strip()[:120]!r}"


@dataclass(frozen=True, slots=True)
class NoteRow:
    """Something a look at a page found and did not send."""

    target: str
    book_id: int
    highlight_id: int | None
    field: str | None
    kind: Literal["conflict", "not_sent"]
    reason: str
    mine: str = ""
    upstream: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row(r: sqlite3.Row) -> OutboxRow:
    get = r.__getitem__
    return OutboxRow(
        id=int(get("id")),
        highlight_id=int(get("highlight_id")),
        book_id=int(get("book_id")),
        origin=str(get("origin")),
        op=get("field"),
        value=str(get("value")),
        state=get("state"),
        detail=str(get("detail") or ""),
        updated_at=str(get("updated_at")),
    )


class Outbox:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    def open_rows(self) -> list[OutboxRow]:
        rows = self.store.query(
            "SELECT * FROM writeback_outbox WHERE state IN ('intent', 'requested') ORDER BY id"
        )
        return [_row(r) for r in rows]

    def finished_rows(self, limit: int = 200) -> list[OutboxRow]:
        rows = self.store.query(
            "SELECT * FROM writeback_outbox WHERE state NOT IN ('intent', 'requested') "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_row(r) for r in rows]

    def add_intents(self, intents: Iterable[tuple[int, int, str, Op, str]]) -> list[OutboxRow]:
        """(highlight id, book id, origin target, op, value) each as an `intent` row, in one
        transaction; one already waiting with the same op and value is not added twice."""
        waiting = {(r.highlight_id, r.op, r.value) for r in self.open_rows()}
        added: list[OutboxRow] = []
        stamp = _now()
        with self.store.transaction() as db:
            for highlight_id, book_id, origin, op, value in intents:
                if (highlight_id, op, value) in waiting:
                    continue
                waiting.add((highlight_id, op, value))
                cursor = db.execute(
                    "INSERT INTO writeback_outbox(highlight_id, book_id, origin, field, value, "
                    "state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'intent', ?, ?)",
                    (highlight_id, book_id, origin, op, value, stamp, stamp),
                )
                row_id = int(cursor.lastrowid or 0)
                added.append(OutboxRow(row_id, highlight_id, book_id, origin, op, value, "intent"))
        return added

    def mark(self, row: OutboxRow, state: State, detail: str = "") -> OutboxRow:
        with self.store.transaction() as db:
            self._mark(db, row, state, detail)
        return replace(row, state=state, detail=detail)

    def confirm(self, row: OutboxRow) -> OutboxRow:
        """Confirmed, and the change applied to the cached book (bumping its revision so every
        target renders it this pass), in one transaction."""
        store = self.store
        with store.transaction() as db:
            self._mark(db, row, "confirmed", "")
            book = store.load_book(row.book_id)
            if book is not None:
                patched = apply_to_book(book, row)
                if patched is not book:
                    store.merge_book(patched, rev=store.next_rev(), full=False)
        return replace(row, state="confirmed")

    def _mark(self, db: sqlite3.Connection, row: OutboxRow, state: State, detail: str) -> None:
        execute = db.execute
        execute(
            "UPDATE writeback_outbox SET state=?, detail=?, updated_at=? WHERE id=?",
            (state, detail, _now(), row.id),
        )
        if state not in OPEN_STATES:
            execute(
                "DELETE FROM writeback_outbox WHERE state NOT IN ('intent', 'requested') AND id "
                "NOT IN (SELECT id FROM writeback_outbox ORDER BY id DESC LIMIT ?)",
                (_KEEP_FINISHED,),
            )

    # --- notes: what was not sent ---

    def replace_notes(self, target: str, book_ids: Sequence[int], notes: Sequence[NoteRow]) -> None:
        """The notes of these pages are exactly `notes` from now on."""
        stamp = _now()
        with self.store.transaction() as db:
            db.executemany(
                "DELETE FROM writeback_notes WHERE target=? AND book_id=?",
                [(target, book_id) for book_id in book_ids],
            )
            db.executemany(
                "INSERT INTO writeback_notes(target, book_id, highlight_id, field, kind, reason, "
                "mine, upstream, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        n.target,
                        n.book_id,
                        n.highlight_id,
                        n.field,
                        n.kind,
                        n.reason,
                        n.mine,
                        n.upstream,
                        stamp,
                    )
                    for n in notes
                ],
            )

    def notes(self, target: str) -> list[NoteRow]:
        rows = self.store.query(
            "SELECT * FROM writeback_notes WHERE target=? ORDER BY book_id, highlight_id, kind",
            (target,),
        )
        return [
            NoteRow(
                target=str(r["target"]),
                book_id=int(r["book_id"]),
                highlight_id=None if r["highlight_id"] is None else int(r["highlight_id"]),
                field=r["field"],
                kind=r["kind"],
                reason=str(r["reason"]),
                mine=str(r["mine"]),
                upstream=str(r["upstream"]),
            )
            for r in rows
        ]


@dataclass(frozen=True, slots=True)
class PageLook:
    """A live page of a target, with what syncd knows of its file."""

    book_id: int
    path: str
    written_hash: str | None
    user_modified: bool  # the user changed the page since syncd first wrote it
    rev: int  # the book's revision in the library cache now
    seen: tuple[int, int, str, int] | None  # (mtime_ns, size, text hash, rev) when last looked at


def pages_to_look_at(store: StateStore, target: str) -> list[PageLook]:
    rows = store.query(
        "SELECT p.book_id, p.path, p.written_hash, p.user_modified, coalesce(b.rev, 0) AS rev, "
        "s.mtime_ns, s.size, s.text_hash, s.rev AS seen_rev FROM pages AS p "
        "LEFT JOIN books AS b ON b.id = p.book_id "
        "LEFT JOIN writeback_seen AS s ON s.target = p.target AND s.book_id = p.book_id "
        "WHERE p.target = ? AND p.status = 'live' ORDER BY p.book_id",
        (target,),
    )
    return [
        PageLook(
            book_id=int(r["book_id"]),
            path=str(r["path"]),
            written_hash=r["written_hash"],
            user_modified=bool(r["user_modified"]),
            rev=int(r["rev"]),
            seen=None
            if r["mtime_ns"] is None
            else (int(r["mtime_ns"]), int(r["size"]), str(r["text_hash"]), int(r["seen_rev"])),
        )
        for r in rows
    ]


Seen = tuple[int, int, int, str, int]  # book id, mtime_ns, size, text hash, book revision


def record_seen(store: StateStore, target: str, seen: Sequence[Seen]) -> None:
    """(book id, mtime_ns, size, text hash, rev) of each page file looked at this pass."""
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO writeback_seen(target, book_id, mtime_ns, size, text_hash, rev) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(target, book_id) DO UPDATE SET "
            "mtime_ns=excluded.mtime_ns, size=excluded.size, text_hash=excluded.text_hash, "
            "rev=excluded.rev",
            [(target, *item) for item in seen],
        )


def apply_to_book(book: Book, row: OutboxRow) -> Book:
    """The book with one confirmed change applied to its highlight (the same book if the
    highlight is not there or already has it)."""
    highlights = list(book.highlights)
    for index, highlight in enumerate(highlights):
        if highlight.id != row.highlight_id:
            continue
        if row.op == "note":
            changed = replace(highlight, note=row.value)
        elif row.op == "text":
            changed = replace(highlight, text=row.value)
        elif row.op == "tag_add":
            if row.value in highlight.tags:
                return book
            changed = replace(highlight, tags=(*highlight.tags, row.value))
        else:
            changed = replace(highlight, tags=tuple(t for t in highlight.tags if t != row.value))
        if changed == highlight:
            return book
        highlights[index] = changed
        return book.with_highlights(tuple(highlights))
    return book
