"""Edits made in the vault reach Readwise: the real CLI against the stand-in, both formats.

Notes, tags and text fixes typed into an Obsidian vault and a Logseq graph are sent, land in the
stand-in's data, reach the other target's page in the same pass, and the pass after that writes
nothing and sends nothing. Conflicts, dry runs and deletions send nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.model import Book, Highlight
from syncd.standin import Library, generate_library
from tests.e2e.conftest import Setup, make_setup
from tests.e2e.test_once import _books

T1 = "2024-03-05T09:15:00+00:00"
T2 = "2024-03-07T18:40:00+00:00"
T3 = "2024-03-08T08:00:00+00:00"
WRITES = ("PATCH", "POST", "DELETE")


def enable_write_back(config: Path, fields: str = '["note", "tags", "text"]') -> None:
    text = config.read_text(encoding="utf-8")
    for fmt in ("obsidian", "logseq"):
        text = text.replace(f'format = "{fmt}"\n', f'format = "{fmt}"\nwrite_back = {fields}\n')
    config.write_text(text, encoding="utf-8")


@pytest.fixture
def wb(tmp_path: Path) -> Iterator[Setup]:
    library = generate_library(books=24, highlights=220, seed=7)
    for setup in make_setup(tmp_path, library):
        enable_write_back(setup.config)
        yield setup


def page_path(setup: Setup, target: str, book_id: int) -> Path:
    root = setup.obsidian if target == "obs" else setup.logseq
    return root / setup.pages(target)[book_id][0]


def add_child(path: Path, highlight: Highlight, child: str) -> None:
    """A child line under the highlight's first line, as the user would type it."""
    lines = path.read_text(encoding="utf-8").split("\n")
    index = next(i for i, line in enumerate(lines) if highlight.text.strip() in line)
    lines.insert(index + 1, child)
    path.write_text("\n".join(lines), encoding="utf-8")


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def snapshot(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in sorted(root.rglob("*.md"))}


def writes(setup: Setup) -> list[tuple[str, str, str]]:
    return [(r.method, r.path, r.body) for r in setup.server.requests if r.method in WRITES]


def _simple(book: Book) -> list[Highlight]:
    """Highlights without note or tags whose single-line text appears once in the page."""
    texts = [h.text.strip() for h in book.live_highlights()]
    return [
        h
        for h in book.live_highlights()
        if not h.note
        and not h.tags
        and "\n" not in h.text.strip()
        and len(h.text.strip()) > 20
        and sum(h.text.strip() in t for t in texts) == 1
    ]


def _pick_book(books: dict[int, Book]) -> Book:
    for book in sorted(books.values(), key=lambda b: b.id):
        if not book.is_deleted and len(_simple(book)) >= 4:
            return book
    raise AssertionError("the generated library has no book with four simple highlights")


def bare(book: Book) -> list[Highlight]:
    return _simple(book)


def test_notes_tags_and_text_fixes_reach_readwise_and_every_target(wb: Setup) -> None:
    assert wb.run("--once", now=T1).returncode == 0
    book = _pick_book(_books(wb))
    a, b, c, d = bare(book)[:4]
    obs, lsq = page_path(wb, "obs", book.id), page_path(wb, "lsq", book.id)
    add_child(obs, a, "    - Note: typed in Obsidian ✍️\n      over two lines")
    replace_in(obs, c.text.strip(), c.text.strip() + " — fixed")
    add_child(lsq, b, "\t\t- **Tags**: #[[to read 📚]] #idea")
    replace_in(lsq, d.text.strip(), "Fixed in Logseq: " + d.text.strip())

    plan = wb.run("--once", "--dry-run", now=T2)
    assert plan.returncode == 0, plan.stderr
    assert f"highlight {a.id}: note" in plan.stdout
    assert f"highlight {b.id}: add tag 'to read 📚'" in plan.stdout
    assert writes(wb) == []  # a dry run sends nothing

    done = wb.run("--once", now=T2)
    assert done.returncode == 0, done.stderr
    assert "to Readwise: 5 edits sent, 0 waiting, 0 conflicts" in done.stdout
    lib = wb.library
    assert lib.highlight(a.id).note == "typed in Obsidian ✍️\nover two lines"
    assert sorted(t.name for t in lib.highlight(b.id).tags) == ["idea", "to read 📚"]
    assert lib.highlight(c.id).text == c.text.strip() + " — fixed"
    assert lib.highlight(d.id).text == "Fixed in Logseq: " + d.text.strip()
    # exactly one request per change: a PATCH each for the note and two texts, a POST per tag
    assert sorted(m for m, _p, _b in writes(wb)) == ["PATCH", "PATCH", "PATCH", "POST", "POST"]

    # the other target got each change in the same pass
    obs_text, lsq_text = obs.read_text(encoding="utf-8"), lsq.read_text(encoding="utf-8")
    assert "typed in Obsidian ✍️" in lsq_text
    assert "[[to read 📚]]" in obs_text and "Fixed in Logseq: " in obs_text
    assert c.text.strip() + " — fixed" in lsq_text
    assert obs_text.count("typed in Obsidian") == 1 and lsq_text.count("to read 📚") == 1

    # the pass after writes nothing and sends nothing
    before, sent = snapshot(wb.obsidian, wb.logseq), len(writes(wb))
    again = wb.run("--once", now=T3)
    assert again.returncode == 0, again.stderr
    assert snapshot(wb.obsidian, wb.logseq) == before
    assert len(writes(wb)) == sent
    status = json.loads(wb.run("status", "--json").stdout)
    for target in status["targets"]:
        assert target["conflicts"] == [] and target["write_back"]["conflicts"] == []
        assert target["write_back"]["waiting"] == []
    sent_rows = [r for t in status["targets"] for r in t["write_back"]["sent"]]
    assert len(sent_rows) == 5


def test_a_field_changed_in_readwise_too_is_a_conflict_and_nothing_is_sent(wb: Setup) -> None:
    assert wb.run("--once", now=T1).returncode == 0
    book = _pick_book(_books(wb))
    mine = bare(book)[0]
    obs = page_path(wb, "obs", book.id)
    add_child(obs, mine, "    - Note: my side")
    wb.library.edit_highlight(mine.id, note="Readwise side")

    done = wb.run("--once", now=T2)
    assert done.returncode == 0, done.stderr
    assert writes(wb) == []
    assert wb.library.highlight(mine.id).note == "Readwise side"
    assert "- Note: my side" in obs.read_text(encoding="utf-8")  # the user's text kept
    status = json.loads(wb.run("status", "--json").stdout)
    obs_status = next(t for t in status["targets"] if t["target"] == "obs")
    (conflict,) = obs_status["write_back"]["conflicts"]
    assert (conflict["field"], conflict["yours"], conflict["readwise"]) == (
        "note",
        "my side",
        "Readwise side",
    )
    text = wb.run("status").stdout
    assert "write-back conflict" in text and "'my side'" in text and "'Readwise side'" in text


def test_two_targets_changing_one_note_differently_send_nothing(wb: Setup) -> None:
    assert wb.run("--once", now=T1).returncode == 0
    book = _pick_book(_books(wb))
    target = bare(book)[0]
    add_child(page_path(wb, "obs", book.id), target, "    - Note: from Obsidian")
    add_child(page_path(wb, "lsq", book.id), target, "\t\t- **Note**: from Logseq")
    assert wb.run("--once", now=T2).returncode == 0
    assert writes(wb) == []
    assert not wb.library.highlight(target.id).note
    status = json.loads(wb.run("status", "--json").stdout)
    both = [c for t in status["targets"] for c in t["write_back"]["conflicts"]]
    assert sorted(c["yours"] for c in both) == ["from Logseq", "from Obsidian"]


def test_deletions_are_never_sent(wb: Setup) -> None:
    assert wb.run("--once", now=T1).returncode == 0
    books = _books(wb)
    book = _pick_book(books)
    noted = next(
        (h for b in books.values() for h in b.live_highlights() if h.note and "\n" not in h.note),
        None,
    )
    assert noted is not None
    obs = page_path(wb, "obs", noted.book_id)
    lines = obs.read_text(encoding="utf-8").split("\n")
    note_line = next(i for i, line in enumerate(lines) if line.strip() == f"- Note: {noted.note}")
    del lines[note_line]
    obs.write_text("\n".join(lines), encoding="utf-8")
    gone = bare(book)[0]
    lsq = page_path(wb, "lsq", book.id)
    replace_in(lsq, gone.text.strip(), "")  # the highlight's words deleted
    assert wb.run("--once", now=T2).returncode == 0
    assert writes(wb) == []
    assert wb.library.highlight(noted.id).note == noted.note
    status = json.loads(wb.run("status", "--json").stdout)
    reasons = [n["reason"] for t in status["targets"] for n in t["write_back"]["not_sent"]]
    assert any("never sent" in r for r in reasons)


def test_nothing_is_sent_without_write_back(tmp_path: Path) -> None:
    library: Library = generate_library(books=6, highlights=60, seed=3)
    for setup in make_setup(tmp_path, library):
        assert setup.run("--once", now=T1).returncode == 0
        book: Book = _pick_book(_books(setup))
        h = bare(book)[0]
        add_child(page_path(setup, "obs", book.id), h, "    - Note: stays local")
        assert setup.run("--once", now=T2).returncode == 0
        assert writes(setup) == []
        assert not library.highlight(h.id).note
