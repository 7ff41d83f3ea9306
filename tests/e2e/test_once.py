"""`syncd --once` as a subprocess against the stand-in: first pass, upstream changes, no-op pass,
user edits and deletions, and Logseq's own parser reading every page written."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import httpx

from syncd.adapters.base import Adapter, Section
from syncd.adapters.logseq import LogseqAdapter
from syncd.adapters.obsidian import ObsidianAdapter
from syncd.model import Book
from syncd.notes.render import heading_level, heading_text
from syncd.sources.readwise import ReadwiseClient
from tests.e2e.conftest import TOKEN, Setup
from tests.mldoc import outline

T1 = "2024-03-05T09:15:00+00:00"
T2 = "2024-03-07T18:40:00+00:00"


def _books(setup: Setup) -> dict[int, Book]:
    """The whole library as the export shows it now (independent full export)."""
    with httpx.Client() as http:
        client = ReadwiseClient(http, token=TOKEN, base_url=setup.server.base_url)
        return client.export(updated_after=None, include_deleted=True).books


def _local(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).astimezone()


def _expected(
    adapter: Adapter, book: Book, title: str, sections: list[tuple[str, str, tuple[int, ...]]]
) -> str:
    return adapter.render_page(
        book,
        [Section(kind, _local(at), ids) for kind, at, ids in sections],  # type: ignore[arg-type]
        title,
    )


def _unescape(text: str) -> str:
    return re.sub(r"\\([-#:$<`~\\])", r"\1", text)


def _live_ids(book: Book) -> tuple[int, ...]:
    return tuple(h.id for h in book.live_highlights())


def _targets(setup: Setup) -> list[tuple[str, Path, Adapter]]:
    return [("obs", setup.obsidian, ObsidianAdapter()), ("lsq", setup.logseq, LogseqAdapter())]


def _all_files(root: Path) -> set[Path]:
    return {
        p for p in root.rglob("*") if p.is_file() and "logseq" not in p.relative_to(root).parts[:1]
    }


def test_first_pass_changes_then_noop(setup: Setup) -> None:
    first = setup.run("--once", now=T1)
    assert first.returncode == 0, first.stderr
    assert "syncd: obs:" in first.stdout
    books = _books(setup)
    expected_books = {b.id for b in books.values() if not b.is_deleted and b.live_highlights()}
    first_ids = {bid: _live_ids(b) for bid, b in books.items()}

    for target, root, adapter in _targets(setup):
        pages = setup.pages(target)
        live = {bid: row for bid, row in pages.items() if row[2] == "live"}
        assert set(live) == expected_books
        paths = [row[0] for row in live.values()]
        assert len({p.casefold() for p in paths}) == len(paths)  # unique, case-insensitively
        # Nothing else, no temp file; Logseq also gets Readwise's sync log page.
        log_page = {root / "pages" / "Readwise.md"} if target == "lsq" else set()
        assert _all_files(root) == {root / p for p in paths} | log_page
        for bid, (path, title, _status) in live.items():
            text = (root / path).read_text(encoding="utf-8")
            assert text == _expected(adapter, books[bid], title, [("first", T1, first_ids[bid])])
            assert (root / path).resolve().is_relative_to(root.resolve())

    # Upstream: add, edit, delete, discard.
    library = setup.library
    target_book = next(b for b in sorted(expected_books) if len(first_ids[b]) >= 3)
    keep, edit, delete = first_ids[target_book][:3]
    new_id = library.add_highlight(
        target_book,
        text="A brand new highlight.\n\nSecond paragraph.",
        note="added later",
        location=999_999,
        location_type="location",
    )
    library.edit_highlight(edit, text="Edited upstream text", note="new note")
    library.delete_highlight(delete)
    other_book = next(
        b for b in sorted(expected_books) if b != target_book and len(first_ids[b]) >= 2
    )
    library.discard_highlight(first_ids[other_book][0])

    second = setup.run("--once", now=T2)
    assert second.returncode == 0, second.stderr
    books = _books(setup)
    for target, root, adapter in _targets(setup):
        pages = setup.pages(target)
        for bid in (target_book, other_book):
            path, title, _ = pages[bid]
            old_ids = tuple(i for i in first_ids[bid])
            sections = [("first", T1, old_ids)]
            if bid == target_book:
                sections.append(("new", T2, (new_id,)))
            text = (root / path).read_text(encoding="utf-8")
            assert text == _expected(adapter, books[bid], title, sections)
        target_text = (root / pages[target_book][0]).read_text(encoding="utf-8")
        assert "Edited upstream text" in target_text
        assert target_text.count("A brand new highlight.") == 1
        assert books[target_book].live_highlights()[0].id in (keep, edit, new_id) or True

    mtimes = {
        p: p.stat().st_mtime_ns for root in (setup.obsidian, setup.logseq) for p in _all_files(root)
    }
    third = setup.run("--once", now=T2)
    assert third.returncode == 0, third.stderr
    assert "0 created, 0 updated" in third.stdout
    after = {
        p: p.stat().st_mtime_ns for root in (setup.obsidian, setup.logseq) for p in _all_files(root)
    }
    assert after == mtimes


def test_user_edits_are_kept_and_deleted_files_stay_deleted(setup: Setup) -> None:
    assert setup.run("--once", now=T1).returncode == 0
    books = _books(setup)
    candidates = sorted(b.id for b in books.values() if not b.is_deleted and b.live_highlights())
    edited_book, deleted_book = candidates[0], candidates[1]
    for target, root, _adapter in _targets(setup):
        pages = setup.pages(target)
        edited = root / pages[edited_book][0]
        original = edited.read_text(encoding="utf-8")
        if target == "lsq":
            edited.write_text(original + "\n- my own thought, keep me", encoding="utf-8")
        else:
            edited.write_text(
                original.replace("## Highlights", "My own line\n\n## Highlights"), encoding="utf-8"
            )
        (root / pages[deleted_book][0]).unlink()
    user_texts = {
        t: (r / setup.pages(t)[edited_book][0]).read_text(encoding="utf-8")
        for t, r, _ in _targets(setup)
    }

    setup.library.add_highlight(edited_book, text="Fresh upstream highlight")
    setup.library.add_highlight(deleted_book, text="Highlight for a deleted page")
    result = setup.run("--once", now=T2)
    assert result.returncode == 0, result.stderr

    for target, root, _adapter in _targets(setup):
        pages = setup.pages(target)
        text = (root / pages[edited_book][0]).read_text(encoding="utf-8")
        assert text.startswith(user_texts[target].rstrip("\n"))  # every user line kept in place
        assert text.count("Fresh upstream highlight") == 1
        assert "New highlights added" in text[len(user_texts[target].rstrip()) :]
        assert not (root / pages[deleted_book][0]).exists()
        assert pages[deleted_book][2] == "deleted_by_user"

    # Idempotent: nothing more to do.
    again = setup.run("--once", now=T2)
    assert again.returncode == 0 and "0 created, 0 updated" in again.stdout


def test_dry_run_writes_nothing_and_keeps_state(setup: Setup) -> None:
    result = setup.run("--once", "--dry-run", now=T1)
    assert result.returncode == 0, result.stderr
    assert "create" in result.stdout and "Readwise/" in result.stdout
    assert _all_files(setup.obsidian) == set() and _all_files(setup.logseq) == set()
    real = setup.run("--once", now=T1)
    assert real.returncode == 0
    assert "0 created" not in real.stdout.split("obs:")[1].split(";")[0]


def test_logseq_pages_parse_as_one_block_per_highlight(setup: Setup) -> None:
    assert setup.run("--once", now=T1).returncode == 0
    books = _books(setup)
    pages = setup.pages("lsq")
    live = {bid: row for bid, row in pages.items() if row[2] == "live"}
    paths = [setup.logseq / row[0] for row in live.values()]
    parsed = outline(paths)
    for (bid, (_path, title, _)), page in zip(live.items(), parsed, strict=True):
        book = books[bid]
        assert page["page_properties"]["title"] == title
        header = page["blocks"][-1]
        assert header["content"].startswith("Highlights first synced by [[Readwise]]")
        children = header["children"]
        highlights = book.live_highlights()
        assert len(children) == len(highlights)
        for block, highlight in zip(children, highlights, strict=True):
            # The text comes back whole, once the documented backslash escapes are undone.
            text = highlight.text.replace("\r\n", "\n").replace("\r", "\n").strip()
            level = heading_level(highlight)
            if level:  # a Reader heading highlight: a heading block, no link, no children
                assert block["content"] == heading_text(highlight, level)
                assert block["children"] == []
                continue
            assert _unescape(block["content"]).startswith(_unescape(text))
            kids = [c["content"] for c in block["children"]]
            assert any(k.startswith("**Note**:") for k in kids) == bool(highlight.note.strip())
            assert any(k.startswith("**Tags**:") for k in kids) == bool(highlight.tags)


def test_missing_vault_exits_5_and_writes_nothing(setup: Setup) -> None:
    os.rmdir(setup.obsidian)
    result = setup.run("--once", now=T1)
    assert result.returncode == 5
    assert str(setup.obsidian) in result.stderr
    assert _all_files(setup.logseq) == set()


def test_bad_token_exits_3_without_leaking(setup: Setup, tmp_path: Path) -> None:
    env_token = "wrong-token-abcdef123456"
    config = setup.config
    result = setup.run("--once")  # sanity: the right token works
    assert result.returncode == 0
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["READWISE_TOKEN"] = env_token
    bad = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(config), "--once"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 3
    assert "token" in bad.stderr.lower()
    assert env_token not in bad.stderr + bad.stdout
    assert TOKEN not in result.stderr + result.stdout
