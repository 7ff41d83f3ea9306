"""The stand-in Readwise server, over real HTTP on 127.0.0.1 (api.md §1-§3, §9)."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from syncd.standin import (
    Fault,
    FaultPlan,
    Library,
    ManualClock,
    Quirks,
    StandinServer,
    UnknownIdError,
    generate_library,
    sample_library,
)
from syncd.standin.library import format_timestamp

TOKEN = "test-token-123"
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
BOOK_KEYS = [
    "user_book_id", "is_deleted", "title", "author", "readable_title", "source",
    "cover_image_url", "unique_url", "book_tags", "category", "document_note", "summary",
    "readwise_url", "source_url", "external_id", "asin", "highlights",
]  # fmt: skip
HIGHLIGHT_KEYS = [
    "id", "is_deleted", "text", "location", "location_type", "note", "color", "highlighted_at",
    "created_at", "updated_at", "external_id", "end_location", "url", "book_id", "tags",
    "is_favorite", "is_discard", "readwise_url",
]  # fmt: skip
MS_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
US_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def library(clock: ManualClock) -> Library:
    return generate_library(books=40, highlights=400, seed=11, clock=clock)


def serve(library: Library, **options: Any) -> StandinServer:
    server = StandinServer(library, token=TOKEN, **options)
    server.start()
    return server


@pytest.fixture
def server(library: Library) -> Iterator[StandinServer]:
    with StandinServer(library, token=TOKEN) as running:
        yield running


def client_for(server: StandinServer, *, timeout: float = 5.0) -> httpx.Client:
    # verify=False: plain HTTP on 127.0.0.1, and it skips building a TLS context per client
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Token {TOKEN}"},
        timeout=timeout,
        verify=False,
    )


def get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """One request on its own connection (no TLS context: the stand-in is plain HTTP)."""
    return httpx.get(url, headers=headers, verify=False)


@pytest.fixture
def client(server: StandinServer) -> Iterator[httpx.Client]:
    with client_for(server) as http:
        yield http


def export_pages(client: httpx.Client, **params: str) -> list[dict[str, Any]]:
    """Follow nextPageCursor, resending the filters on every page as api.md §3.1 says."""
    pages: list[dict[str, Any]] = []
    cursor: object = None
    while True:
        query = dict(params) | ({"pageCursor": str(cursor)} if cursor is not None else {})
        response = client.get("/api/v2/export/", params=query)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["nextPageCursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000, "pagination does not end"


def books_of(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [book for page in pages for book in page["results"]]


# ---- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v2/auth/", "/api/v2/auth"])
@pytest.mark.parametrize("scheme", ["Token", "token", "TOKEN"])
def test_auth_accepts_the_token_with_any_case_of_scheme(
    server: StandinServer, path: str, scheme: str
) -> None:
    response = get(server.base_url + path, headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authentication credentials were not provided."),
        (f"Bearer {TOKEN}", "Authentication credentials were not provided."),
        ("Token wrong", "Invalid token."),
        ("Token", "Invalid token header. No credentials provided."),
        ("Token a b", "Invalid token header. Token string should not contain spaces."),
    ],
)
def test_auth_refusals_carry_drf_bodies(
    server: StandinServer, header: str | None, detail: str
) -> None:
    headers = {"Authorization": header} if header else {}
    for path in ("/api/v2/auth/", "/api/v2/export/"):
        response = get(server.base_url + path, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"detail": detail}
        assert response.headers["WWW-Authenticate"] == "Token"


def test_unknown_route_is_an_html_404_and_other_methods_405(client: httpx.Client) -> None:
    missing = client.get("/api/v2/nothing/")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("text/html")
    refused = client.post("/api/v2/export/", json={})
    assert refused.status_code == 405
    assert refused.json() == {"detail": 'Method "POST" not allowed.'}


def test_request_log_records_method_path_query_status(
    server: StandinServer, client: httpx.Client
) -> None:
    client.get("/api/v2/auth/")
    client.get("/api/v2/export", params={"ids": "1,2", "includeDeleted": "true"})
    assert server.requests == [
        ("GET", "/api/v2/auth/", {}, 204, ""),
        ("GET", "/api/v2/export", {"ids": "1,2", "includeDeleted": "true"}, 200, ""),
    ]


# ---- export shape and paging --------------------------------------------------------------------


def test_export_json_has_every_documented_key_in_order(
    library: Library, client: httpx.Client
) -> None:
    response = client.get("/api/v2/export/")
    assert response.headers["Content-Type"] == "application/json"
    page = response.json()
    assert list(page) == ["count", "nextPageCursor", "results"]
    for book in page["results"]:
        assert list(book) == BOOK_KEYS
        assert book["readwise_url"] == f"https://readwise.io/bookreview/{book['user_book_id']}"
        for highlight in book["highlights"]:
            assert list(highlight) == HIGHLIGHT_KEYS
            assert highlight["book_id"] == book["user_book_id"]
            assert MS_TIMESTAMP.match(highlight["updated_at"])
            assert MS_TIMESTAMP.match(highlight["created_at"])
            assert highlight["is_deleted"] is False


def test_timestamp_style_quirk_switches_export_to_microseconds(library: Library) -> None:
    with serve(library, quirks=Quirks(timestamp_style="us")) as server, client_for(server) as http:
        book = http.get("/api/v2/export/").json()["results"][0]
    assert all(US_TIMESTAMP.match(h["updated_at"]) for h in book["highlights"])


@pytest.mark.parametrize("cursor_type", ["int", "str"])
def test_paging_covers_every_book_exactly_once_in_descending_order(
    library: Library, cursor_type: str
) -> None:
    quirks = Quirks(cursor_type="str" if cursor_type == "str" else "int", page_highlights=30)
    with serve(library, quirks=quirks) as server, client_for(server) as http:
        pages = export_pages(http)
    ids = [book["user_book_id"] for book in books_of(pages)]
    assert ids == library.snapshot().exported_book_ids()
    assert ids == sorted(ids, reverse=True)
    assert len(pages) > 5
    remaining = len(ids)
    for page in pages:
        assert page["count"] == remaining  # matching books from the cursor onward
        remaining -= len(page["results"])
        shown = sum(len(book["highlights"]) for book in page["results"])
        assert shown <= 30 or len(page["results"]) == 1
        cursor = page["nextPageCursor"]
        if cursor is not None:
            assert isinstance(cursor, str if cursor_type == "str" else int)
            assert int(cursor) == page["results"][-1]["user_book_id"]
    assert books_of(pages) == library.export()


def test_a_book_larger_than_a_page_still_comes_whole(library: Library) -> None:
    snapshot = library.snapshot()
    biggest = max(snapshot.exported_book_ids(), key=lambda b: len(snapshot.highlights_of(b)))
    size = len(snapshot.highlights_of(biggest))
    assert size > 3
    with serve(library, quirks=Quirks(page_highlights=3)) as server, client_for(server) as http:
        pages = export_pages(http)
    [page] = [p for p in pages if p["results"][0]["user_book_id"] == biggest]
    assert len(page["results"]) == 1
    assert len(page["results"][0]["highlights"]) == size


def test_large_library_generates_quickly_and_pages_in_about_fifty_pages() -> None:
    library = generate_library(books=3000, highlights=50_000, seed=5)
    assert (library.book_count, library.highlight_count) == (3000, 50_000)
    with serve(library) as server, client_for(server, timeout=30) as http:
        pages = export_pages(http, includeDeleted="true")
    books = books_of(pages)
    assert len({book["user_book_id"] for book in books}) == len(books) == 3000
    assert sum(len(book["highlights"]) for book in books) == 50_000
    assert 45 <= len(pages) <= 60
    assert any(len(book["highlights"]) > 1000 for book in books)  # one oversized book


# ---- filters ------------------------------------------------------------------------------------


def test_updated_after_is_strictly_greater_at_microsecond_precision(
    library: Library, clock: ManualClock, client: httpx.Client
) -> None:
    book_id = library.snapshot().exported_book_ids()[0]
    clock.set(T0)
    new_id = library.add_highlight(book_id, text="fresh")
    stamp = library.highlight(new_id).updated_at
    assert stamp == T0  # the generated library is older than the manual clock

    def changed_ids(after: str) -> list[int]:
        books = books_of(export_pages(client, updatedAfter=after))
        return [h["id"] for book in books for h in book["highlights"]]

    assert changed_ids("2026-03-01T12:00:00.123456Z") == []
    assert changed_ids("2026-03-01T12:00:00.123455Z") == [new_id]
    assert changed_ids("2026-03-01T12:00:00.123Z") == [new_id]  # the ms form is older
    assert changed_ids("2026-03-01T12:00:00.123456") == []  # naive means UTC
    assert changed_ids("2026-03-01T13:00:00.123455+01:00") == [new_id]


@pytest.mark.parametrize(
    "raw_query",
    [
        "updatedAfter=yesterday",
        "updatedAfter=2026-03-01T12:00:00+00:00",  # an unencoded "+" arrives as a space
        "updatedAfter=2026-13-01T00:00:00Z",
    ],
)
def test_unparseable_updated_after_is_a_400(server: StandinServer, raw_query: str) -> None:
    url = f"{server.base_url}/api/v2/export/?{raw_query}"
    response = get(url, headers={"Authorization": f"Token {TOKEN}"})
    assert response.status_code == 400
    assert response.json() == {"updatedAfter": ["Enter a valid date/time."]}


def test_percent_encoded_plus_offset_is_accepted(server: StandinServer) -> None:
    url = f"{server.base_url}/api/v2/export/?updatedAfter=2026-03-01T12:00:00%2B00:00"
    response = get(url, headers={"Authorization": f"Token {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.parametrize(("name", "value"), [("ids", "1,x"), ("pageCursor", "abc")])
def test_non_integer_ids_or_cursor_is_a_400(client: httpx.Client, name: str, value: str) -> None:
    response = client.get("/api/v2/export/", params={name: value})
    assert response.status_code == 400
    assert list(response.json()) == [name]


def test_include_deleted_shows_deleted_highlights_and_books(
    library: Library, client: httpx.Client
) -> None:
    first, second = library.snapshot().exported_book_ids()[:2]
    victim = library.snapshot().highlights_of(first)[0].id
    library.delete_highlight(victim)
    library.delete_book(second)

    def highlight_states(**params: str) -> dict[int, bool]:
        books = books_of(export_pages(client, **params))
        return {h["id"]: h["is_deleted"] for book in books for h in book["highlights"]}

    assert victim not in highlight_states()
    assert victim not in highlight_states(includeDeleted="false")
    for word in ("true", "1", "yes", "True"):
        assert highlight_states(includeDeleted=word)[victim] is True
    plain_books = {b["user_book_id"] for b in books_of(export_pages(client))}
    assert second not in plain_books
    [deleted_book] = [
        b
        for b in books_of(export_pages(client, includeDeleted="true"))
        if b["user_book_id"] == second
    ]
    assert deleted_book["is_deleted"] is True
    assert deleted_book["highlights"]
    assert all(h["is_deleted"] for h in deleted_book["highlights"])


def test_ids_limits_the_export_to_those_books(library: Library, client: httpx.Client) -> None:
    wanted = library.snapshot().exported_book_ids()[3:6]
    books = books_of(export_pages(client, ids=",".join(map(str, wanted))))
    assert [book["user_book_id"] for book in books] == wanted


def test_too_long_url_is_a_414(library: Library, client: httpx.Client) -> None:
    long_ids = ",".join(str(10**9 + n) for n in range(900))
    assert client.get("/api/v2/export/", params={"ids": long_ids}).status_code == 414
    with serve(library, quirks=Quirks(max_url_length=200)) as server, client_for(server) as http:
        assert http.get("/api/v2/export/", params={"ids": long_ids[:300]}).status_code == 414
        assert http.get("/api/v2/export/", params={"ids": long_ids[:100]}).status_code == 200


# ---- mutations and incremental exports ----------------------------------------------------------


def test_mutations_bump_updated_at_and_show_up_incrementally(
    library: Library, clock: ManualClock, client: httpx.Client
) -> None:
    snapshot = library.snapshot()
    book_a, book_b = snapshot.exported_book_ids()[:2]
    edited, discarded = (h.id for h in snapshot.highlights_of(book_a)[:2])
    watermark = format_timestamp(clock.advance(seconds=1))
    assert watermark is not None
    clock.advance(seconds=1)
    library.edit_highlight(edited, text="edited text", note="new note")
    library.discard_highlight(discarded)
    added = library.add_highlight(book_b, text="brand new", tags=["to read"])
    new_book = library.add_book(title="A new book", author="Someone")
    in_new_book = library.add_highlight(new_book, text="first of the new book")

    books = books_of(export_pages(client, updatedAfter=watermark))
    by_id = {h["id"]: h for book in books for h in book["highlights"]}
    assert set(by_id) == {edited, discarded, added, in_new_book}
    assert [b["user_book_id"] for b in books] == [new_book, book_a, book_b]
    assert by_id[edited]["text"] == "edited text"
    assert by_id[edited]["note"] == "new note"
    assert by_id[discarded]["is_discard"] is True
    assert [t["name"] for t in by_id[added]["tags"]] == ["to read"]
    stamps = [library.highlight(h).updated_at for h in (edited, discarded, added, in_new_book)]
    assert stamps == sorted(set(stamps))  # strictly increasing even with a stopped clock


def test_only_deleted_highlights_need_include_deleted_to_be_seen(
    library: Library, clock: ManualClock, client: httpx.Client
) -> None:
    watermark = format_timestamp(clock.advance(seconds=1))
    assert watermark is not None
    victim = library.snapshot().highlights_of(library.snapshot().exported_book_ids()[0])[0].id
    library.delete_highlight(victim)
    assert books_of(export_pages(client, updatedAfter=watermark)) == []
    books = books_of(export_pages(client, updatedAfter=watermark, includeDeleted="true"))
    assert [(h["id"], h["is_deleted"]) for b in books for h in b["highlights"]] == [(victim, True)]


@pytest.mark.parametrize("bumps", [True, False])
def test_tag_only_edit_is_visible_only_when_tags_bump_updated_at(
    library: Library, clock: ManualClock, bumps: bool
) -> None:
    target = library.snapshot().highlights_of(library.snapshot().exported_book_ids()[0])[0]
    watermark = format_timestamp(clock.advance(seconds=1))
    assert watermark is not None
    library.edit_highlight(target.id, tags=["new/tag 🔥"])
    quirks = Quirks(tag_change_bumps_updated=bumps)
    with serve(library, quirks=quirks) as server, client_for(server) as http:
        books = books_of(export_pages(http, updatedAfter=watermark))
        full = books_of(export_pages(http, ids=str(target.book_id)))
    assert [h["id"] for b in books for h in b["highlights"]] == ([target.id] if bumps else [])
    [shown] = [h for b in full for h in b["highlights"] if h["id"] == target.id]
    assert [t["name"] for t in shown["tags"]][-1] == "new/tag 🔥"  # a full export has it anyway


@pytest.mark.parametrize("quirk", [False, True])
def test_book_metadata_edits_are_incremental_only_with_the_quirk(
    library: Library, clock: ManualClock, quirk: bool
) -> None:
    book_id = library.snapshot().exported_book_ids()[0]
    watermark = format_timestamp(clock.advance(seconds=1))
    assert watermark is not None
    library.edit_book_metadata(book_id, title="Renamed", document_note="a note")
    quirks = Quirks(book_meta_in_incremental=quirk)
    with serve(library, quirks=quirks) as server, client_for(server) as http:
        books = books_of(export_pages(http, updatedAfter=watermark))
    if quirk:
        assert [(b["user_book_id"], b["title"], b["highlights"]) for b in books] == [
            (book_id, "Renamed", [])
        ]
    else:
        assert books == []


def test_library_rejects_unknown_ids_and_edits_of_deleted_highlights(library: Library) -> None:
    with pytest.raises(UnknownIdError, match="no highlight with id 12345"):
        library.edit_highlight(12345, text="x")
    with pytest.raises(UnknownIdError, match="no book with id 999"):
        library.add_highlight(999, text="x")
    victim = library.snapshot().live_highlights()[0].id
    library.delete_highlight(victim)
    with pytest.raises(ValueError, match=f"highlight {victim} is deleted"):
        library.edit_highlight(victim, note="x")


# ---- generator ----------------------------------------------------------------------------------


def test_generator_is_deterministic_per_seed() -> None:
    first = generate_library(books=60, highlights=700, seed=42)
    second = generate_library(books=60, highlights=700, seed=42)
    other = generate_library(books=60, highlights=700, seed=43)
    text = json.dumps(first.export(include_deleted=True), ensure_ascii=False)
    assert text == json.dumps(second.export(include_deleted=True), ensure_ascii=False)
    assert text != json.dumps(other.export(include_deleted=True), ensure_ascii=False)


@pytest.mark.parametrize(("books", "highlights"), [(0, 0), (1, 1), (10, 3), (7, 7), (25, 900)])
def test_generator_makes_exactly_the_requested_sizes(books: int, highlights: int) -> None:
    library = generate_library(books=books, highlights=highlights, seed=1)
    assert (library.book_count, library.highlight_count) == (books, highlights)


def test_generator_covers_the_hostile_and_unusual_cases() -> None:
    snapshot = generate_library(books=60, highlights=600, seed=2).snapshot()
    books = list(snapshot.books.values())
    highlights = list(snapshot.highlights.values())
    assert {b.category for b in books} >= {
        "books", "articles", "tweets", "podcasts", "supplementals", "videos",
    }  # fmt: skip
    assert {h.location_type for h in highlights} >= {
        "location", "page", "order", "time_offset", "offset", "none", None,
    }  # fmt: skip
    titles = [b.title for b in books]
    for hostile in ("../../x", "a/b", "C:\\x", "CON", 'x?*:|"<>', "Trailing dots..."):
        assert hostile in titles
    assert any(len(t) > 300 for t in titles)
    assert any("\t" in t for t in titles)
    assert any(t.endswith(" ") for t in titles)
    pairs = [(b.title, b.author) for b in books]
    assert any(pairs.count(pair) == 2 for pair in pairs)
    assert {b.author for b in books} >= {None, ""}
    assert all("\x00" not in t for t in titles)
    kindle = [b for b in books if b.source == "kindle"]
    assert kindle and all(b.asin and re.fullmatch(r"[A-Z0-9]{10}", b.asin) for b in kindle)
    texts = [h.text for h in highlights]
    for marker in ("- ", "#"):
        assert any(t.startswith(marker) for t in texts)
    for fragment in ("::", "[[", "{{", "%}", "\n\n", "🚀", "被讨厌", "كتاب"):
        assert any(fragment in t for t in texts + titles), fragment
    notes = [h.note for h in highlights]
    assert None in notes and "" in notes and any(n and "\n" in n for n in notes)
    tag_names = {t.name for h in highlights for t in h.tags}
    assert "a/b" in tag_names and "to read" in tag_names and "🔥 hot" in tag_names
    assert any(h.is_discard for h in highlights)
    assert any(h.is_deleted for h in highlights)
    assert all(len(t) <= 8191 for t in texts) and all(len(t) <= 511 for t in titles)


def test_sample_library_looks_like_a_real_readers() -> None:
    library = sample_library()
    snapshot = library.snapshot()
    assert (library.book_count, library.highlight_count) == (8, 40)
    books = list(snapshot.books.values())
    kindle = next(b for b in books if b.title == "Meditations")
    assert kindle.asin == "B00IMLL63O"
    assert {h.location_type for h in snapshot.highlights_of(kindle.id)} == {"location"}
    assert any(b.source == "reader" and b.summary for b in books)
    assert any(b.category == "tweets" for b in books)
    podcast = next(b for b in books if b.category == "podcasts")
    assert {h.location_type for h in snapshot.highlights_of(podcast.id)} == {"time_offset"}
    titles = [(b.title, b.author) for b in books]
    assert titles.count(("CISSP Experience Requirements", "isc2.org")) == 2
    assert library.export() == sample_library().export()


# ---- faults -------------------------------------------------------------------------------------


def test_status_faults_send_html_bodies_then_recover(library: Library) -> None:
    plan = FaultPlan.on_export_requests({1: Fault.status(503), 2: Fault.status(500)})
    with serve(library, faults=plan) as server, client_for(server) as http:
        first = http.get("/api/v2/export/")
        second = http.get("/api/v2/export/")
        third = http.get("/api/v2/export/")
        assert server.fired_faults == [(1, "status"), (2, "status")]
    assert (first.status_code, second.status_code, third.status_code) == (503, 500, 200)
    assert first.headers["Content-Type"].startswith("text/html")
    assert "503" in first.text
    with pytest.raises(json.JSONDecodeError):
        first.json()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.throttle(retry_after=7), "7"),
        (Fault.throttle(retry_after=None), None),
        (Fault.throttle(retry_after="soon-ish"), "soon-ish"),
    ],
)
def test_throttle_faults_vary_retry_after(
    library: Library, fault: Fault, expected: str | None
) -> None:
    with serve(library, faults=FaultPlan.on_requests({1: fault})) as server:
        response = get(server.base_url + "/api/v2/auth/")  # before auth, like a proxy
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == expected
    assert response.json()["detail"].startswith("Request was throttled.")


def test_throttle_until_sends_an_http_date(library: Library) -> None:
    with serve(library, faults=FaultPlan.on_requests({1: Fault.throttle_until(30)})) as server:
        response = get(server.base_url + "/api/v2/auth/")
    until = parsedate_to_datetime(response.headers["Retry-After"])
    assert timedelta(seconds=25) < until - datetime.now(UTC) <= timedelta(seconds=31)


def test_delay_outlasts_a_client_timeout(library: Library) -> None:
    plan = FaultPlan.on_export_requests({1: Fault.delay(30)})
    server = serve(library, faults=plan)
    with server, client_for(server, timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        http.get("/api/v2/export/")
    # leaving the block stopped the server, which cut the 30 s wait short


def test_reset_and_truncate_break_the_body(library: Library) -> None:
    plan = FaultPlan.on_export_requests({1: Fault.reset(), 2: Fault.truncate()})
    with serve(library, faults=plan) as server, client_for(server) as http:
        with pytest.raises(httpx.ReadError):
            http.get("/api/v2/export/")
        with pytest.raises(httpx.RemoteProtocolError, match="without sending complete"):
            http.get("/api/v2/export/")
        assert http.get("/api/v2/export/").status_code == 200


def test_captive_portal_and_empty_page(library: Library) -> None:
    plan = FaultPlan.on_export_requests({1: Fault.captive_portal(), 2: Fault.empty_page()})
    with serve(library, faults=plan) as server, client_for(server) as http:
        portal = http.get("/api/v2/export/")
        empty = http.get("/api/v2/export/")
    assert portal.status_code == 200
    assert portal.headers["Content-Type"].startswith("text/html")
    assert "Wi-Fi" in portal.text
    assert empty.json() == {"count": 0, "nextPageCursor": None, "results": []}


def test_repeat_cursor_hands_back_the_cursor_that_was_sent(library: Library) -> None:
    plan = FaultPlan.on_export_requests({2: Fault.repeat_cursor()})
    quirks = Quirks(page_highlights=20)
    with serve(library, faults=plan, quirks=quirks) as server, client_for(server) as http:
        first = http.get("/api/v2/export/").json()
        cursor = first["nextPageCursor"]
        second = http.get("/api/v2/export/", params={"pageCursor": cursor}).json()
    assert second["nextPageCursor"] == cursor
    assert second["results"][0]["user_book_id"] < cursor


def test_token_revoked_from_the_nth_request(library: Library) -> None:
    with (
        serve(library, faults=FaultPlan().revoke_token_from(3)) as server,
        client_for(server) as http,
    ):
        statuses = [http.get("/api/v2/auth/").status_code for _ in range(5)]
        assert http.get("/api/v2/auth/").json() == {"detail": "Invalid token."}
    assert statuses == [204, 204, 401, 401, 401]


def test_library_change_between_pages_runs_before_that_page(library: Library) -> None:
    ids = library.snapshot().exported_book_ids()
    last_book = ids[-1]
    state: dict[str, int] = {}

    def change() -> None:
        library.delete_book(last_book)
        state["new"] = library.add_book(title="Added mid-pass")
        library.add_highlight(state["new"], text="mid-pass")

    plan = FaultPlan.on_export_requests({2: Fault.run(change)})
    server = serve(library, faults=plan, quirks=Quirks(page_highlights=30))
    with server, client_for(server) as http:
        seen = [b["user_book_id"] for b in books_of(export_pages(http))]
        again = [b["user_book_id"] for b in books_of(export_pages(http))]
    assert last_book not in seen and state["new"] not in seen
    assert seen == ids[:-1]
    assert again[0] == state["new"]


def test_next_export_faults_and_path_faults_can_be_armed_while_running(
    server: StandinServer, client: httpx.Client
) -> None:
    assert client.get("/api/v2/export/").status_code == 200
    server.faults.fail_next_exports(2, Fault.status(502))
    server.faults.add_path_fault("/api/v2/auth", Fault.status(504), times=1)
    statuses = [client.get(path).status_code for path in ("/api/v2/auth/",) * 2]
    statuses += [client.get("/api/v2/export").status_code for _ in range(3)]
    assert statuses == [504, 204, 502, 502, 200]


def test_seeded_plan_is_reproducible(library: Library) -> None:
    def fired(seed: int) -> list[tuple[int, str]]:
        plan = FaultPlan.seeded(seed, probability=0.5)
        with serve(library, faults=plan) as server, client_for(server) as http:
            for _ in range(16):
                with contextlib.suppress(httpx.TransportError):  # reset and truncate
                    http.get("/api/v2/export/", params={"ids": "1"})
            return [(f.request_index, f.kind) for f in server.fired_faults]

    first = fired(99)
    assert first == fired(99)
    assert 2 <= len(first) <= 14
    assert first != fired(100)


# ---- rate limiting ------------------------------------------------------------------------------


def test_rate_limiter_is_a_drf_sliding_window(library: Library) -> None:
    now = [1000.0]
    server = serve(library, quirks=Quirks(rate_limit=True), throttle_clock=lambda: now[0])
    with server, client_for(server) as http:
        for _ in range(240):
            assert http.get("/api/v2/auth/").status_code == 204
        now[0] += 30
        refused = http.get("/api/v2/auth/")
        wrong = http.get("/api/v2/auth/", headers={"Authorization": "Token nope"})
        now[0] += 30.5
        after_window = http.get("/api/v2/auth/")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"
    assert refused.json() == {"detail": "Request was throttled. Expected available in 30 seconds."}
    assert wrong.status_code == 401  # authentication is checked before throttling
    assert after_window.status_code == 204


def test_rate_limit_is_off_by_default(server: StandinServer, client: httpx.Client) -> None:
    assert all(client.get("/api/v2/auth").status_code == 204 for _ in range(260))


# ---- configuration and command line -------------------------------------------------------------


def test_quirks_reject_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match="page_highlights"):
        Quirks(page_highlights=0)
    with pytest.raises(ValueError, match="cursor_type"):
        Quirks(cursor_type="float")  # type: ignore[arg-type]


def test_module_runs_in_the_foreground_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "syncd.standin", "--port", "0", "--books", "5",
               "--highlights", "20", "--seed", "3", "--token", TOKEN]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        response = get(base_url + "/api/v2/export/", headers={"Authorization": f"Token {TOKEN}"})
        assert sum(len(b["highlights"]) for b in response.json()["results"]) >= 19
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_date_header_follows_the_library_clock(
    clock: ManualClock, server: StandinServer, client: httpx.Client
) -> None:
    response = client.get("/api/v2/auth/")
    assert parsedate_to_datetime(response.headers["Date"]) == T0.replace(microsecond=0)


def test_a_failing_callback_is_a_visible_500(library: Library) -> None:
    def broken() -> None:
        library.edit_highlight(1, text="no such highlight")

    plan = FaultPlan.on_export_requests({1: Fault.run(broken)})
    with serve(library, faults=plan) as server, client_for(server) as http:
        response = http.get("/api/v2/export/")
        assert response.status_code == 500
        assert server.errors == [
            "request 1 GET /api/v2/export/: UnknownIdError('no highlight with id 1')"
        ]
