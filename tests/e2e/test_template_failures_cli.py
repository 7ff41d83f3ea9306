"""A target's own templates through the command line (issue 10): a broken template stops
`syncd check` and `syncd --once` with exit 2 naming its file and line before anything is written;
a template that fails on one book only skips that book (the others are written, `syncd status`
names the template); a templates change is announced by `--dry-run` and then re-renders the
pages the user did not touch."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from syncd.notes.template_check import sample_book
from syncd.sync.state import StateStore
from tests.e2e.conftest import Setup, use_templates
from tests.e2e.crash_checks import CRASH_TEMPLATES, model_book, parse_event, targets_of

BROKEN = {
    # a syntax error: the `if` is never closed
    "syntax": ("highlight.j2", "> {{ highlight_text }}\n{% if highlight_note %}\nNote: x\n", 2),
    # a filter that raises on every book (the sample book's too): "%d" of a title
    "filter": ("page_title.j2", '# {{ title }}\n{{ "%d" | format(title) }}\n', 2),
    # a file name that leaves the folder
    "path": ("file_name.j2", "../../{{ title }}\n", None),
}


def _templates(setup: Setup, files: dict[str, str]) -> Path:
    folder = setup.config.parent / "templates"
    shutil.copytree(CRASH_TEMPLATES, folder)
    for name, source in files.items():
        (folder / name).write_text(source, encoding="utf-8")
    use_templates(setup.config, "obs", folder)
    return folder


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_template_is_exit_2_naming_file_and_line(setup: Setup, kind: str) -> None:
    name, source, line = BROKEN[kind]
    folder = _templates(setup, {name: source})
    where = f"{folder / name}:{line}" if line else str(folder / name)
    for command in (["check"], ["--once"]):
        result = setup.run(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert where in result.stdout + result.stderr, (command, result.stderr)
    assert not list(setup.obsidian.rglob("*.md")) and not list(setup.logseq.rglob("*.md"))


def _book_with_a_unique_count(setup: Setup) -> tuple[int, int]:
    """(book id, live highlight count) of the one book with that count (not the sample's)."""
    snapshot = setup.library.snapshot()
    counts = {
        book_id: len(model_book(snapshot, book_id).live_highlights())
        for book_id in snapshot.exported_book_ids()
    }
    tally = Counter(counts.values())
    sample = len(sample_book().live_highlights())
    count = min(c for c, n in tally.items() if n == 1 and c not in (0, sample))
    return next(b for b, c in counts.items() if c == count), count


def test_a_template_failing_on_one_book_skips_only_that_book(setup: Setup) -> None:
    book_id, count = _book_with_a_unique_count(setup)
    metadata = (
        "## Metadata\n- Author: [[{{author}}]]\n"
        f'- Share: {{{{ "%.0f" | format(100 / (num_highlights - {count})) }}}}%\n'
    )
    folder = _templates(setup, {"page_metadata.j2": metadata})
    assert setup.run("check").returncode == 0  # the sample book renders
    result = setup.run("--once")
    assert result.returncode == 2 and "1 FAILED" in result.stdout, result.stdout
    events = map(parse_event, result.stderr.splitlines())
    logged = [e for e in events if e["event"] == "book.failed"]
    assert [e["book_id"] for e in logged] == [book_id]
    assert f"{folder / 'page_metadata.j2'}:3: ZeroDivisionError" in logged[0]["error"]
    written = {p.book_id for p in _live_pages(setup, "obs")}
    assert book_id not in written and len(written) == len(setup.pages("lsq")) - 1
    status = setup.run("status")
    assert status.returncode == 0
    assert (
        f"book {book_id}" in status.stdout and f"{folder / 'page_metadata.j2'}:3" in status.stdout
    )
    # Nothing torn: no temp file, every page exactly what its template renders.
    assert not [p for p in setup.obsidian.rglob("*") if p.name.startswith(".syncd-")]
    _pages_are_renders(setup, skip=set())


def _pages_are_renders(setup: Setup, skip: set[int]) -> None:
    """Every Obsidian page (but `skip`) is exactly what the configured templates render."""
    [target] = [t for t in targets_of(setup) if t.name == "obs"]
    snapshot = setup.library.snapshot()
    store = StateStore.open(setup.state)
    try:
        rows = [r for r in store.pages("obs") if r.status == "live" and r.book_id not in skip]
    finally:
        store.close()
    assert rows
    for row in rows:
        book = model_book(snapshot, row.book_id)
        want = target.adapter.render_parts(book, row.sections, row.page_title).text
        assert (setup.obsidian / row.path).read_text(encoding="utf-8") == want, row.path


class _Row:
    def __init__(self, book_id: int, path: str) -> None:
        self.book_id, self.path = book_id, path


def _live_pages(setup: Setup, target: str) -> list[_Row]:
    return [
        _Row(book_id, path)
        for book_id, (path, _title, status) in setup.pages(target).items()
        if status == "live"
    ]


def test_a_templates_change_is_announced_then_rerenders_untouched_pages(setup: Setup) -> None:
    assert setup.run("--once").returncode == 0
    pages = sorted(_live_pages(setup, "obs"), key=lambda r: r.book_id)
    touched = setup.obsidian / pages[0].path
    touched.write_text(touched.read_text(encoding="utf-8") + "\nmine\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in setup.obsidian.rglob("*.md")}
    use_templates(setup.config, "obs", CRASH_TEMPLATES)
    dry = setup.run("--once", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    announced = [line for line in dry.stdout.split("\n") if "new templates" in line]
    assert len(announced) == len(pages) - 1 and all(a.startswith("rewrite") for a in announced)
    assert {p: p.read_bytes() for p in setup.obsidian.rglob("*.md")} == before
    done = setup.run("--once")
    assert done.returncode == 0, done.stderr
    assert touched.read_bytes() == before[touched]  # the user's page is never rewritten
    _pages_are_renders(setup, skip={pages[0].book_id})
    assert all(
        "## Highlights\n> " in (setup.obsidian / row.path).read_text(encoding="utf-8")
        for row in pages[1:]
    )
    again = setup.run("--once")
    assert "obs: 0 created, 0 updated" in again.stdout
