"""ReadwiseWriter against respx: retries, 404 and 400, tags never sent twice, pacing."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from syncd.errors import ReadwiseUnavailable, TokenRejected
from syncd.sources.readwise import RetryPolicy
from syncd.sources.readwise_write import (
    HighlightGone,
    ReadwiseWriter,
    RequestPacer,
    WriteRejected,
)

BASE_URL = "http://127.0.0.1:8741"
TOKEN = "rwTestToken0123456789abcdefghijklmnopqrstuvwxyzAB"


@dataclass
class Harness:
    router: respx.Router
    sleeps: list[float] = field(default_factory=list)
    clients: list[httpx.Client] = field(default_factory=list)

    def writer(self, **options: Any) -> ReadwiseWriter:
        http = httpx.Client(transport=httpx.MockTransport(self.router.handler))
        self.clients.append(http)
        options.setdefault("retry", RetryPolicy(max_attempts=4))
        return ReadwiseWriter(
            http,
            token=TOKEN,
            base_url=BASE_URL,
            sleep=self.sleeps.append,
            rng=random.Random(1),
            **options,
        )


@pytest.fixture
def harness() -> Iterator[Harness]:
    state = Harness(router=respx.Router(base_url=BASE_URL, assert_all_called=False))
    yield state
    for http in state.clients:
        http.close()


def test_patch_sends_only_the_given_fields_as_json(harness: Harness) -> None:
    route = harness.router.patch("/api/v2/highlights/7/").respond(
        200, json={"id": 7, "note": "new"}
    )
    answer = harness.writer().update_highlight(7, {"note": "new"})
    assert answer == {"id": 7, "note": "new"}
    request = route.calls.last.request
    assert json.loads(request.content) == {"note": "new"}
    assert request.headers["Authorization"] == f"Token {TOKEN}"


def test_429_waits_retry_after_then_succeeds(harness: Harness) -> None:
    route = harness.router.patch("/api/v2/highlights/7/")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "throttled"}),
        httpx.Response(503, text="<html>busy</html>"),
        httpx.Response(200, json={"id": 7}),
    ]
    harness.writer().update_highlight(7, {"note": "x"})
    assert route.call_count == 3
    assert harness.sleeps[0] == 7.0
    assert len(harness.sleeps) == 2


def test_404_is_highlight_gone_not_retried(harness: Harness) -> None:
    route = harness.router.patch("/api/v2/highlights/7/").respond(
        404, json={"detail": "Not found."}
    )
    with pytest.raises(HighlightGone):
        harness.writer().update_highlight(7, {"note": "x"})
    assert route.call_count == 1


def test_400_names_the_field_and_is_not_retried(harness: Harness) -> None:
    route = harness.router.patch("/api/v2/highlights/7/").respond(
        400, json={"note": ["Ensure this field has no more than 8191 characters."]}
    )
    with pytest.raises(WriteRejected) as caught:
        harness.writer().update_highlight(7, {"note": "x" * 9000})
    assert caught.value.field == "note"
    assert "8191" in caught.value.message
    assert route.call_count == 1


def test_token_rejected(harness: Harness) -> None:
    harness.router.patch("/api/v2/highlights/7/").respond(401, json={"detail": "Invalid token."})
    with pytest.raises(TokenRejected) as caught:
        harness.writer().update_highlight(7, {"note": "x"})
    assert TOKEN not in str(caught.value)


def test_gives_up_after_max_attempts(harness: Harness) -> None:
    route = harness.router.patch("/api/v2/highlights/7/").respond(502)
    with capture_logs() as logs, pytest.raises(ReadwiseUnavailable) as caught:
        harness.writer().update_highlight(7, {"note": "x"})
    assert route.call_count == 4
    assert "PATCH /api/v2/highlights/7/" in str(caught.value)
    assert [e["event"] for e in logs].count("readwise.retry") == 3


def test_captive_portal_200_is_retried(harness: Harness) -> None:
    route = harness.router.patch("/api/v2/highlights/7/")
    route.side_effect = [
        httpx.Response(200, text="<html>Sign in to Wi-Fi</html>"),
        httpx.Response(200, json={"id": 7}),
    ]
    assert harness.writer().update_highlight(7, {"note": "x"}) == {"id": 7}


def test_tag_post_lost_answer_is_not_sent_twice(harness: Harness) -> None:
    """The first POST got through but its answer was lost: the retry finds the tag and stops."""
    post = harness.router.post("/api/v2/highlights/7/tags/")
    post.side_effect = [httpx.RemoteProtocolError("peer closed"), httpx.Response(200, json={})]
    listing = harness.router.get("/api/v2/highlights/7/tags/").respond(
        200, json={"count": 1, "next": None, "previous": None, "results": [{"id": 5, "name": "t"}]}
    )
    assert harness.writer().add_highlight_tag(7, "t") == (5, "t")
    assert post.call_count == 1
    assert listing.call_count == 1


def test_tag_post_retried_when_the_tag_did_not_arrive(harness: Harness) -> None:
    post = harness.router.post("/api/v2/highlights/7/tags/")
    post.side_effect = [
        httpx.Response(503),
        httpx.Response(200, json={"id": 9, "name": "to read 📚"}),
    ]
    harness.router.get("/api/v2/highlights/7/tags/").respond(
        200, json={"count": 0, "next": None, "previous": None, "results": []}
    )
    assert harness.writer().add_highlight_tag(7, "to read 📚") == (9, "to read 📚")
    assert post.call_count == 2
    assert json.loads(post.calls.last.request.content) == {"name": "to read 📚"}


def test_tag_list_follows_next_pages(harness: Harness) -> None:
    route = harness.router.get("/api/v2/highlights/7/tags/")
    route.side_effect = [
        httpx.Response(
            200,
            json={
                "count": 2,
                "next": f"{BASE_URL}/api/v2/highlights/7/tags/?page=2",
                "previous": None,
                "results": [{"id": 1, "name": "a"}],
            },
        ),
        httpx.Response(
            200,
            json={"count": 2, "next": None, "previous": None, "results": [{"id": 2, "name": "b"}]},
        ),
    ]
    assert harness.writer().highlight_tags(7) == [(1, "a"), (2, "b")]


def test_delete_tag_204(harness: Harness) -> None:
    route = harness.router.delete("/api/v2/highlights/7/tags/5/").respond(204)
    harness.writer().delete_highlight_tag(7, 5)
    assert route.call_count == 1


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_spreads_a_burst_of_1000_over_the_limit() -> None:
    """1,000 requests at 240/minute: none refused, no 60 s window ever holds more than 240, and
    the burst takes just over four minutes of (injected) time."""
    fake = FakeTime()
    pacer = RequestPacer(per_minute=240, clock=fake.clock, sleep=fake.sleep)
    sent: list[float] = []
    for _ in range(1000):
        pacer.wait()
        sent.append(fake.now)
        fake.now += 0.001  # each request takes a moment
    for index in range(240, len(sent)):
        assert sent[index] - sent[index - 240] >= 60.0
    assert 4 * 60 <= sent[-1] < 5 * 60
    assert pacer.waited > 0


def test_writer_paces_its_requests(harness: Harness) -> None:
    fake = FakeTime()
    route = harness.router.patch("/api/v2/highlights/7/").respond(200, json={"id": 7})
    writer = harness.writer(pacer=RequestPacer(per_minute=3, clock=fake.clock, sleep=fake.sleep))
    for _ in range(7):
        writer.update_highlight(7, {"note": "x"})
    assert route.call_count == 7
    assert fake.sleeps == [60.0, 60.0]


def test_tag_delete_lost_answer_is_not_sent_again(harness: Harness) -> None:
    """The DELETE got through but timed out: the retry finds the tag gone and stops (a second
    DELETE would draw a 404)."""
    delete = harness.router.delete("/api/v2/highlights/7/tags/5/")
    delete.side_effect = [httpx.ReadTimeout("slow"), httpx.Response(404)]
    harness.router.get("/api/v2/highlights/7/tags/").respond(
        200, json={"count": 0, "next": None, "previous": None, "results": []}
    )
    harness.writer().delete_highlight_tag(7, 5)
    assert delete.call_count == 1
