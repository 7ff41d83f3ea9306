"""Device sources folded into the library cache (syncd.sources.local_pass / local_merge)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.config import SourceConfig
from syncd.model import Book, Highlight
from syncd.sources import local_pass
from syncd.sources.device_files import Unsettled, read_settled
from syncd.sources.local import is_local_id, origin_of
from syncd.sources.local_pass import LocalSources
from syncd.sources.target_view import target_view
from syncd.sync.state import StateStore

DEVICES = Path(__file__).parents[1] / "fixtures" / "devices"
APPENDED = (
    "Meditations (Marcus Aurelius)\r\n- Your Highlight on Location 1600-1601 | Added on Sunday, "
    "January 7, 2024 9:00:00 AM\r\n\r\nWaste no more time.\r\n==========\r\n"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state")
    yield opened
    opened.close()


@pytest.fixture
def device(tmp_path: Path) -> Path:
    root = tmp_path / "device"
    root.mkdir()
    shutil.copy(DEVICES / "kindle" / "en-crlf-bom.txt", root / "My Clippings.txt")
    shutil.copytree(DEVICES / "koreader" / "Books", root / "Books")
    return root


def _sources(device: Path) -> LocalSources:
    return LocalSources(
        [
            SourceConfig("kindle", "kindle_clippings", device / "My Clippings.txt"),
            SourceConfig("kobo", "koreader", device / "Books"),
        ],
        pause=lambda: None,
    )


def _fold(store: StateStore, sources: LocalSources) -> None:
    with store.transaction():
        sources.fold(store)


def _books(store: StateStore) -> dict[str, Book]:
    out = {}
    for book_id, _title, _readable, _author, _rev in store.book_identities():
        book = store.load_book(book_id)
        assert book is not None
        out[f"{book.title}|{book.author}"] = book
    return out


def _live(book: Book) -> dict[str, Highlight]:
    return {h.text: h for h in book.highlights if h.is_live}


def _revs(store: StateStore) -> dict[int, int]:
    return dict(store.books_to_render("never-rendered"))


def test_first_read_then_a_reread_changes_nothing(store: StateStore, device: Path) -> None:
    sources = _sources(device)
    _fold(store, sources)
    assert [r.status for r in sources.reports] == ["ok", "ok"]
    books = _books(store)
    reich = books["The Rise (and Fall) of the Third Reich|Shirer, William L."]
    assert (reich.category, reich.source) == ("books", "kindle")
    assert books["Dune|Frank Herbert"].source == "koreader"
    assert all(
        is_local_id(b.id) and all(is_local_id(h.id) for h in b.highlights) for b in books.values()
    )
    before = _revs(store)
    again = _sources(device)  # as a new process: nothing cached in memory
    _fold(store, again)
    assert _revs(store) == before
    assert [r.books_changed for r in again.reports] == [0, 0]


def test_an_appended_clipping_changes_only_its_book(store: StateStore, device: Path) -> None:
    sources = _sources(device)
    _fold(store, sources)
    before = _revs(store)
    with (device / "My Clippings.txt").open("ab") as clippings:
        clippings.write(APPENDED.encode())
    _fold(store, sources)
    after = _revs(store)
    changed = {bid for bid in after if after[bid] != before.get(bid)}
    meditations = _books(store)["Meditations|Marcus Aurelius"]
    assert changed == {meditations.id}
    assert "Waste no more time." in _live(meditations)


def test_an_edited_note_is_an_edit_and_a_removed_annotation_a_delete(
    store: StateStore, device: Path
) -> None:
    sources = _sources(device)
    _fold(store, sources)
    dune_before = _books(store)["Dune|Frank Herbert"]
    sidecar = device / "Books" / "Dune.sdr" / "metadata.epub.lua"
    text = sidecar.read_text(encoding="utf-8").replace("Say it twice.", "Say it thrice.")
    start = text.index("        [3] = {")
    end = text.index('        },\n    },\n    ["doc_path"]')
    sidecar.write_text(text[:start] + text[end + len("        },\n") :], encoding="utf-8")
    _fold(store, sources)
    dune = _books(store)["Dune|Frank Herbert"]
    by_id = {h.id: h for h in dune.highlights}
    litany = next(h for h in dune_before.highlights if h.text.startswith("I must not fear"))
    assert by_id[litany.id].note.endswith("Say it thrice.")  # the same id: an edit
    gone = next(h for h in dune_before.highlights if h.text.startswith("A beginning"))
    assert by_id[gone.id].is_deleted  # an upstream delete


def test_a_kindle_file_cut_short_deletes_nothing(store: StateStore, device: Path) -> None:
    sources = _sources(device)
    _fold(store, sources)
    clippings = device / "My Clippings.txt"
    data = clippings.read_bytes()
    clippings.write_bytes(data[: len(data) // 3])  # a reset, or a copy cut short
    _fold(store, sources)
    reich = _books(store)["The Rise (and Fall) of the Third Reich|Shirer, William L."]
    assert len(_live(reich)) == 4


def test_a_missing_device_changes_nothing(store: StateStore, device: Path) -> None:
    sources = _sources(device)
    _fold(store, sources)
    before = _revs(store)
    shutil.rmtree(device)
    _fold(store, sources)
    assert [r.status for r in sources.reports] == ["missing", "missing"]
    assert _revs(store) == before


def test_a_book_in_readwise_gets_one_page_and_shared_highlights_once(
    store: StateStore, device: Path
) -> None:
    readwise = Book(
        id=42,
        title="Meditations",
        author="Marcus Aurelius",
        category="books",
        source="kindle",
        highlights=(
            Highlight(
                id=7, book_id=42, text="You have power over your mind -  not outside events."
            ),
        ),
    )
    with store.transaction():
        store.merge_book(readwise, rev=store.next_rev(), full=True)
    _fold(store, _sources(device))
    books = _books(store)
    assert "Meditations|Marcus Aurelius" in books
    meditations = books["Meditations|Marcus Aurelius"]
    assert meditations.id == 42  # the device book was folded into Readwise's
    assert len(meditations.live_highlights()) == 3  # the cache keeps both copies
    shown = [h.text for h in target_view(meditations, None, None).live_highlights()]
    assert sorted(shown) == [  # a new page shows Readwise's copy of the passage both have
        "First line of the passage.\nSecond line of the passage.",
        "You have power over your mind -  not outside events.",
    ]
    # A full Readwise pull does not delete what the device added.
    with store.transaction():
        store.merge_book(readwise, rev=store.next_rev(), full=True)
    again = store.load_book(42)
    assert again is not None and len(again.live_highlights()) == 3


def test_a_target_sees_only_its_sources(store: StateStore, device: Path) -> None:
    readwise = Book(
        id=42,
        title="Meditations",
        author="Marcus Aurelius",
        highlights=(Highlight(id=7, book_id=42, text="From Readwise."),),
    )
    with store.transaction():
        store.merge_book(readwise, rev=store.next_rev(), full=True)
    _fold(store, _sources(device))
    book = store.load_book(42)
    assert book is not None
    assert {origin_of(h) for h in book.highlights} == {"readwise", "kindle"}
    assert [h.text for h in target_view(book, frozenset({"readwise"}), None).highlights] == [
        "From Readwise."
    ]
    assert all(
        origin_of(h) == "kindle" for h in target_view(book, frozenset({"kindle"}), None).highlights
    )


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("not-clippings.txt", "not a Kindle clippings file"),
        ("binary-junk.bin", "not UTF-8 text"),
    ],
)
def test_a_bad_clippings_file_is_an_error_and_the_other_source_goes_on(
    store: StateStore, device: Path, name: str, fragment: str
) -> None:
    shutil.copy(DEVICES / "kindle" / name, device / "My Clippings.txt")
    sources = _sources(device)
    _fold(store, sources)
    kindle, kobo = sources.reports
    assert kindle.status == "error" and fragment in kindle.message
    assert str(device / "My Clippings.txt") in kindle.message
    assert kobo.status == "ok" and kobo.books == 3
    assert sources.failed
    assert all(b.source == "koreader" for b in _books(store).values())


def test_a_sidecar_with_code_is_skipped_and_the_other_books_go_on(
    store: StateStore, device: Path
) -> None:
    code = device / "Books" / "Evil.sdr"
    code.mkdir()
    shutil.copy(DEVICES / "koreader" / "code" / "metadata.epub.lua", code / "metadata.epub.lua")
    sources = _sources(device)
    _fold(store, sources)
    kobo = sources.reports[1]
    assert kobo.status == "error" and "Evil.sdr/metadata.epub.lua" in kobo.message
    assert "'os' is code" in kobo.message and kobo.books == 3


def test_a_200_mb_file_is_refused_without_reading_it(store: StateStore, device: Path) -> None:
    clippings = device / "My Clippings.txt"
    with clippings.open("r+b") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: no 200 MB written to the disk
    sources = _sources(device)
    _fold(store, sources)
    assert sources.reports[0].status == "error"
    assert "200 MB, over the 64 MB" in sources.reports[0].message


def test_a_read_torn_by_a_save_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "My Clippings.txt"
    path.write_bytes(b"first")
    writes = iter([b"first and more", b"first and more, settled"])

    def device_writes() -> None:  # the device saves between our reads
        data = next(writes, None)
        if data is not None:
            path.write_bytes(data)
            os.utime(path, ns=(1, len(data)))

    snapshot = read_settled(path, max_bytes=1024, pause=device_writes)
    assert snapshot is not None and snapshot.data == b"first and more, settled"


def test_a_file_that_never_settles_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "My Clippings.txt"
    path.write_bytes(b"x")
    count = iter(range(100))

    def keeps_writing() -> None:
        n = next(count)
        path.write_bytes(b"x" * (n + 2))

    with pytest.raises(Unsettled):
        read_settled(path, max_bytes=1024, pause=keeps_writing, attempts=5)


def test_a_pipe_at_the_path_is_refused_without_blocking(store: StateStore, tmp_path: Path) -> None:
    pipe = tmp_path / "My Clippings.txt"
    os.mkfifo(pipe)
    sources = LocalSources([SourceConfig("kindle", "kindle_clippings", pipe)], pause=lambda: None)
    _fold(store, sources)
    assert sources.reports[0].status == "error" and "pipe" in sources.reports[0].message


def test_an_io_error_mid_read_is_busy_and_changes_nothing(
    store: StateStore, device: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _sources(device)
    _fold(store, sources)
    before = _revs(store)
    real_read = os.read

    def unplugged(fd: int, size: int) -> bytes:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("My Clippings.txt"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", unplugged)
    _fold(store, sources)
    kindle, kobo = sources.reports
    assert kindle.status == "busy" and "Input/output error" in kindle.message
    assert kobo.status == "ok"
    assert _revs(store) == before
    assert not sources.failed  # busy is not a bad file: the next pass tries again


def test_a_parser_bug_skips_only_its_source(
    store: StateStore, device: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str, path: Path) -> tuple[object, ...]:
        raise RuntimeError("bug")

    monkeypatch.setattr(local_pass, "_parse_clippings", broken)
    sources = _sources(device)
    _fold(store, sources)
    kindle, kobo = sources.reports
    assert kindle.status == "error" and "internal error: RuntimeError('bug')" in kindle.message
    assert kobo.status == "ok" and kobo.books == 3
