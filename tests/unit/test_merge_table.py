"""One test per row of the merge table (issue: block-level three-way merge), for both formats."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from syncd.errors import VaultError
from syncd.notes.blockids import stable_block_id
from tests.harness import Harness

Fmt = Literal["obsidian", "logseq"]
FORMATS: list[Fmt] = ["obsidian", "logseq"]


def _setup(tmp_path: Path, fmt: Fmt, **policy: object) -> tuple[Harness, list[int]]:
    h = Harness(tmp_path, fmt, **policy)
    h.source.add_book(
        1,
        "The Book",
        ["Alpha highlight text here", "Bravo highlight text here", "Charlie highlight text here"],
    )
    h.source.add_book(2, "Other Book", ["Delta highlight text here"])
    h.sync()
    return h, h.source.live_ids(1)


def _child_line(fmt: Fmt, text: str) -> str:
    return f"    - {text}\n" if fmt == "obsidian" else f"\t\t- {text}\n"


def _user_line(fmt: Fmt, text: str) -> str:
    return f"\n{text}\n" if fmt == "obsidian" else f"\n- {text}"


def _insert_after_line_with(page: str, needle: str, insert: str) -> str:
    lines = page.split("\n")
    index = next(i for i, line in enumerate(lines) if needle in line)
    lines.insert(index + 1, insert.rstrip("\n"))
    return "\n".join(lines)


@pytest.mark.parametrize("fmt", FORMATS)
def test_new_highlight_appends_a_dated_section_to_an_edited_page(tmp_path: Path, fmt: Fmt) -> None:
    h, _ids = _setup(tmp_path, fmt)
    edited = h.read(1) + _user_line(fmt, "my own closing thought")
    h.write(1, edited)
    h.source.add_highlight(1, "Echo highlight arrives later")
    summary = h.sync()
    text = h.read(1)
    assert text.startswith(edited.rstrip("\n"))
    tail = text[len(edited.rstrip("\n")) :]
    assert "New highlights added" in tail and tail.count("Echo highlight arrives later") == 1
    assert summary.updated == 1 and summary.highlights_added == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_new_highlight_goes_in_reading_order_with_layout_rewrite(tmp_path: Path, fmt: Fmt) -> None:
    h, _ids = _setup(tmp_path, fmt, layout="rewrite")
    h.write(1, h.read(1) + _user_line(fmt, "mine"))
    between = h.source.books[1].highlights[0].location or 0
    h.source.add_highlight(1, "Between alpha and bravo", location=between)
    h.sync()
    text = h.read(1)
    assert "New highlights added" not in text
    assert (
        text.index("Alpha highlight")
        < text.index("Between alpha and bravo")
        < text.index("Bravo highlight")
    )
    assert text.count("Between alpha and bravo") == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_upstream_edit_replaces_an_untouched_block_in_place(tmp_path: Path, fmt: Fmt) -> None:
    h, ids = _setup(tmp_path, fmt)
    page = h.read(1) + _user_line(fmt, "my line at the end")
    page = _insert_after_line_with(
        page, "Alpha highlight", _child_line(fmt, "my child under alpha")
    )
    h.write(1, page)
    h.source.edit(ids[0], text="Alpha highlight, as corrected in Readwise")
    h.sync()
    text = h.read(1)
    assert "Alpha highlight, as corrected in Readwise" in text
    assert "Alpha highlight text here" not in text
    assert "my child under alpha" in text and "my line at the end" in text
    assert (
        text.index("corrected in Readwise")
        < text.index("my child under alpha")
        < text.index("Bravo")
    )
    assert h.store.conflicts("t") == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_edit_on_both_sides_keeps_the_users_text_and_records_a_conflict(
    tmp_path: Path, fmt: Fmt
) -> None:
    h, ids = _setup(tmp_path, fmt)
    page = h.read(1).replace("Alpha highlight text here", "Alpha highlight, my wording")
    h.write(1, page)
    h.source.edit(ids[0], text="Alpha highlight, Readwise wording")
    h.source.edit(ids[1], text="Bravo highlight, fixed upstream")
    summary = h.sync()
    text = h.read(1)
    assert "Alpha highlight, my wording" in text and "Readwise wording" not in text
    assert "Bravo highlight, fixed upstream" in text  # the untouched block still follows Readwise
    conflicts = h.store.conflicts("t")
    assert [(book, c.highlight_id) for book, c in conflicts] == [(1, ids[0])]
    assert "my wording" in conflicts[0][1].theirs and "Readwise wording" in conflicts[0][1].upstream
    assert summary.conflicts == 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("touched", [False, True])
def test_upstream_delete_removes_an_untouched_block(
    tmp_path: Path, fmt: Fmt, touched: bool
) -> None:
    h, ids = _setup(tmp_path, fmt)
    if touched:
        h.write(1, h.read(1) + _user_line(fmt, "mine"))
    h.source.delete(ids[1])
    h.sync()
    text = h.read(1)
    assert "Bravo highlight" not in text
    assert "Alpha highlight" in text and "Charlie highlight" in text
    assert ("mine" in text) == touched


@pytest.mark.parametrize("fmt", FORMATS)
def test_upstream_delete_with_keep_policy_keeps_the_block(tmp_path: Path, fmt: Fmt) -> None:
    h, ids = _setup(tmp_path, fmt, on_upstream_delete="keep")
    h.write(1, h.read(1) + _user_line(fmt, "mine"))
    h.source.delete(ids[1])
    h.sync()
    assert "Bravo highlight text here" in h.read(1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_upstream_delete_of_a_block_edited_here_keeps_it(tmp_path: Path, fmt: Fmt) -> None:
    h, ids = _setup(tmp_path, fmt)
    h.write(
        1, h.read(1).replace("Bravo highlight text here", "Bravo highlight text here, annotated")
    )
    h.source.delete(ids[1])
    h.sync()
    assert "Bravo highlight text here, annotated" in h.read(1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_block_deleted_by_the_user_stays_deleted(tmp_path: Path, fmt: Fmt) -> None:
    h, ids = _setup(tmp_path, fmt)
    lines = [line for line in h.read(1).split("\n") if "Bravo highlight" not in line]
    h.write(1, "\n".join(lines))
    h.source.edit(ids[1], text="Bravo highlight text here, edited upstream")
    h.source.add_highlight(1, "Foxtrot is new")
    h.sync()
    h.sync()
    text = h.read(1)
    assert "Bravo" not in text and text.count("Foxtrot is new") == 1
    assert ids[1] in h.page(1).tombstones


@pytest.mark.parametrize("fmt", FORMATS)
def test_resync_deleted_brings_a_deleted_block_back(tmp_path: Path, fmt: Fmt) -> None:
    h, _ids = _setup(tmp_path, fmt, resync_deleted=True)
    lines = [line for line in h.read(1).split("\n") if "Bravo highlight" not in line]
    h.write(1, "\n".join(lines))
    h.source.add_highlight(1, "Lima makes the book due")  # the next pass that touches the book
    h.sync()
    assert h.read(1).count("Bravo highlight text here") == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_everything_the_user_adds_is_kept_in_place(tmp_path: Path, fmt: Fmt) -> None:
    h, ids = _setup(tmp_path, fmt)
    page = h.read(1)
    if fmt == "obsidian":
        page = "---\nstatus: reading\n---\n" + page
        page = page.replace("## Highlights\n", "## Highlights\nA paragraph of mine.\n\n")
    else:
        page = page.replace("category:: #articles\n", "category:: #articles\nstatus:: reading\n")
        page = _insert_after_line_with(page, "Alpha highlight", "\t- a block of mine between")
    h.write(1, page)
    h.source.add_highlight(1, "Golf is new")
    h.source.edit(ids[2], text="Charlie highlight, corrected")
    h.sync()
    text = h.read(1)
    for mine in (
        ["status: reading", "A paragraph of mine."]
        if fmt == "obsidian"
        else ["status:: reading", "a block of mine between"]
    ):
        assert text.count(mine) == 1
    assert "Charlie highlight, corrected" in text and text.count("Golf is new") == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata_follows_readwise_where_untouched(tmp_path: Path, fmt: Fmt) -> None:
    h, _ids = _setup(tmp_path, fmt)
    h.write(1, h.read(1) + _user_line(fmt, "mine"))
    old_path = h.page(1).path
    h.source.edit_book(1, author="Bea Newauthor", title="The Book, Renamed")
    h.source.add_highlight(1, "Hotel is new")  # the book must be in the export to be seen
    h.sync()
    text = h.read(1)
    assert "Bea Newauthor" in text and "Ann Author" not in text
    assert h.page(1).path == old_path  # not renamed without rename_on_title_change
    # A metadata line the user edited is theirs.
    h.write(1, h.read(1).replace("Bea Newauthor", "Bea N. (my spelling)"))
    h.source.edit_book(1, author="Bea Newerauthor")
    h.source.add_highlight(1, "India is new")
    h.sync()
    assert "Bea N. (my spelling)" in h.read(1) and "Newerauthor" not in h.read(1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_deleted_by_the_user_is_not_recreated_until_resync(tmp_path: Path, fmt: Fmt) -> None:
    h, _ids = _setup(tmp_path, fmt)
    path = h.path(1)
    path.unlink()
    h.source.add_highlight(1, "Juliet is new")
    h.sync()
    assert not path.exists()
    assert h.page(1).status == "deleted_by_user"
    h.sync(resync=frozenset({1}))
    text = path.read_text(encoding="utf-8")
    assert text.count("Juliet is new") == 1 and text.count("Alpha highlight") == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_moved_file_is_followed_and_never_duplicated(tmp_path: Path, fmt: Fmt) -> None:
    h, _ids = _setup(tmp_path, fmt)
    old = h.path(1)
    new = (
        (h.vault / "Elsewhere" / "my copy.md") if fmt == "obsidian" else old.with_name("My Book.md")
    )
    new.parent.mkdir(parents=True, exist_ok=True)
    old.rename(new)
    h.source.add_highlight(1, "Kilo is new")
    h.sync()
    assert not old.exists()
    assert new.read_text(encoding="utf-8").count("Kilo is new") == 1
    assert h.page(1).path == new.relative_to(h.vault).as_posix()
    assert sum("Kilo is new" in p.read_text(encoding="utf-8") for p in h.files_on_disk()) == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_pass_with_nothing_to_change_writes_nothing(tmp_path: Path, fmt: Fmt) -> None:
    h, _ids = _setup(tmp_path, fmt)
    h.write(1, h.read(1) + _user_line(fmt, "mine"))
    stamps = {p: p.stat().st_mtime_ns for p in h.files_on_disk()}
    h.source.edit_book(2, summary="")  # same data again: nothing really changed
    summary = h.sync()
    assert summary.created == summary.updated == 0
    assert {p: p.stat().st_mtime_ns for p in h.files_on_disk()} == stamps


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_save_between_plan_and_write_is_planned_again(tmp_path: Path, fmt: Fmt) -> None:
    h, ids = _setup(tmp_path, fmt)
    target = h.path(1)
    real_write_batch = h.files.write_batch
    saved = {"done": False}

    def typing_user(items: list[tuple[str, str, str | None]]) -> list[Exception | None]:
        for relative, _text, _expected in items:
            if not saved["done"] and (h.vault / relative) == target:
                saved["done"] = True  # the user saves just before syncd replaces the file
                target.write_text(
                    target.read_text(encoding="utf-8") + _user_line(fmt, "typed just now"),
                    encoding="utf-8",
                )
        return real_write_batch(items)

    h.files.write_batch = typing_user  # type: ignore[method-assign]
    h.source.edit(ids[0], text="Alpha highlight, corrected meanwhile")
    h.sync()
    text = target.read_text(encoding="utf-8")
    assert "typed just now" in text and "Alpha highlight, corrected meanwhile" in text


def test_logseq_block_reference_ids_are_kept_once(tmp_path: Path) -> None:
    h, ids = _setup(tmp_path, "logseq")
    ref = "\t  id:: 6571c0de-0000-4000-8000-000000000001"
    h.write(1, _insert_after_line_with(h.read(1), "Alpha highlight", ref))
    h.source.edit(ids[0], text="Alpha highlight, corrected upstream")
    h.sync()
    text = h.read(1)
    assert "Alpha highlight, corrected upstream" in text
    assert text.count("id:: 6571c0de-0000-4000-8000-000000000001") == 1
    assert text.index("corrected upstream") < text.index("id:: 6571c0de")


@pytest.mark.parametrize("fmt", FORMATS)
def test_block_ids_are_written_and_survive_upstream_edits(tmp_path: Path, fmt: Fmt) -> None:
    h, ids = _setup(tmp_path, fmt, block_ids=True)
    marker = stable_block_id(fmt, ids[0])
    assert h.read(1).count(marker) == 1
    h.write(1, h.read(1) + _user_line(fmt, "mine"))
    h.source.edit(ids[0], text="Alpha highlight, corrected")
    h.sync()
    text = h.read(1)
    assert text.count(marker) == 1 and "Alpha highlight, corrected" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_mass_removal_stops_unless_forced(tmp_path: Path, fmt: Fmt) -> None:
    h = Harness(tmp_path, fmt)
    for book_id in range(1, 7):
        h.source.add_book(book_id, f"Book {book_id}", [f"Text {book_id} a", f"Text {book_id} b"])
    h.sync()
    before = {p: p.read_text(encoding="utf-8") for p in h.files_on_disk()}
    for book_id in range(1, 7):
        h.source.delete(h.source.live_ids(book_id)[0])
    paused = h.sync()
    assert paused.paused and any("6 of 6 pages" in message for _kind, message in paused.errors)
    assert {p: p.read_text(encoding="utf-8") for p in h.files_on_disk()} == before
    h.sync(force=True)
    assert all(
        " a" not in p.read_text(encoding="utf-8").split("Text")[-1] for p in h.files_on_disk()
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_emptied_vault_is_refused(tmp_path: Path, fmt: Fmt) -> None:
    h, _ids = _setup(tmp_path, fmt)
    for path in h.files_on_disk():
        path.unlink()
    for folder in sorted(h.vault.rglob("*"), reverse=True):
        folder.rmdir()
    with pytest.raises(VaultError, match="empty"):
        h.sync()
