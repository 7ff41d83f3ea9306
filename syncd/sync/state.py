"""The state store: one SQLite file (WAL) in the state dir, 0600 in a 0700 dir.

It holds the library cache (every book as last merged from the export, with a revision number
bumped whenever a pass changed it), the API watermark, and per target one row per book page: the
path, the exact text syncd last wrote (the merge base), the sections and their highlight ids, and a
pending write intent. Writes into a vault follow intent -> file -> finalize, each state step a
committed transaction, so a kill -9 anywhere is recovered by comparing the file's hash with the
intent (see `recover_intents`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from syncd.adapters.base import Section
from syncd.errors import StateError
from syncd.model import Book, is_local_id, merge_highlights
from syncd.sync.codec import book_field_index, book_from_json, book_to_json
from syncd.sync.merge import BlockRecord, Conflict

STATE_FILE = "state.sqlite3"

PAGE_LIVE = "live"
PAGE_DELETED_BY_USER = "deleted_by_user"
PAGE_DELETED_UPSTREAM = "deleted_upstream"
PAGE_PENDING = "pending"  # a placeholder: a write a killed pass began (recovered next pass)
# A create marker's `pending` starts so (an intent's is a whole row, starting '{"path"').
_CREATE_MARKER_PREFIX = '{"create": true'
_IS_CREATE_MARKER = "pending LIKE '" + _CREATE_MARKER_PREFIX + "%'"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# --- migrations: named, ordered, each run once in its own transaction ----------------------------


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT first and break the migration's transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_initial(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE source (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE books (
            id INTEGER PRIMARY KEY,
            data TEXT NOT NULL,
            is_deleted INTEGER NOT NULL DEFAULT 0,
            category TEXT NOT NULL,
            rev INTEGER NOT NULL
        );
        CREATE INDEX books_rev ON books(rev);
        CREATE TABLE pages (
            target TEXT NOT NULL,
            book_id INTEGER NOT NULL,
            path TEXT NOT NULL,
            page_title TEXT NOT NULL,
            status TEXT NOT NULL,
            user_modified INTEGER NOT NULL DEFAULT 0,
            sections TEXT NOT NULL,
            written_text TEXT,
            written_hash TEXT,
            rendered_rev INTEGER NOT NULL DEFAULT 0,
            pending TEXT,
            PRIMARY KEY (target, book_id)
        );
        CREATE INDEX pages_path ON pages(target, path);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            target TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            result TEXT NOT NULL,
            summary TEXT NOT NULL,
            error TEXT
        );
        """,
    )


def _m002_observations(db: sqlite3.Connection) -> None:
    # What the watcher / start-up scan last saw of each page file: a cheap stat comparison
    # tells which files changed while nobody was looking.
    _run_script(
        db,
        """
        ALTER TABLE pages ADD COLUMN seen_mtime_ns INTEGER;
        ALTER TABLE pages ADD COLUMN seen_size INTEGER;
        ALTER TABLE pages ADD COLUMN seen_hash TEXT;
        CREATE TABLE conflicts (
            target TEXT NOT NULL,
            book_id INTEGER NOT NULL,
            highlight_id INTEGER NOT NULL,
            theirs TEXT NOT NULL,
            upstream TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (target, book_id, highlight_id)
        );
        """,
    )


def _m003_blocks(db: sqlite3.Connection) -> None:
    # The block-level merge base: per highlight the block text as it stood in the file and the
    # hash of syncd's render; highlights the user deleted (tombstones); the head syncd rendered.
    _run_script(
        db,
        """
        ALTER TABLE pages ADD COLUMN blocks TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE pages ADD COLUMN tombstones TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE pages ADD COLUMN head TEXT;
        """,
    )


def _m004_pass_indexes(db: sqlite3.Connection) -> None:
    # What every pass asks before it writes anything (which books are due, how many live pages,
    # any unfinished writes) answered from small indexes instead of a walk over the page rows,
    # which hold whole page texts: a no-op pass stays flat as the library grows.
    _run_script(
        db,
        """
        CREATE INDEX pages_render ON pages(target, book_id, rendered_rev);
        CREATE INDEX pages_status ON pages(target, status);
        CREATE INDEX pages_pending ON pages(target) WHERE pending IS NOT NULL;
        """,
    )


def _m005_writeback_outbox(db: sqlite3.Connection) -> None:
    # Edits sent back to Readwise (syncd.writeback.outbox): each change goes intent ->
    # requested -> confirmed (or dropped / rejected), each step committed, so a kill -9 neither
    # loses a change nor sends a tag twice. writeback_notes: per page, what the last look at it
    # found that is not sent (conflicts, deletions, uncertain matches), for `syncd status`.
    # writeback_seen: each page file as last looked at (stat, hash, book revision), so a pass
    # reads only the files that changed since.
    _run_script(
        db,
        """
        CREATE TABLE writeback_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            highlight_id INTEGER NOT NULL,
            book_id INTEGER NOT NULL,
            origin TEXT NOT NULL,
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            state TEXT NOT NULL,
            detail TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX writeback_outbox_open ON writeback_outbox(state)
            WHERE state IN ('intent', 'requested');
        CREATE TABLE writeback_notes (
            target TEXT NOT NULL,
            book_id INTEGER NOT NULL,
            highlight_id INTEGER,
            field TEXT,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            mine TEXT NOT NULL,
            upstream TEXT NOT NULL,
            recorded_at TEXT NOT NULL
        );
        CREATE INDEX writeback_notes_page ON writeback_notes(target, book_id);
        CREATE TABLE writeback_seen (
            target TEXT NOT NULL,
            book_id INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            size INTEGER NOT NULL,
            text_hash TEXT NOT NULL,
            rev INTEGER NOT NULL,
            PRIMARY KEY (target, book_id)
        );
        """,
    )


MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("001_initial", _m001_initial),
    ("002_observations", _m002_observations),
    ("003_blocks", _m003_blocks),
    ("004_pass_indexes", _m004_pass_indexes),
    ("005_writeback_outbox", _m005_writeback_outbox),
)


# --- rows ----------------------------------------------------------------------------------------


def sections_to_json(sections: Sequence[Section]) -> str:
    return json.dumps(
        [
            {"kind": s.kind, "synced_at": s.synced_at.isoformat(), "ids": list(s.highlight_ids)}
            for s in sections
        ]
    )


def sections_from_json(text: str) -> tuple[Section, ...]:
    return tuple(
        Section(
            kind=item["kind"],
            synced_at=datetime.fromisoformat(item["synced_at"]),
            highlight_ids=tuple(item["ids"]),
        )
        for item in json.loads(text)
    )


@dataclass(frozen=True, slots=True)
class PageRow:
    target: str
    book_id: int
    path: str  # POSIX, relative to the vault root
    page_title: str
    status: str
    user_modified: bool
    sections: tuple[Section, ...]
    written_text: str | None
    written_hash: str | None
    rendered_rev: int
    blocks: dict[int, BlockRecord] = field(default_factory=dict)
    tombstones: frozenset[int] = frozenset()
    head: str | None = None

    def with_write(self, text: str, *, rendered_rev: int) -> PageRow:
        return replace(
            self, written_text=text, written_hash=text_hash(text), rendered_rev=rendered_rev
        )


# A block record whose text is found in the page's written text is stored as [start, end,
# render] (a slice of that text) instead of [text, render]: the block texts would otherwise
# double the bytes of every page row (24 MB more in a 50,000-highlight first pass).
_MAX_MISSES = 16  # bounds the search of a page whose blocks are not in written order


def blocks_to_json(blocks: dict[int, BlockRecord], written_text: str | None = None) -> str:
    encoded: dict[str, list[object]] = {}
    position = misses = 0
    for hid, record in blocks.items():
        start = -1
        if written_text is not None and misses < _MAX_MISSES and record.text:
            start = written_text.find(record.text, position)
            misses += start < 0
        if start >= 0:
            position = start + len(record.text)
            encoded[str(hid)] = [start, position, record.render]
        else:
            encoded[str(hid)] = [record.text, record.render]
    return json.dumps(encoded, ensure_ascii=False)


def blocks_from_json(text: str | None, written_text: str | None = None) -> dict[int, BlockRecord]:
    if not text:
        return {}
    records: dict[int, BlockRecord] = {}
    for hid, value in json.loads(text).items():
        if len(value) == 3:
            if written_text is None:
                raise ValueError(f"block {hid} points into a written text the page row lacks")
            records[int(hid)] = BlockRecord(written_text[value[0] : value[1]], value[2])
        else:
            records[int(hid)] = BlockRecord(value[0], value[1])
    return records


def _row_to_page(row: sqlite3.Row) -> PageRow:
    return PageRow(
        target=row["target"],
        book_id=row["book_id"],
        path=row["path"],
        page_title=row["page_title"],
        status=row["status"],
        user_modified=bool(row["user_modified"]),
        sections=sections_from_json(row["sections"]),
        written_text=row["written_text"],
        written_hash=row["written_hash"],
        rendered_rev=row["rendered_rev"],
        blocks=blocks_from_json(row["blocks"], row["written_text"]),
        tombstones=frozenset(json.loads(row["tombstones"] or "[]")),
        head=row["head"],
    )


def _page_to_json(page: PageRow) -> str:
    return json.dumps(
        {
            "path": page.path,
            "page_title": page.page_title,
            "status": page.status,
            "user_modified": page.user_modified,
            "sections": sections_to_json(page.sections),
            "written_text": page.written_text,
            "written_hash": page.written_hash,
            "rendered_rev": page.rendered_rev,
            "blocks": blocks_to_json(page.blocks, page.written_text),
            "tombstones": sorted(page.tombstones),
            "head": page.head,
        },
        ensure_ascii=False,
    )


def _page_from_json(target: str, book_id: int, text: str) -> PageRow:
    data = json.loads(text)
    return PageRow(
        target=target,
        book_id=book_id,
        path=data["path"],
        page_title=data["page_title"],
        status=data["status"],
        user_modified=bool(data["user_modified"]),
        sections=sections_from_json(data["sections"]),
        written_text=data["written_text"],
        written_hash=data["written_hash"],
        rendered_rev=data["rendered_rev"],
        blocks=blocks_from_json(data["blocks"], data["written_text"]),
        tombstones=frozenset(data["tombstones"]),
        head=data["head"],
    )


@dataclass(frozen=True, slots=True)
class RunRecord:
    target: str
    started_at: str
    finished_at: str
    result: str
    summary: dict[str, Any]
    error: str | None


# --- opening: every way the state dir or file can be unusable, named with what to do ---------

_REBUILD_HINT = "run `syncd rebuild-state` (it keeps the old file and rebuilds from your vaults)"


def _prepare_state_dir(state_dir: Path) -> None:
    if state_dir.exists() and not state_dir.is_dir():
        raise StateError(
            f"state dir {state_dir} is not a folder; move that file away or set [state] dir "
            "in the config to a folder syncd may use"
        )
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
    except OSError as exc:
        raise StateError(
            f"state dir {state_dir} cannot be created or made private: {exc.strerror or exc}; "
            "make it writable or set [state] dir in the config to another folder"
        ) from exc
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise StateError(
            f"state dir {state_dir} is not writable; make it writable or set [state] dir in "
            "the config to another folder"
        )


def database_error(path: Path, exc: sqlite3.DatabaseError) -> StateError:
    """A StateError (exit 7) saying what went wrong with the database at `path` and what to do,
    by SQLite's primary result code. Used at open and for failures later in a pass."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary == sqlite3.SQLITE_FULL:
        what = f"the disk holding {path.parent} is full; free some space and run syncd again"
    elif primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        what = f"it cannot be written; make {path.parent} and the files in it writable"
    elif primary == sqlite3.SQLITE_CANTOPEN:
        what = f"it cannot be opened; check that {path} is a file syncd can read and write"
    elif primary == sqlite3.SQLITE_IOERR:
        what = f"the disk reported an I/O error; check the disk, then {_REBUILD_HINT} if it recurs"
    elif primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        what = "another program holds it locked; close it (e.g. a database browser) and retry"
    elif primary in (None, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        # None: our own failed integrity check. A truncated file reads as SQLITE_CORRUPT.
        what = f"it is damaged; {_REBUILD_HINT}"
    else:
        what = f"unexpected database error; if it recurs, {_REBUILD_HINT}"
    return StateError(f"state store {path}: {exc}: {what}")


def _check_length(path: Path) -> None:
    """A database file cut short (a copy or a restore that stopped early) is refused before
    SQLite reads it: the header's page count, when valid, says how long the file must be."""
    try:
        if os.path.getsize(f"{path}-wal") > 0:
            # A checkpoint killed midway leaves the file short of its header while the WAL still
            # holds every page: SQLite finishes the job on open. Only a lone file is judged.
            return
    except FileNotFoundError:
        pass
    try:
        with open(path, "rb") as file:
            header = file.read(100)
            size = os.fstat(file.fileno()).st_size
    except FileNotFoundError:
        return
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return  # empty (a new store) or not SQLite at all: SQLite's own error says so
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The count is valid only when written by a SQLite that maintains it (change counter ==
    # version-valid-for number), as every SQLite since 3.7.0 does.
    if pages and header[24:28] == header[92:96] and size < pages * page_size:
        raise sqlite3.DatabaseError(
            f"database file is truncated ({size} bytes, its header says {pages * page_size})"
        )


PAGE_SIZE = 16384


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit (isolation_level None): transactions are explicit, see `transaction`.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    return db


def _configure(db: sqlite3.Connection) -> None:
    """Per-connection settings (WAL is a property of the file, set once)."""
    # FULL: a committed write intent is on disk before the vault file is replaced.
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    # A forked worker writes to the same store: each waits for the other's short transactions.
    db.execute("PRAGMA busy_timeout=5000")


class PageStat(NamedTuple):
    """A live page as a scan needs it: where its file is and what the state last saw there."""

    book_id: int
    path: str
    seen_mtime_ns: int | None
    seen_size: int | None
    seen_hash: str | None
    written_hash: str | None


_PAGE_STAT_COLUMNS = "book_id, path, seen_mtime_ns, seen_size, seen_hash, written_hash"


# At most this many highlights' books stay parsed in memory between the pull and the render
# (about 45 MB): a first pass of a big library holds that much, not the whole library.
FRESH_BOOKS_HIGHLIGHTS = 50_000


class StateStore:
    """All persistent state of syncd. One instance per process; not shared across threads."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        # Books merged by this pass's pull, kept parsed for the render that follows (decoding
        # them again was a fifth of a first pass). Bounded; emptied on rollback and by
        # release_books().
        self._fresh: dict[int, Book] = {}
        self._fresh_highlights = 0

    # --- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path, *, verify: bool = False) -> StateStore:
        """`verify`: also read every page (PRAGMA quick_check). That takes time in proportion
        to the library, so `syncd check` and the daemon's start do it, not each
        `--once` pass; every open checks that the file is not shorter than its header says."""
        _prepare_state_dir(state_dir)
        path = state_dir / STATE_FILE
        old_umask = os.umask(0o077)  # the database, its WAL and SHM files are born 0600
        db: sqlite3.Connection | None = None
        try:
            if os.path.lexists(path):
                # Before connecting: SQLite silently opens a file it may not write read-only,
                # and the first write of a pass would fail.
                os.chmod(path, 0o600)
            db = _connect(path)
            store = cls(db, path)
            store._prepare(verify=verify)
            os.chmod(path, 0o600)
        except (sqlite3.DatabaseError, OSError, StateError) as exc:
            if db is not None:
                db.close()
            if isinstance(exc, StateError):
                raise
            if isinstance(exc, OSError):
                raise StateError(
                    f"state store {path} cannot be made private (chmod 0600): "
                    f"{exc.strerror or exc}; it must belong to the user syncd runs as"
                ) from exc
            raise database_error(path, exc) from exc
        finally:
            os.umask(old_umask)
        return store

    def _prepare(self, *, verify: bool) -> None:
        db = self._db
        _check_length(self.path)
        # Only a new store takes it (an existing one keeps its size): rows hold whole books and
        # pages, and on 4 KB pages most spill into overflow chains. A first pass of 50,000
        # highlights wrote its rows in 0.28 s on 4 KB pages, 0.16 s on 16 KB, 0.10 s on 64 KB;
        # 64 KB would make an empty store 1 MB and a WAL 64 MB before its checkpoint.
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.execute("PRAGMA journal_mode=WAL")
        _configure(db)
        if verify:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        applied = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
        known = {name for name, _ in MIGRATIONS}
        unknown = applied - known
        if unknown:
            raise StateError(
                f"state store {self.path} was written by a newer syncd (migrations "
                f"{', '.join(sorted(unknown))}); upgrade syncd, or run `syncd rebuild-state` "
                "to keep it aside and rebuild the state from your vaults"
            )
        for name, migrate in MIGRATIONS:
            if name in applied:
                continue
            with self.transaction():
                migrate(db)
                db.execute("INSERT INTO schema_migrations VALUES (?, datetime('now'))", (name,))

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def disconnected(self) -> Iterator[None]:
        """No connection inside (around a fork: SQLite's locks and file handles must not be
        shared by two processes); a new one after."""
        self.close()
        try:
            yield
        finally:
            self.reconnect()

    def reconnect(self) -> None:
        """A new connection after `close` (the forked worker's own, or after `disconnected`)."""
        try:
            db = _connect(self.path)
            _configure(db)
        except sqlite3.DatabaseError as exc:
            raise database_error(self.path, exc) from exc
        self._db = db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            self.release_books()  # they may hold what the rollback undoes
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """The rows of one read-only statement (for modules with tables of their own)."""
        return list(self._db.execute(sql, tuple(params)))

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # --- source: watermark and revisions ---------------------------------------------------------

    def get_source(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM source WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_source(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO source(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def next_rev(self) -> int:
        current = int(self.get_source("rev") or 0)
        self.set_source("rev", str(current + 1))
        return current + 1

    # --- library cache ---------------------------------------------------------------------------

    def load_book(self, book_id: int) -> Book | None:
        fresh = self._fresh.get(book_id)
        if fresh is not None:
            return fresh
        row = self._db.execute("SELECT data FROM books WHERE id=?", (book_id,)).fetchone()
        return None if row is None else book_from_json(row[0])

    def release_books(self) -> None:
        """Forget the books kept from the pull (the cache on disk has them)."""
        self._fresh = {}
        self._fresh_highlights = 0

    def release_memory(self) -> None:
        """The books kept from the pull, and SQLite's page cache of this connection: what an
        idle daemon need not hold (issue 14)."""
        self.release_books()
        self._db.execute("PRAGMA shrink_memory")

    def _keep_fresh(self, book: Book) -> None:
        previous = self._fresh.pop(book.id, None)
        if previous is not None:
            self._fresh_highlights -= len(previous.highlights)
        if self._fresh_highlights + len(book.highlights) <= FRESH_BOOKS_HIGHLIGHTS:
            self._fresh[book.id] = book
            self._fresh_highlights += len(book.highlights)

    def merge_book(self, incoming: Book, *, rev: int, full: bool) -> bool:
        """Fold an export copy of a book into the cache; True if anything changed.

        Incremental exports carry only changed highlights, so those are upserted by id; a full
        reconcile carries every highlight, so ids missing from it are gone upstream.
        """
        cached = self.load_book(incoming.id)
        if cached is None or full:
            merged = incoming
            if cached is not None and full:
                merged = incoming.with_highlights(
                    merge_highlights(
                        # Highlights a device file added (local ids) are not Readwise's to delete.
                        (
                            h if is_local_id(h.id) else replace(h, is_deleted=True)
                            for h in cached.highlights
                        ),
                        incoming.highlights,
                    )
                )
        else:
            merged = replace(
                incoming, highlights=merge_highlights(cached.highlights, incoming.highlights)
            )
        data = book_to_json(merged)
        if cached is not None and book_to_json(cached) == data:
            return False
        self._keep_fresh(merged)
        self._db.execute(
            "INSERT INTO books(id, data, is_deleted, category, rev) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET data=excluded.data, is_deleted=excluded.is_deleted, "
            "category=excluded.category, rev=excluded.rev",
            (merged.id, data, int(merged.is_deleted), merged.category, rev),
        )
        return True

    def book_identities(self) -> list[tuple[int, str, str, str, int]]:
        """(id, title, readable_title, author, rev) of every cached book, highlights not
        decoded (device sources match books by title and author)."""
        fields = {name: book_field_index(name) for name in ("title", "readable_title", "author")}
        columns = ", ".join(
            f"coalesce(json_extract(data, '$.book[{index}]'), json_extract(data, '$.{name}'), '')"
            for name, index in fields.items()
        )
        rows = self._db.execute(f"SELECT id, {columns}, rev FROM books")  # built from constants
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

    def rekey_book(self, old_id: int, new_id: int) -> int:
        """Hand book `old_id`'s pages (in targets where `new_id` has none, and with no write in
        flight) and conflicts to `new_id`, and drop `old_id` from the cache: a book synced from
        a device alone, then found in Readwise, keeps its one page. Returns the pages moved."""
        moved = self._db.execute(
            "UPDATE pages SET book_id=? WHERE book_id=? AND pending IS NULL "
            "AND target NOT IN (SELECT target FROM pages WHERE book_id=?)",
            (new_id, old_id, new_id),
        ).rowcount
        self._db.execute(
            "UPDATE conflicts SET book_id=? WHERE book_id=? "
            "AND target NOT IN (SELECT target FROM conflicts WHERE book_id=?)",
            (new_id, old_id, new_id),
        )
        self._db.execute("DELETE FROM books WHERE id=?", (old_id,))
        dropped = self._fresh.pop(old_id, None)
        if dropped is not None:
            self._fresh_highlights -= len(dropped.highlights)
        return int(moved)

    def book_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM books").fetchone()[0])

    def books_to_render(self, target: str) -> list[tuple[int, int]]:
        """(book id, rev) of books whose cached data is newer than this target's page."""
        # Both sides from covering indexes: the rows themselves hold whole books and pages.
        rows = self._db.execute(
            "SELECT b.id, b.rev FROM books AS b INDEXED BY books_rev "
            "LEFT JOIN pages AS p INDEXED BY pages_render ON p.target=? AND p.book_id=b.id "
            "WHERE p.book_id IS NULL OR b.rev > p.rendered_rev ORDER BY b.id",
            (target,),
        )
        return [(int(r[0]), int(r[1])) for r in rows]

    # --- pages -----------------------------------------------------------------------------------

    def page(self, target: str, book_id: int) -> PageRow | None:
        row = self._db.execute(
            "SELECT * FROM pages WHERE target=? AND book_id=?", (target, book_id)
        ).fetchone()
        return None if row is None else _row_to_page(row)

    def pages_of(self, target: str, book_ids: Sequence[int]) -> dict[int, PageRow]:
        """This target's rows for these books (one query per few hundred, not one per book)."""
        found: dict[int, PageRow] = {}
        ids = list(book_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT * FROM pages WHERE target=? AND book_id IN ({marks})", (target, *chunk)
            )
            for row in rows:
                page = _row_to_page(row)
                found[page.book_id] = page
        return found

    def pages(self, target: str) -> list[PageRow]:
        rows = self._db.execute("SELECT * FROM pages WHERE target=? ORDER BY book_id", (target,))
        return [_row_to_page(r) for r in rows]

    def page_paths(self, target: str, *, placeholders: bool = True) -> list[str]:
        """Paths of this target's pages; `placeholders`: also those of writes a killed pass
        began (status pending)."""
        where = "" if placeholders else f" AND status != '{PAGE_PENDING}'"
        return [
            r[0]
            for r in self._db.execute(f"SELECT path FROM pages WHERE target=?{where}", (target,))
        ]

    def page_folders(self, target: str) -> list[str]:
        """The folders (vault-relative, "" for the root) holding this target's pages,
        placeholders included: a few rows, however many pages."""
        rows = self._db.execute(
            "SELECT DISTINCT rtrim(rtrim(path, replace(path, '/', '')), '/') FROM pages "
            "WHERE target=? AND path != ''",
            (target,),
        )
        return sorted(r[0] for r in rows)

    def has_pages(self, target: str) -> bool:
        """Whether this target has any page row (placeholders included)."""
        row = self._db.execute("SELECT 1 FROM pages WHERE target=? LIMIT 1", (target,))
        return row.fetchone() is not None

    def count_live_pages(self, target: str) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM pages WHERE target=? AND status=?", (target, PAGE_LIVE)
        ).fetchone()
        return int(row[0])

    def count_settled_pages(self, target: str) -> int:
        """Live pages whose book has not changed since they were rendered: a pass leaves them
        as they are without reading them (the `unchanged` of its summary)."""
        row = self._db.execute(
            "SELECT count(*) FROM pages AS p LEFT JOIN books AS b ON b.id = p.book_id "
            "WHERE p.target=? AND p.status=? AND (b.id IS NULL OR b.rev <= p.rendered_rev)",
            (target, PAGE_LIVE),
        ).fetchone()
        return int(row[0])

    def save_pages(self, pages: Iterable[PageRow]) -> None:
        """Write page rows (and clear their intents) in one transaction."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO pages(target, book_id, path, page_title, status, user_modified, "
                "sections, written_text, written_hash, rendered_rev, blocks, tombstones, head, "
                "pending) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) "
                "ON CONFLICT(target, book_id) DO UPDATE SET path=excluded.path, "
                "page_title=excluded.page_title, status=excluded.status, "
                "user_modified=excluded.user_modified, sections=excluded.sections, "
                "written_text=excluded.written_text, written_hash=excluded.written_hash, "
                "rendered_rev=excluded.rendered_rev, blocks=excluded.blocks, "
                "tombstones=excluded.tombstones, head=excluded.head, pending=NULL",
                [
                    (
                        p.target,
                        p.book_id,
                        p.path,
                        p.page_title,
                        p.status,
                        int(p.user_modified),
                        sections_to_json(p.sections),
                        p.written_text,
                        p.written_hash,
                        p.rendered_rev,
                        blocks_to_json(p.blocks, p.written_text),
                        json.dumps(sorted(p.tombstones)),
                        p.head,
                    )
                    for p in pages
                ],
            )

    def record_intents(self, pages: Sequence[PageRow]) -> None:
        """Before files are replaced: remember what each will contain (committed, durable)."""
        with self.transaction() as db:
            for page in pages:
                updated = db.execute(
                    "UPDATE pages SET pending=? WHERE target=? AND book_id=?",
                    (_page_to_json(page), page.target, page.book_id),
                ).rowcount
                if updated == 0:
                    # A page not yet known: a placeholder row that only carries the intent.
                    db.execute(
                        "INSERT INTO pages(target, book_id, path, page_title, status, sections, "
                        "written_text, written_hash, rendered_rev, pending) "
                        "VALUES (?, ?, ?, ?, 'pending', '[]', NULL, NULL, 0, ?)",
                        (
                            page.target,
                            page.book_id,
                            page.path,
                            page.page_title,
                            _page_to_json(page),
                        ),
                    )

    def record_create_markers(self, pages: Sequence[PageRow]) -> None:
        """Before new pages are written: a placeholder row each (path, and when the page's
        first section is dated), so a killed pass still leaves their folders known for
        temp-file cleanup, and the next pass can recognise the page it wrote (see
        `create_markers`)."""

        def marker(page: PageRow) -> str:
            first = page.sections[0].synced_at.isoformat() if page.sections else None
            return json.dumps({"create": True, "synced_at": first})

        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO pages(target, book_id, path, page_title, status, sections, "
                "rendered_rev, pending) VALUES (?, ?, ?, ?, 'pending', '[]', 0, ?)",
                [(p.target, p.book_id, p.path, p.page_title, marker(p)) for p in pages],
            )

    def create_markers(self, target: str) -> dict[int, datetime]:
        """Book id -> first-section time of each page a killed pass was creating: that pass's
        page, found on a later day, renders the same only with that pass's date."""
        found: dict[int, datetime] = {}
        for book_id, pending in self._db.execute(
            f"SELECT book_id, pending FROM pages WHERE target=? AND status='pending' "
            f"AND {_IS_CREATE_MARKER}",
            (target,),
        ):
            try:
                found[int(book_id)] = datetime.fromisoformat(json.loads(pending)["synced_at"])
            except (ValueError, KeyError, TypeError):
                continue  # a marker from before the date was kept, or a damaged one: no hint
        return found

    def drop_create_markers(self, target: str) -> None:
        with self.transaction() as db:
            db.execute(
                f"DELETE FROM pages WHERE target=? AND status='pending' AND {_IS_CREATE_MARKER}",
                (target,),
            )

    def pending_intents(self, target: str) -> list[tuple[PageRow | None, PageRow]]:
        """(current row or None for a placeholder, intended row) for every unfinished write."""
        out: list[tuple[PageRow | None, PageRow]] = []
        for row in self._db.execute(
            f"SELECT * FROM pages WHERE target=? AND pending IS NOT NULL "
            f"AND NOT {_IS_CREATE_MARKER}",
            (target,),
        ):
            current = None if row["status"] == PAGE_PENDING else _row_to_page(row)
            out.append((current, _page_from_json(target, row["book_id"], row["pending"])))
        return out

    def drop_intents(self, target: str, book_ids: Sequence[int]) -> None:
        """Forget intents whose files were never replaced."""
        with self.transaction() as db:
            for book_id in book_ids:
                db.execute(
                    "DELETE FROM pages WHERE target=? AND book_id=? AND status='pending'",
                    (target, book_id),
                )
                db.execute(
                    "UPDATE pages SET pending=NULL WHERE target=? AND book_id=?",
                    (target, book_id),
                )

    def mark_all_due(self, target: str) -> None:
        """Every page of this target is rendered again on this pass (its templates changed).
        Inside a dry run's transaction it is rolled back with the rest."""
        update = "UPDATE pages SET rendered_rev=0 WHERE target=?"
        if self._db.in_transaction:
            self._db.execute(update, (target,))
            return
        with self.transaction() as db:
            db.execute(update, (target,))

    def mark_due(self, target: str, book_ids: Iterable[int]) -> None:
        """Make these books due again for this target (e.g. `--resync`)."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE pages SET rendered_rev=0 WHERE target=? AND book_id=?",
                [(target, book_id) for book_id in book_ids],
            )

    def set_conflicts(self, target: str, book_id: int, conflicts: Sequence[Conflict]) -> None:
        """The book's open conflicts are exactly these (none: resolved)."""
        with self.transaction() as db:
            db.execute("DELETE FROM conflicts WHERE target=? AND book_id=?", (target, book_id))
            db.executemany(
                "INSERT INTO conflicts(target, book_id, highlight_id, theirs, upstream, "
                "recorded_at) VALUES (?, ?, ?, ?, ?, datetime('now'))",
                [(target, book_id, c.highlight_id, c.theirs, c.upstream) for c in conflicts],
            )

    def books_with_conflicts(self, target: str) -> set[int]:
        rows = self._db.execute("SELECT DISTINCT book_id FROM conflicts WHERE target=?", (target,))
        return {int(r[0]) for r in rows}

    def conflicts(self, target: str) -> list[tuple[int, Conflict]]:
        rows = self._db.execute(
            "SELECT book_id, highlight_id, theirs, upstream FROM conflicts WHERE target=? "
            "ORDER BY book_id, highlight_id",
            (target,),
        )
        return [(int(r[0]), Conflict(int(r[1]), r[2], r[3])) for r in rows]

    def page_stats(self, target: str) -> list[PageStat]:
        """What a scan compares each live page file with, without parsing any page row."""
        rows = self._db.execute(
            f"SELECT {_PAGE_STAT_COLUMNS} FROM pages WHERE target=? AND status=? ORDER BY book_id",
            (target, PAGE_LIVE),
        )
        return [PageStat(*row) for row in rows]

    def live_page_at(self, target: str, path: str) -> PageStat | None:
        """The live page whose file is at `path`, as a scan sees it: the watcher asks this for
        every file event, and a whole page row (its text, its blocks) is not needed for that."""
        row = self._db.execute(
            f"SELECT {_PAGE_STAT_COLUMNS} FROM pages WHERE target=? AND path=? AND status=?",
            (target, path, PAGE_LIVE),
        ).fetchone()
        return None if row is None else PageStat(*row)

    def path_taken(self, target: str, path: str) -> bool:
        """Whether a page of this target (not a killed pass's placeholder) is at `path`."""
        row = self._db.execute(
            "SELECT 1 FROM pages WHERE target=? AND path=? AND status != ?",
            (target, path, PAGE_PENDING),
        ).fetchone()
        return row is not None

    def observation(self, target: str, book_id: int) -> tuple[int | None, int | None, str | None]:
        """(mtime_ns, size, text hash) of the file as last seen by a scan or the watcher."""
        row = self._db.execute(
            "SELECT seen_mtime_ns, seen_size, seen_hash FROM pages WHERE target=? AND book_id=?",
            (target, book_id),
        ).fetchone()
        return (None, None, None) if row is None else (row[0], row[1], row[2])

    def observe(
        self, target: str, book_id: int, *, mtime_ns: int, size: int, seen_hash: str
    ) -> bool:
        """Record what a page file looks like now; True if it differs from what syncd wrote
        (the user edited it: remembered so the next pass treats the file as theirs)."""
        return self.observe_many(target, [(book_id, mtime_ns, size, seen_hash)])[0]

    def observe_many(
        self, target: str, observed: Sequence[tuple[int, int, int, str]]
    ) -> list[bool]:
        """`observe` for many (book id, mtime_ns, size, hash) in one transaction: one commit
        (one fsync) for a scan that read thousands of files, not one each."""
        differs: list[bool] = []
        if not observed:
            return differs
        with self.transaction() as db:
            for book_id, mtime_ns, size, seen_hash in observed:
                db.execute(
                    "UPDATE pages SET seen_mtime_ns=?, seen_size=?, seen_hash=?, "
                    "user_modified = user_modified "
                    "OR (written_hash IS NOT NULL AND written_hash != ?) "
                    "WHERE target=? AND book_id=?",
                    (mtime_ns, size, seen_hash, seen_hash, target, book_id),
                )
                row = db.execute(
                    "SELECT written_hash FROM pages WHERE target=? AND book_id=?",
                    (target, book_id),
                ).fetchone()
                differs.append(row is not None and row[0] != seen_hash)
        return differs

    def move_page(self, target: str, book_id: int, new_path: str) -> None:
        """The user moved or renamed a page inside the vault: later writes follow it."""
        with self.transaction() as db:
            db.execute(
                "UPDATE pages SET path=? WHERE target=? AND book_id=?", (new_path, target, book_id)
            )

    def mark_deleted_by_user(self, target: str, book_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE pages SET status=? WHERE target=? AND book_id=? AND status=?",
                (PAGE_DELETED_BY_USER, target, book_id, PAGE_LIVE),
            )

    # --- runs ------------------------------------------------------------------------------------

    def record_run(self, run: RunRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs(target, started_at, finished_at, result, summary, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run.target,
                    run.started_at,
                    run.finished_at,
                    run.result,
                    json.dumps(run.summary),
                    run.error,
                ),
            )
            # Keep the table small: the last 200 runs per target are plenty for `status`.
            db.execute(
                "DELETE FROM runs WHERE target=? AND id NOT IN "
                "(SELECT id FROM runs WHERE target=? ORDER BY id DESC LIMIT 200)",
                (run.target, run.target),
            )

    def last_run(self, target: str) -> RunRecord | None:
        row = self._db.execute(
            "SELECT * FROM runs WHERE target=? ORDER BY id DESC LIMIT 1", (target,)
        ).fetchone()
        if row is None:
            return None
        return RunRecord(
            target=row["target"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            result=row["result"],
            summary=json.loads(row["summary"]),
            error=row["error"],
        )
