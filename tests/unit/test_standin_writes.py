"""The stand-in's highlight UPDATE and highlight tag routes (api.md §4), over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from syncd.standin import Fault, FaultPlan, Library, ManualClock, StandinServer, generate_library

TOKEN = "test-token-123"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def library() -> Library:
    return generate_library(books=3, highlights=12, seed=5, clock=ManualClock(T0))


@pytest.fixture
def server(library: Library) -> Iterator[StandinServer]:
    with StandinServer(library, token=TOKEN) as running:
        yield running


@pytest.fixture
def client(server: StandinServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Token {TOKEN}"}, verify=False
    ) as http:
        yield http


def first_live(library: Library) -> int:
    return next(h.id for h in library.snapshot().live_highlights())


@pytest.mark.parametrize("slash", ["/", ""])
def test_patch_note_json_changes_the_highlight_and_bumps_updated_at(
    library: Library, client: httpx.Client, slash: str
) -> None:
    hid = first_live(library)
    before = library.highlight(hid)
    answer = client.patch(f"/api/v2/highlights/{hid}{slash}", json={"note": "mine 🎉"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["note"] == "mine 🎉"
    assert set(body) == {
        "id", "text", "note", "location", "location_type", "highlighted_at", "url", "color",
        "updated", "book_id", "tags",
    }  # fmt: skip
    after = library.highlight(hid)
    assert after.note == "mine 🎉"
    assert after.text == before.text
    assert after.updated_at > before.updated_at


def test_patch_form_body_and_text(library: Library, client: httpx.Client) -> None:
    hid = first_live(library)
    answer = client.patch(f"/api/v2/highlights/{hid}/", data={"text": "fixed typo"})
    assert answer.status_code == 200
    assert library.highlight(hid).text == "fixed typo"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"note": "x" * 8192}, "note"),
        ({"text": ""}, "text"),
        ({"color": "red"}, "color"),
    ],
)
def test_patch_refusals_are_drf_field_errors(
    library: Library, client: httpx.Client, body: dict[str, str], field: str
) -> None:
    hid = first_live(library)
    before = library.highlight(hid)
    answer = client.patch(f"/api/v2/highlights/{hid}/", json=body)
    assert answer.status_code == 400
    assert list(answer.json()) == [field]
    assert library.highlight(hid) == before


def test_patch_unknown_or_deleted_highlight_is_404(library: Library, client: httpx.Client) -> None:
    assert client.patch("/api/v2/highlights/999999999/", json={"note": "x"}).status_code == 404
    hid = first_live(library)
    library.delete_highlight(hid)
    answer = client.patch(f"/api/v2/highlights/{hid}/", json={"note": "x"})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not found."}


def test_tags_list_post_delete(library: Library, client: httpx.Client) -> None:
    hid = first_live(library)
    library.edit_highlight(hid, tags=[])
    posted = client.post(f"/api/v2/highlights/{hid}/tags/", json={"name": "to read 📚"})
    assert posted.status_code == 200
    tag = posted.json()
    assert tag["name"] == "to read 📚"
    listing = client.get(f"/api/v2/highlights/{hid}/tags").json()
    assert listing == {"count": 1, "next": None, "previous": None, "results": [tag]}
    assert client.delete(f"/api/v2/highlights/{hid}/tags/{tag['id']}").status_code == 204
    assert library.highlight(hid).tags == ()
    assert client.delete(f"/api/v2/highlights/{hid}/tags/{tag['id']}").status_code == 404


def test_tag_post_twice_makes_a_visible_duplicate(library: Library, client: httpx.Client) -> None:
    hid = first_live(library)
    library.edit_highlight(hid, tags=[])
    for _ in range(2):
        client.post(f"/api/v2/highlights/{hid}/tags/", json={"name": "dup"})
    assert [t.name for t in library.highlight(hid).tags] == ["dup", "dup"]


@pytest.mark.parametrize(
    ("body", "message"),
    [({}, "This field is required."), ({"name": " "}, "This field may not be blank.")],
)
def test_tag_post_refusals(
    library: Library, client: httpx.Client, body: dict[str, str], message: str
) -> None:
    hid = first_live(library)
    answer = client.post(f"/api/v2/highlights/{hid}/tags/", json=body)
    assert answer.status_code == 400
    assert answer.json() == {"name": [message]}


def test_writes_need_the_token_and_bad_methods_are_405(
    library: Library, server: StandinServer, client: httpx.Client
) -> None:
    hid = first_live(library)
    anonymous = httpx.patch(f"{server.base_url}/api/v2/highlights/{hid}/", json={"note": "x"})
    assert anonymous.status_code == 401
    assert client.delete(f"/api/v2/highlights/{hid}/").status_code == 405


def test_request_log_keeps_write_bodies(
    library: Library, server: StandinServer, client: httpx.Client
) -> None:
    hid = first_live(library)
    client.post(f"/api/v2/highlights/{hid}/tags/", json={"name": "t"})
    record = server.requests[-1]
    assert (record.method, record.status) == ("POST", 200)
    assert json.loads(record.body) == {"name": "t"}


def test_write_faults_are_numbered_by_write_request(library: Library) -> None:
    hid = first_live(library)
    plan = FaultPlan.on_write_requests({2: Fault.status(503)})
    with (
        StandinServer(library, token=TOKEN, faults=plan) as server,
        httpx.Client(base_url=server.base_url, headers={"Authorization": f"Token {TOKEN}"}) as http,
    ):
        assert http.get("/api/v2/auth/").status_code == 204  # a read: not counted
        assert http.patch(f"/api/v2/highlights/{hid}/", json={"note": "a"}).status_code == 200
        assert http.patch(f"/api/v2/highlights/{hid}/", json={"note": "b"}).status_code == 503
        assert library.highlight(hid).note == "a"  # a proxy's error: nothing was applied
        assert http.patch(f"/api/v2/highlights/{hid}/", json={"note": "c"}).status_code == 200
    assert [f.kind for f in server.fired_faults] == ["status"]


def test_a_reset_after_a_tag_post_has_applied_it(library: Library) -> None:
    """The answer is lost, but the tag is there: what a client must check before resending."""
    hid = first_live(library)
    library.edit_highlight(hid, tags=[])
    plan = FaultPlan.on_write_requests({1: Fault.reset(0.0)})
    with (
        StandinServer(library, token=TOKEN, faults=plan) as server,
        httpx.Client(base_url=server.base_url, headers={"Authorization": f"Token {TOKEN}"}) as http,
        pytest.raises(httpx.HTTPError),
    ):
        http.post(f"/api/v2/highlights/{hid}/tags/", json={"name": "t"})
    assert [t.name for t in library.highlight(hid).tags] == ["t"]
