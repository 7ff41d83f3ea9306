"""Shared by the kill -9 suites (test_crash.py: `syncd --once`; test_daemon_crash.py: the daemon).

Between trials the "user" edits pages in both formats (adds a line, a child block, edits a
highlight's text, deletes a highlight block or a whole file) and Readwise changes (new highlights
in most books, edits, deletions, discards, a new book, an author change). Every change is
recorded in `Expectations`, so after the crash and a recovery pass `check_recovered` can demand:
the state store is sound and has no unfinished write; no temp file is left; no file is empty;
each page of a book holds every live highlight exactly once (none lost, none doubled) unless the
user deleted it; every line the user wrote is there exactly once; nothing the user or Readwise
deleted came back; a page the user never touched is exactly what syncd renders; and the Logseq
pages read the same way in Logseq's own parser (mldoc, batched in `MldocQueue`).
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from syncd.adapters.base import Adapter, Section
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.model import Book, book_from_json
from syncd.standin import Library, LibrarySnapshot
from syncd.standin.library import book_json, highlight_json
from syncd.sync.state import PageRow, StateStore
from tests.e2e.conftest import Setup
from tests.mldoc import outline

FIRST_DAY = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
LOGSEQ_SECTION_HEADS = ("Highlights first synced by ", "New highlights added ")


def pass_time(trial: int) -> str:
    """SYNCD_NOW for a trial's passes: a day per trial, so sections carry different dates. The
    killed pass and its recovery share it (a crash and the next run on the same day)."""
    return (FIRST_DAY + timedelta(days=trial)).isoformat()


# --- the two targets every e2e config has --------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    root: Path
    adapter: Adapter
    logseq: bool

    @property
    def bullet(self) -> str:
        """How a highlight block's first line starts."""
        return "\t- " if self.logseq else "- "

    @property
    def child_bullet(self) -> str:
        """A child block under a highlight (the depth of its Tags/Note children)."""
        return "\t\t- " if self.logseq else "    - "


def targets_of(setup: Setup) -> list[Target]:
    return [
        Target("obs", setup.obsidian, ObsidianAdapter(), logseq=False),
        Target("lsq", setup.logseq, LogseqAdapter(), logseq=True),
    ]


def model_book(snapshot: LibrarySnapshot, book_id: int) -> Book:
    """The stand-in's book as syncd's model reads it from the export (deleted highlights too)."""
    highlights = snapshot.highlights_of(book_id, include_deleted=True)
    data = {
        **book_json(snapshot.books[book_id]),
        "highlights": list(map(highlight_json, highlights)),
    }
    return book_from_json(data)


def highlight_blocks(target: Target, book: Book, ids: Iterable[int]) -> dict[int, str]:
    """Each highlight's block as syncd renders it now (its Tags/Note children included), as whole
    lines ending in a newline."""
    section = Section("first", FIRST_DAY, tuple(ids))
    parts = target.adapter.render_parts(book, [section], target.adapter.page_title(book))
    return {hid: block.rstrip("\n") + "\n" for hid, block in parts.blocks.items()}


def first_line(block: str) -> str:
    return block.split("\n", 1)[0]


def trimmed(text: str) -> str:
    """Each line without trailing blanks: appending to a touched page trims the end of the page
    (`existing.rstrip()`, as Readwise's plugin does), so a last `- Tags: [[t]] ` loses its space."""
    return "\n".join(line.rstrip(" \t") for line in text.split("\n"))


def occurrences(text: str, block: str) -> int:
    """How often `block` (whole lines) appears in `text`, adjacent repeats included."""
    haystack, needle = "\n" + text + "\n", "\n" + block.rstrip("\n") + "\n"
    count, start = 0, 0
    while (found := haystack.find(needle, start)) != -1:
        count += 1
        start = found + 1
    return count


# --- what the user and Readwise did between trials -----------------------------------------------


@dataclass
class PageEdits:
    """Everything the user did to one page, over all trials."""

    lines: list[str] = field(default_factory=list)  # whole lines the user added
    edited: dict[int, str] = field(default_factory=dict)  # highlight id -> its line as edited
    deleted: dict[int, str] = field(default_factory=dict)  # highlight id -> first line removed
    children: set[int] = field(default_factory=set)  # highlights the user added a child under
    top_blocks: list[str] = field(default_factory=list)  # Logseq top-level blocks the user added


@dataclass
class Expectations:
    pages: dict[tuple[str, int], PageEdits] = field(default_factory=dict)  # (target, book id)
    deleted_files: dict[tuple[str, int], str] = field(default_factory=dict)  # -> its path
    # book id -> highlight id -> target -> first line of its block before Readwise removed it
    removed_upstream: dict[int, dict[int, dict[str, str]]] = field(default_factory=dict)
    fresh: set[tuple[str, int]] = field(default_factory=set)  # pages edited in this trial

    def user_owned(self, highlight_id: int) -> bool:
        """Edited by the user or given a child block somewhere: Readwise is never made to remove
        these (the merge keeps a block the user edited; one with a child of the user's would
        leave the expectation ambiguous)."""
        return any(
            highlight_id in page.edited or highlight_id in page.children
            for page in self.pages.values()
        )

    def counts(self) -> Counter[str]:
        tally: Counter[str] = Counter()
        for page in self.pages.values():
            tally["pages edited"] += 1
            tally["lines added"] += len(page.lines)
            tally["highlights edited"] += len(page.edited)
            tally["highlight blocks deleted"] += len(page.deleted)
        tally["files deleted"] = len(self.deleted_files)
        tally["highlights removed upstream"] = sum(map(len, self.removed_upstream.values()))
        return tally


def _marker(kind: str, trial: int, target: Target, book_id: int, n: int) -> str:
    return f"USER-{kind}-t{trial}-{target.name}-{book_id}-{n}"


def _replace_once(text: str, old: str, new: str) -> str:
    """Replace whole lines `old` (present exactly once) with `new`; `text` ends in a newline."""
    assert occurrences(text, old) == 1, old
    return ("\n" + text).replace("\n" + old, "\n" + new, 1)[1:]


def _edit_page(
    target: Target,
    snapshot: LibrarySnapshot,
    book_id: int,
    path: str,
    rng: random.Random,
    trial: int,
    expect: Expectations,
) -> None:
    """One to four seeded edits to one page, recorded in `expect`."""
    file = target.root / path
    original = file.read_text(encoding="utf-8")
    text = original if original.endswith("\n") else original + "\n"
    edits = expect.pages.setdefault((target.name, book_id), PageEdits())
    book = model_book(snapshot, book_id)
    blocks = highlight_blocks(target, book, (h.id for h in book.live_highlights()))
    free = [
        hid
        for hid, block in blocks.items()
        if hid not in edits.edited
        and hid not in edits.children
        and occurrences(text, block) == 1
        and occurrences(text, first_line(block)) == 1
    ]
    rng.shuffle(free)
    kinds = rng.sample(["line", "child", "edit", "delete"], rng.randint(1, 4))
    for n, kind in enumerate(kinds):
        marker = _marker(kind, trial, target, book_id, n)
        if kind == "line":
            text = _add_line(target, text, marker, rng, edits)
            continue
        if not free:
            continue
        hid = free.pop()
        block = blocks[hid]
        if kind == "child":
            line = target.child_bullet + marker
            text = _replace_once(text, block, block + line + "\n")
            edits.lines.append(line)
            edits.children.add(hid)
        elif kind == "edit":
            old = first_line(block)
            new = old.replace(target.bullet, target.bullet + marker + " ", 1)
            text = _replace_once(text, old + "\n", new + "\n")
            edits.edited[hid] = new
        else:
            text = _replace_once(text, block, "")
            edits.deleted[hid] = first_line(block)
    new_text = text if original.endswith("\n") else text[:-1]  # Logseq saves no final newline
    assert new_text != original
    file.write_text(new_text, encoding="utf-8")


def _add_line(target: Target, text: str, marker: str, rng: random.Random, edits: PageEdits) -> str:
    """A line of the user's own: Obsidian a paragraph (in the head or at the end), Logseq a
    top-level block (before the highlights or at the end) or a page property."""
    where = rng.choice(["head", "end", "property"] if target.logseq else ["head", "end"])
    if not target.logseq:
        if where == "head":
            edits.lines.append(marker)
            return _replace_once(text, "## Highlights\n", f"{marker}\n\n## Highlights\n")
        edits.lines.append(marker)
        return text + "\n" + marker + "\n"  # a blank line first: its own paragraph
    if where == "property":
        line = f"mine-{marker.lower()}:: {marker}"
        edits.lines.append(line)
        head, rest = text.split("\n", 1)  # after `title::`, among the page properties
        return f"{head}\n{line}\n{rest}"
    line = "- " + marker
    edits.lines.append(line)
    edits.top_blocks.append(marker)
    if where == "end":
        return text + line + "\n"
    first_section = next(ln for ln in text.split("\n") if ln.startswith("- "))
    return _replace_once(text, first_section + "\n", f"{line}\n{first_section}\n")


def make_user_edits(
    setup: Setup,
    rng: random.Random,
    trial: int,
    expect: Expectations,
    *,
    pages_per_target: int = 2,
    delete_file_chance: float = 0.35,
) -> None:
    """While no syncd runs: per target, edit a few fresh pages and sometimes one edited before,
    and now and then delete a whole page file."""
    snapshot = setup.library.snapshot()
    expect.fresh = set()
    for target in targets_of(setup):
        rows = setup.pages(target.name)
        live = sorted(
            book_id
            for book_id, (_path, _title, status) in rows.items()
            if status == "live" and (target.name, book_id) not in expect.deleted_files
        )
        fresh = [b for b in live if (target.name, b) not in expect.pages]
        again = [b for b in live if (target.name, b) in expect.pages]
        picks = rng.sample(fresh, min(pages_per_target, len(fresh)))
        if again and rng.random() < 0.5:
            picks.append(rng.choice(again))
        for book_id in picks:
            _edit_page(target, snapshot, book_id, rows[book_id][0], rng, trial, expect)
            expect.fresh.add((target.name, book_id))
        if rng.random() < delete_file_chance:
            book_id = rng.choice([b for b in live if b not in picks])
            path = rows[book_id][0]
            (target.root / path).unlink()
            expect.deleted_files[(target.name, book_id)] = path


def change_upstream(
    setup: Setup,
    rng: random.Random,
    trial: int,
    expect: Expectations,
    *,
    add_share: float = 0.95,
    edits: int = 6,
    removals: int = 4,
) -> None:
    """Readwise changes between trials: text edits, deletions and discards (few: the 20% guard
    must not pause the pass), a new highlight in most books (so the pass under test rewrites
    nearly every page), an author change, and every other trial a new book."""
    library: Library = setup.library
    snapshot = library.snapshot()
    live = [h for h in snapshot.live_highlights() if not h.is_discard]
    edited = rng.sample(live, edits)
    for highlight in edited:
        library.edit_highlight(highlight.id, text=f"Edited upstream t{trial}: {highlight.text}")
    edited_ids = {h.id for h in edited}
    removable = [
        h
        for h in live
        if h.id not in edited_ids
        and not expect.user_owned(h.id)
        and len(h.text.split("\n")[0]) >= 40  # a line that cannot turn up by chance
    ]
    rng.shuffle(removable)
    removed = 0
    for highlight in removable:
        lines = _telling_lines(setup, snapshot, highlight.book_id, highlight.id)
        if lines is None:
            continue
        expect.removed_upstream.setdefault(highlight.book_id, {})[highlight.id] = lines
        if removed % 4 == 3:
            library.discard_highlight(highlight.id)
        else:
            library.delete_highlight(highlight.id)
        removed += 1
        if removed == removals:
            break
    grown = [b for b in snapshot.exported_book_ids() if rng.random() < add_share]
    for book_id in grown:
        _add_highlight(library, rng, trial, book_id)
    if grown:
        library.edit_book_metadata(rng.choice(grown), author=f"Author Changed In Trial {trial}")
    if trial % 2 == 0:
        book_id = library.add_book(
            title=f"A Book Added In Trial {trial}",
            author="Crash Tester",
            category=rng.choice(["books", "articles"]),
        )
        for _ in range(3):
            _add_highlight(library, rng, trial, book_id)


def _telling_lines(
    setup: Setup, snapshot: LibrarySnapshot, book_id: int, highlight_id: int
) -> dict[str, str] | None:
    """Per target, the first line of the highlight's block, if no other block in the book has
    that line (so its absence later says the highlight is gone)."""
    book = model_book(snapshot, book_id)
    lines: dict[str, str] = {}
    for target in targets_of(setup):
        blocks = highlight_blocks(target, book, (h.id for h in book.live_highlights()))
        line = first_line(blocks[highlight_id])
        if sum(occurrences(block, line) for block in blocks.values()) != 1:
            return None
        lines[target.name] = line
    return lines


_WORDS = ("keep", "every", "line", "you", "wrote", "and", "never", "write", "twice")


def _add_highlight(library: Library, rng: random.Random, trial: int, book_id: int) -> None:
    words = " ".join(rng.choices(_WORDS, k=rng.randint(4, 12)))
    library.add_highlight(
        book_id,
        text=f"Added upstream in trial {trial} to {book_id}: {words}.",
        note=f"A note from trial {trial}" if rng.random() < 0.3 else None,
        tags=["crash-test"] if rng.random() < 0.2 else (),
        url=f"https://example.com/t{trial}/{book_id}/{rng.randrange(10**6)}"
        if rng.random() < 0.5
        else None,
    )


# --- the checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogseqPage:
    """What mldoc must read in one Logseq page (checked later, in one batch)."""

    label: str
    text: str
    title: str
    highlights: int  # blocks under the section heads
    user_top_blocks: tuple[str, ...]


@dataclass
class MldocQueue:
    """Logseq pages to read with mldoc: each run of Node costs ~0.1 s plus ~8 ms a page, so pages
    are gathered (over trials) and read `batch` at a time, failing on any page mldoc reads
    wrong; `check` reads what is left."""

    folder: Path
    batch: int = 400
    pages: list[LogseqPage] = field(default_factory=list)
    read: int = 0

    def add(self, page: LogseqPage) -> None:
        self.pages.append(page)
        if len(self.pages) >= self.batch:
            self._read_queued()

    def check(self) -> int:
        """Read what is still queued. Returns how many pages were read in all."""
        self._read_queued()
        return self.read

    def _read_queued(self) -> None:
        if not self.pages:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        paths = [self.folder / f"page{n}.md" for n in range(len(self.pages))]
        for path, page in zip(paths, self.pages, strict=True):
            path.write_bytes(page.text.encode("utf-8"))
        problems: list[str] = []
        for page, read in zip(self.pages, outline(paths), strict=True):
            problems.extend(_mldoc_problems(page, read))
        for path in paths:
            path.unlink()
        assert not problems, "\n".join(problems[:20])
        self.read += len(self.pages)
        self.pages = []


def _mldoc_problems(page: LogseqPage, read: dict[str, Any]) -> list[str]:
    where = page.label
    found: list[str] = []
    title = read["page_properties"].get("title")
    if title != page.title:
        found.append(f"{where}: mldoc reads title {title!r}, expected {page.title!r}")
    heads = [b for b in read["blocks"] if b["content"].startswith(LOGSEQ_SECTION_HEADS)]
    others = sorted(b["content"] for b in read["blocks"] if b not in heads)
    if others != sorted(page.user_top_blocks):
        found.append(f"{where}: top-level blocks besides the sections {others}")
    count = sum(len(head["children"]) for head in heads)
    if not heads or count != page.highlights:
        found.append(f"{where}: mldoc reads {count} highlight blocks, expected {page.highlights}")
    return found


def state_integrity(state_dir: Path) -> str:
    db = sqlite3.connect(f"file:{state_dir / 'state.sqlite3'}?mode=ro", uri=True)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def check_recovered(
    setup: Setup,
    expect: Expectations,
    *,
    mldoc: MldocQueue,
    label: str,
    rng: random.Random,
    mldoc_sample: int | None,
) -> None:
    """Everything the crash suites promise about the vaults and the state after a recovery.
    Logseq pages go to `mldoc`: the ones the user edited since the last check plus
    `mldoc_sample` others (None: all of them)."""
    assert state_integrity(setup.state) == "ok", label
    snapshot = setup.library.snapshot()
    store = StateStore.open(setup.state)
    try:
        assert store.integrity_check() == "ok", label
        for target in targets_of(setup):
            where = f"{label}: {target.name}"
            assert store.pending_intents(target.name) == [], f"{where}: writes left unfinished"
            temp = sorted(
                p.relative_to(target.root).as_posix() for p in target.root.rglob(".syncd-*")
            )
            assert temp == [], f"{where}: temp files left: {temp}"
            rows = store.pages(target.name)
            _check_target(target, rows, snapshot, expect, mldoc, where, rng, mldoc_sample)
    finally:
        store.close()


def _check_target(
    target: Target,
    rows: Sequence[PageRow],
    snapshot: LibrarySnapshot,
    expect: Expectations,
    mldoc: MldocQueue,
    label: str,
    rng: random.Random,
    mldoc_sample: int | None,
) -> None:
    files = {
        p.relative_to(target.root).as_posix(): p
        for p in target.root.rglob("*.md")
        # Logseq's config, and Readwise's sync log page (a line per pass, no page row).
        if p.relative_to(target.root).parts[0] != "logseq"
        and p.relative_to(target.root).as_posix() != "pages/Readwise.md"
    }
    empty = sorted(rel for rel, p in files.items() if p.stat().st_size == 0)
    assert empty == [], f"{label}: empty files {empty}"
    pages = {row.book_id: row for row in rows}
    # A page the user deleted stays "live" in the state until its book next changes (then it
    # becomes "deleted_by_user"); its file must never come back.
    live = {
        row.path: row
        for row in rows
        if row.status == "live" and (target.name, row.book_id) not in expect.deleted_files
    }
    assert set(files) == set(live), (
        f"{label}: files without a live page {sorted(set(files) - set(live))}, "
        f"live pages without a file {sorted(set(live) - set(files))}"
    )
    books = {book_id: model_book(snapshot, book_id) for book_id in snapshot.books}
    for book_id in snapshot.exported_book_ids():
        if not books[book_id].live_highlights():
            continue  # only discarded ones: nothing to write
        page = pages.get(book_id)
        assert page is not None, f"{label}: book {book_id} has no page"
        deleted = expect.deleted_files.get((target.name, book_id))
        if deleted is not None:
            assert page.status in ("deleted_by_user", "live"), (label, book_id, page.status)
            assert not (target.root / deleted).exists(), f"{label}: {deleted} recreated"
        else:
            assert page.status == "live", (label, book_id, page.status)
    if mldoc_sample is None:
        for_mldoc = set(live)
    else:
        others = sorted(p for p, r in live.items() if (target.name, r.book_id) not in expect.fresh)
        for_mldoc = {p for p, r in live.items() if (target.name, r.book_id) in expect.fresh}
        for_mldoc.update(rng.sample(others, min(mldoc_sample, len(others))))
    for row in sorted(live.values(), key=lambda r: r.book_id):
        text = files[row.path].read_text(encoding="utf-8")
        edits = expect.pages.get((target.name, row.book_id))
        where = f"{label} {row.path} (book {row.book_id})"
        highlights = _check_page(target, row, books[row.book_id], text, edits, expect, where)
        if target.logseq and row.path in for_mldoc:
            tops = tuple(edits.top_blocks) if edits is not None else ()
            mldoc.add(LogseqPage(where, text, row.page_title, highlights, tops))


def _check_page(
    target: Target,
    row: PageRow,
    book: Book,
    text: str,
    edits: PageEdits | None,
    expect: Expectations,
    where: str,
) -> int:
    """One live page; returns how many highlight blocks it must hold."""
    ids = [hid for section in row.sections for hid in section.highlight_ids]
    assert len(ids) == len(set(ids)), f"{where}: a highlight in two sections"
    live = [h.id for h in book.live_highlights()]
    if target.logseq:
        assert text.startswith("title:: "), f"{where}: does not start with its properties"
    else:
        assert text.startswith("# ") and text.endswith("\n"), f"{where}: not a whole page"
        assert text.split("\n").count("## Highlights") == 1, f"{where}: ## Highlights not once"
    if edits is None:
        # Never touched by the user: exactly what syncd renders from its sections (so every live
        # highlight once, nothing removed), and known to be syncd's own.
        parts = target.adapter.render_parts(book, row.sections, row.page_title)
        assert text == parts.text, f"{where}: differs from syncd's render"
        assert not row.user_modified, f"{where}: syncd's own page taken for a user edit"
        assert set(live) <= set(parts.blocks), f"{where}: highlights in no section"
        return len(live)
    text = trimmed(text)
    blocks = {hid: trimmed(block) for hid, block in highlight_blocks(target, book, live).items()}
    kept_by_user = {hid for hid in edits.edited if hid not in edits.deleted}
    shown = [blocks[hid] for hid in live if hid not in edits.deleted and hid not in kept_by_user]
    for block in shown:
        found = occurrences(text, block)
        if found != 1:
            # Readwise allows two highlights with the same text (and no link) in a book, or one
            # whose block is another's plus a Note: count what the page must show of this block.
            wanted = sum(occurrences(other, block) for other in shown)
            assert found == wanted, f"{where}: a block found {found} times, not {wanted}:\n{block}"
    for hid, line in edits.edited.items():
        if hid not in edits.deleted:
            found = occurrences(text, trimmed(line))
            assert found == 1, f"{where}: the user's edit of {hid} there {found} times: {line}"
    for line in edits.lines:
        found = occurrences(text, trimmed(line))
        assert found == 1, f"{where}: the user's line there {found} times: {line}"
    for hid, line in edits.deleted.items():
        gone = [trimmed(line)] + ([first_line(blocks[hid])] if hid in blocks else [])
        assert all(occurrences(text, g) == 0 for g in gone), f"{where}: deleted {hid} is back"
    for hid, lines in expect.removed_upstream.get(row.book_id, {}).items():
        if hid not in kept_by_user:
            back = occurrences(text, trimmed(lines[target.name]))
            assert back == 0, f"{where}: removed {hid} is back"
    return len([hid for hid in live if hid not in edits.deleted]) + len(
        [hid for hid in kept_by_user if hid not in live]
    )


# --- where a kill landed -------------------------------------------------------------------------


def kill_points(rng: random.Random, trials: int) -> list[float]:
    """Where in a pass each trial's kill lands, as a fraction of the pass: one seeded point in
    each of `trials` equal slices, in seeded order, so that even a few trials cover the pass."""
    slices = list(range(trials))
    rng.shuffle(slices)
    return [(n + rng.random()) / trials for n in slices]


def kill_phase(events: Sequence[dict[str, Any]], killed: bool) -> str:
    """The last milestone the child logged before it died. (file.written lines come out a batch
    at a time, once the batch's files are written: "after pull.done" includes planning and
    writing the first batches.)"""
    if not killed:
        return "pass finished first"
    names = [e.get("event") for e in events]
    if "pass.summary" in names:
        return "after pass.summary"
    written = [e for e in events if e.get("event") == "file.written"]
    if written:
        return f"after file.written ({written[-1].get('target')})"
    if "pull.done" in names:
        return "after pull.done"
    if "scan.done" in names:
        return "after the start-up scan (pulling)"
    return "before any log line (start-up, pull)"


def progress_bucket(lines_seen: int, whole_pass: int) -> str:
    """How far through a whole pass's log lines the child got, in tenths."""
    tenth = min(10, 10 * lines_seen // max(whole_pass, 1))
    return "100%" if tenth == 10 else f"{10 * tenth}-{10 * tenth + 10}%"


def in_progress_order(buckets: Counter[str]) -> dict[str, int]:
    return dict(sorted(buckets.items(), key=lambda item: int(item[0].split("-")[0].rstrip("%"))))


def parse_event(line: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return {"event": None, "line": line}
    return event if isinstance(event, dict) else {"event": None, "line": line}
