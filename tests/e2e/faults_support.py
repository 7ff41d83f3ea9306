"""Support for the upstream-fault suite (tests/e2e/test_faults.py).

A `Workspace` is one case's world: a seeded stand-in library served on 127.0.0.1, an Obsidian vault,
a Logseq graph and a state dir, with a config file read by the real `load_config`. Passes run
in-process through the real `ReadwiseClient` (real HTTP) and the real engine; the client's `sleep`
only records the waits it asks for, so a Retry-After of 60 s costs nothing.

Every case follows a `Script`, so a fault-free run of the same script is its reference:

    incremental: baseline pass at T1 -> upstream edits (`edit_upstream`) -> the pass under test
                 at T2 -> a fault-free follow-up pass at T2
    changing:    the same, and the library also changes while the pass pages through it
    first:       the pass under test is the very first (a full export into empty targets) at T1
                 -> a fault-free follow-up pass at T1

The follow-up uses the same section time as the pass under test, so "the fault delayed a change by
one pass" and "the change went through at once" render the same bytes.
"""

from __future__ import annotations

import random
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import httpx

from syncd.config import Config, load_config
from syncd.errors import SyncdError
from syncd.runtime import build_targets
from syncd.sources.readwise import ReadwiseClient, RetryPolicy
from syncd.standin import Fault, FaultPlan, Library, Quirks, StandinServer, generate_library
from syncd.standin.faults import RequestInfo
from syncd.sync.engine import PassSummary, run_pass
from syncd.sync.state import StateStore
from tests.e2e.leaks import assert_token_absent, assert_token_absent_from_files

TOKEN = "faults-token-3b8e1d7c5a9f2046"
EXPORT_PATH = "/api/v2/export/"

# Section times: fixed, so every run of the script renders the same bytes.
T1 = datetime(2024, 3, 5, 9, 15, tzinfo=UTC).astimezone()
T2 = datetime(2024, 3, 7, 18, 40, tzinfo=UTC).astimezone()

BOOKS = 24
HIGHLIGHTS = 160
# Small pages: the incremental pass under test spans several pages, so a fault can land on any.
PAGE_HIGHLIGHTS = 3
# Short timeout: a reply delayed past it costs half a second, not thirty.
RETRY = RetryPolicy(timeout=0.5, max_attempts=4)

Files = dict[str, bytes]  # "vault/Readwise/Books/x.md" or "graph/pages/x.md" -> bytes
Tables = dict[str, list[tuple[object, ...]]]


class FaultSwitch(FaultPlan):
    """The server's fault plan: off until `arm`, then a given plan with requests numbered from 1
    at the moment it was armed (so "export request 2" means the second page of the pass under
    test, whatever passes came before)."""

    def __init__(self) -> None:
        super().__init__()
        self._switch_lock = threading.Lock()
        self._plan: FaultPlan | None = None
        self._requests = 0
        self._exports = 0

    def arm(self, plan: FaultPlan) -> None:
        with self._switch_lock:
            self._plan, self._requests, self._exports = plan, 0, 0

    def disarm(self) -> None:
        with self._switch_lock:
            self._plan = None

    def fault_for(self, request: RequestInfo) -> Fault | None:
        with self._switch_lock:
            plan = self._plan
            if plan is None:
                return None
            self._requests += 1
            export_index: int | None = None
            if request.export_index is not None:
                self._exports += 1
                export_index = self._exports
            renumbered = RequestInfo(self._requests, export_index, request.method, request.path)
        return plan.fault_for(renumbered)


@dataclass
class PassOutcome:
    """How one pass ended: exit code 0 with a summary, or the error's own exit code."""

    exit_code: int
    error: SyncdError | None
    summary: PassSummary | None
    sleeps: list[float]  # every wait the client asked for, in order
    export_requests: int  # export requests the server saw during the pass
    fired: list[tuple[str, str]] = field(default_factory=list)  # (fault kind, request path)

    @property
    def file_errors(self) -> list[tuple[str, str]]:
        if self.summary is None:
            return []
        return [error for target in self.summary.targets for error in target.errors]


@dataclass
class Workspace:
    root: Path
    library: Library
    server: StandinServer
    switch: FaultSwitch
    config_path: Path
    cfg: Config
    vault: Path
    graph: Path
    state: Path

    def run_pass(
        self, now: datetime, *, plan: FaultPlan | None = None, seed: int = 0
    ) -> PassOutcome:
        """One pass in-process; `plan` is armed for this pass only."""
        sleeps: list[float] = []
        requests_before = len(self.server.requests)
        fired_before = len(self.server.fired_faults)
        if plan is not None:
            self.switch.arm(plan)
        store = StateStore.open(self.cfg.state.dir)
        error: SyncdError | None = None
        summary: PassSummary | None = None
        try:
            with httpx.Client() as http:
                client = ReadwiseClient(
                    http,
                    token=TOKEN,
                    base_url=self.cfg.readwise.base_url,
                    retry=RETRY,
                    sleep=sleeps.append,
                    rng=random.Random(seed),
                )
                summary = run_pass(
                    store,
                    client,
                    build_targets(self.cfg),
                    base_url=self.cfg.readwise.base_url,
                    overlap=timedelta(seconds=self.cfg.readwise.overlap_seconds),
                    now=lambda: now,
                )
        except SyncdError as exc:
            error = exc
            assert_token_absent(TOKEN, str(exc))
        finally:
            store.close()
            self.switch.disarm()
        requests = self.server.requests[requests_before:]
        return PassOutcome(
            exit_code=0 if error is None else error.exit_code,
            error=error,
            summary=summary,
            sleeps=sleeps,
            export_requests=sum(1 for r in requests if r.path == EXPORT_PATH),
            fired=[
                (f.kind, self.server.requests[f.request_index - 1].path)
                for f in self.server.fired_faults[fired_before:]
            ],
        )

    def files(self) -> Files:
        """Every file of both targets (temp files, strays and the Logseq config included)."""
        found: Files = {}
        for label, root in (("vault", self.vault), ("graph", self.graph)):
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root).as_posix()
                # Readwise's sync log gets a line per pass: how faults split the passes shows.
                if path.is_file() and relative != SYNC_LOG_PAGE:
                    found[f"{label}/{relative}"] = path.read_bytes()
        return found

    def tables(self) -> Tables:
        """Every row of every state table, sorted; read while no store is open."""
        return dump_tables(self.state / "state.sqlite3")

    def pages_digest(self) -> list[tuple[object, ...]]:
        """What the state says was written where; comparable across runs of the script."""
        db = sqlite3.connect(f"file:{self.state / 'state.sqlite3'}?mode=ro", uri=True)
        try:
            return sorted(
                db.execute(
                    "SELECT target, book_id, path, page_title, status, sections, written_hash,"
                    " blocks, tombstones, pending FROM pages"
                ).fetchall(),
                key=repr,
            )
        finally:
            db.close()


def dump_tables(database: Path) -> Tables:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        names = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: sorted(db.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for name in sorted(names)
        }
    finally:
        db.close()


def write_config(root: Path, base_url: str) -> tuple[Path, Path, Path, Path]:
    vault, graph, state = root / "vault", root / "graph", root / "state"
    vault.mkdir()
    (graph / "logseq").mkdir(parents=True)
    config = root / "config.toml"
    config.write_text(
        f"""
[readwise]
base_url = "{base_url}"
max_attempts = {RETRY.max_attempts}
timeout = {RETRY.timeout}
backoff_max = 0.2
# No safety margin on the watermark: a change the pass under test missed must be found by the
# watermark alone, or these tests see it missing.
overlap_seconds = 0

[state]
dir = "{state}"

[[targets]]
name = "obs"
format = "obsidian"
vault = "{vault}"

[[targets]]
name = "lsq"
format = "logseq"
vault = "{graph}"
""",
        encoding="utf-8",
    )
    return config, vault, graph, state


@contextmanager
def open_workspace(root: Path, seed: int) -> Iterator[Workspace]:
    """A seeded library (the same books and highlights for a seed) served with small pages."""
    library = generate_library(books=BOOKS, highlights=HIGHLIGHTS, seed=seed)
    switch = FaultSwitch()
    quirks = Quirks(page_highlights=PAGE_HIGHLIGHTS)
    with StandinServer(library, token=TOKEN, quirks=quirks, faults=switch) as server:
        config, vault, graph, state = write_config(root, server.base_url)
        cfg = load_config(config, environ={"HOME": str(root)})
        yield Workspace(root, library, server, switch, config, cfg, vault, graph, state)
        assert_token_absent_from_files(TOKEN, vault, graph, state)


# --- the script's upstream edits ------------------------------------------------------------------


def probe_text(seed: int, what: str, number: int) -> str:
    """A plain, unique highlight text the census can count."""
    return f"Fault suite probe {seed} {what} {number} stays exactly once."


@dataclass(frozen=True)
class UpstreamEdits:
    new_book: int  # added before the pass under test: the highest id, so always on its page 1
    lowest_book: int  # left alone before the pass: a change to it lands on the last page
    touched: frozenset[int]


def _live_ids(library: Library, book_id: int) -> list[int]:
    snapshot = library.snapshot()
    return [h.id for h in snapshot.highlights_of(book_id) if not h.is_discard]


def _books_with_two_live(library: Library) -> list[int]:
    snapshot = library.snapshot()
    return sorted(
        book_id
        for book_id, book in snapshot.books.items()
        if not book.is_deleted and len(_live_ids(library, book_id)) >= 2
    )


def edit_upstream(library: Library, seed: int) -> UpstreamEdits:
    """Before the pass under test: six books get a highlight, one highlight is edited, one
    deleted, and a new book arrives. The incremental export then spans several pages."""
    rng = random.Random(f"upstream-{seed}")
    books = _books_with_two_live(library)
    lowest, pool = books[0], books[1:]
    chosen = rng.sample(pool, 8)
    for number, book_id in enumerate(chosen[:6]):
        library.add_highlight(book_id, text=probe_text(seed, "added", number), location=9000)
    library.edit_highlight(_live_ids(library, chosen[6])[0], text=probe_text(seed, "edited", 0))
    library.delete_highlight(_live_ids(library, chosen[7])[-1])
    new_book = library.add_book(title=f"Fault suite book {seed}", author="Fault Suite")
    for number in range(2):
        library.add_highlight(new_book, text=probe_text(seed, "new book", number))
    return UpstreamEdits(new_book, lowest, frozenset(chosen))


def change_anywhere(library: Library, seed: int, edits: UpstreamEdits) -> None:
    """Changes whose rendering does not depend on whether their page was already served: an edit
    and a deletion (rewritten in place), a deleted book, a new book (highest id: never on a later
    page, so it waits for the next pass either way), and a highlight for the lowest book (always
    on a page still to come)."""
    rng = random.Random(f"midpass-{seed}")
    pool = [
        b
        for b in _books_with_two_live(library)
        if b not in edits.touched and b not in (edits.new_book, edits.lowest_book)
    ]
    edited, trimmed, deleted = rng.sample(pool, 3)
    library.edit_highlight(_live_ids(library, edited)[-1], text=probe_text(seed, "edited", 1))
    library.delete_highlight(_live_ids(library, trimmed)[0])
    library.delete_book(deleted)
    arrival = library.add_book(title=f"Fault suite arrival {seed}", author="Fault Suite")
    library.add_highlight(arrival, text=probe_text(seed, "arrival", 0))
    library.add_highlight(edits.lowest_book, text=probe_text(seed, "late page", 0), location=9000)


def change_served_page(library: Library, seed: int, edits: UpstreamEdits) -> None:
    """A highlight for the book on page 1: the pass under test cannot see it, the next one adds it
    as a section of its own."""
    library.add_highlight(edits.new_book, text=probe_text(seed, "served page", 0))


def change_between_pages(library: Library, seed: int, edits: UpstreamEdits) -> None:
    change_anywhere(library, seed, edits)
    change_served_page(library, seed, edits)


# --- the census: every highlight exactly once ----------------------------------------------------

_PLAIN = re.compile(r"[A-Z][A-Za-z0-9 ,.;'?!]{11,}")


@dataclass(frozen=True)
class Census:
    checked: int  # highlight x target pairs counted
    problems: tuple[str, ...]


def census(files: Files, library: Library) -> Census:
    """Count each highlight in each target, by its url (its location link) or else its text:
    once if live, never if deleted or discarded. Only needles that are unique (no other url or
    text contains them) count, texts only when plain (rendered verbatim); books deleted in Readwise
    are left out (their pages are kept as they were, by design)."""
    snapshot = library.snapshot()
    highlights = list(snapshot.highlights.values())
    haystack = [h.text for h in highlights] + [h.url for h in highlights if h.url]
    repeats = Counter(haystack)
    targets = {
        label: "\n".join(
            data.decode("utf-8") for path, data in files.items() if path.startswith(label + "/")
        )
        for label in ("vault", "graph")
    }
    checked = 0
    problems: list[str] = []
    for highlight in highlights:
        # A Reader heading highlight (note ".h1".."h6") is written as a heading, without a link.
        heading = (highlight.note or "").strip().lower() in _HEADING_NOTES
        needle = _needle(None if heading else highlight.url, highlight.text)
        if needle is None or snapshot.books[highlight.book_id].is_deleted:
            continue
        if repeats[needle] > 1 or any(needle in other for other in haystack if other != needle):
            continue
        live = not (highlight.is_deleted or highlight.is_discard)
        for label, content in targets.items():
            checked += 1
            found = content.count(needle)
            if found != int(live):
                state = "live" if live else "deleted/discarded"
                problems.append(
                    f"{label}: highlight {highlight.id} ({state}) found {found} times:"
                    f" {needle[:50]!r}"
                )
    return Census(checked, tuple(problems))


SYNC_LOG_PAGE = "pages/Readwise.md"  # the Logseq target's sync notifications
_HEADING_NOTES = frozenset(f".h{level}" for level in range(1, 7))


def _needle(url: str | None, text: str) -> str | None:
    if url:
        return url
    if text == text.strip() and _PLAIN.fullmatch(text):
        return text
    return None


def changed_files(before: Files, after: Files) -> list[str]:
    """Paths added, removed or changed, for a readable assertion message."""
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))


# --- the script -----------------------------------------------------------------------------------

Script = Literal["first", "incremental", "changing"]  # see the module docstring


def prepare(ws: Workspace, seed: int, script: Script) -> tuple[datetime, UpstreamEdits | None]:
    """Everything before the pass under test; returns its section time and the edits made."""
    if script == "first":
        StateStore.open(ws.state).close()  # as a started syncd leaves it: empty, migrated
        return T1, None
    baseline = ws.run_pass(T1)
    if baseline.exit_code or baseline.file_errors:
        raise AssertionError(f"the baseline pass failed: {baseline}")
    return T2, edit_upstream(ws.library, seed)


@dataclass(frozen=True)
class Reference:
    files: Files
    pages: list[tuple[object, ...]]
    export_pages: int  # export requests of the fault-free pass under test
    census: Census


def reference_run(root: Path, seed: int, script: Script) -> Reference:
    """The script without faults. A library changing between pages is modelled as two halves:
    the changes any page may see before the pass, the one page 1 missed after it."""
    root.mkdir(parents=True, exist_ok=True)
    with open_workspace(root, seed) as ws:
        now, edits = prepare(ws, seed, script)
        if script == "changing" and edits is not None:
            change_anywhere(ws.library, seed, edits)
        under_test = ws.run_pass(now)
        if script == "changing" and edits is not None:
            change_served_page(ws.library, seed, edits)
        follow_up = ws.run_pass(now)
        for outcome in (under_test, follow_up):
            if outcome.exit_code or outcome.file_errors or outcome.sleeps:
                raise AssertionError(f"the fault-free reference failed: {outcome}")
        files = ws.files()
        return Reference(
            files, ws.pages_digest(), under_test.export_requests, census(files, ws.library)
        )
