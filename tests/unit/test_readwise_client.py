"""ReadwiseClient against a respx router on an injected transport: no sockets, no real sleeping."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from syncd.errors import ApiDataError, ConfigError, ReadwiseUnavailable, TokenRejected
from syncd.sources.readwise import (
    AUTH_PATH,
    EXPORT_PATH,
    IDS_PER_REQUEST,
    ReadwiseClient,
    RetryPolicy,
)

BASE_URL = "http://127.0.0.1:8741"
TOKEN = "rwTestToken0123456789abcdefghijklmnopqrstuvwxyzAB"  # shaped like a real 50-char key
DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@dataclass
class Harness:
    router: respx.Router
    sleeps: list[float] = field(default_factory=list)
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, *, base_url: str = BASE_URL, **options: Any) -> ReadwiseClient:
        http = httpx.Client(transport=httpx.MockTransport(self.router.handler))
        self.clients.append(http)
        return ReadwiseClient(
            http,
            token=TOKEN,
            base_url=base_url,
            sleep=self.sleeps.append,
            rng=random.Random(1234),
            **options,
        )

    def export_route(self) -> respx.Route:
        return self.router.get(EXPORT_PATH)


@pytest.fixture
def harness() -> Iterator[Harness]:
    state = Harness(router=respx.Router(base_url=BASE_URL, assert_all_called=False))
    yield state
    for http in state.clients:
        http.close()


def page(
    results: list[dict[str, Any]], cursor: object = None, count: int | None = None
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "count": count if count is not None else len(results),
            "nextPageCursor": cursor,
            "results": results,
        },
        headers={"Date": DATE},
    )


def book(book_id: int, *highlights: dict[str, Any], title: str = "A Book") -> dict[str, Any]:
    return {
        "user_book_id": book_id,
        "is_deleted": False,
        "title": title,
        "author": "Someone",
        "readable_title": title,
        "source": "kindle",
        "category": "books",
        "book_tags": [],
        "readwise_url": f"https://readwise.io/bookreview/{book_id}",
        "highlights": list(highlights),
    }


def highlight(
    highlight_id: int, book_id: int, *, updated_at: str = "2024-01-01T00:00:00.000Z"
) -> dict[str, Any]:
    return {
        "id": highlight_id,
        "text": f"text {highlight_id}",
        "note": "",
        "location": highlight_id,
        "location_type": "location",
        "color": "yellow",
        "highlighted_at": None,
        "created_at": updated_at,
        "updated_at": updated_at,
        "book_id": book_id,
        "tags": [],
        "is_deleted": False,
    }


def params_of(route: respx.Route) -> list[dict[str, str]]:
    return [dict(call.request.url.params) for call in route.calls]


# --- token check ----------------------------------------------------------------------------


def test_check_token_sends_the_documented_header_and_accepts_204(harness: Harness) -> None:
    route = harness.router.get(AUTH_PATH).mock(return_value=httpx.Response(204))
    harness.client().check_token()
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Token {TOKEN}"
    assert request.url.path == "/api/v2/auth/"
    assert route.call_count == 1


def test_a_captive_portal_is_not_a_valid_token(harness: Harness) -> None:
    portal = httpx.Response(200, html="<html>Sign in to the hotel Wi-Fi</html>")
    route = harness.router.get(AUTH_PATH).mock(side_effect=[portal, httpx.Response(204)])
    harness.client().check_token()  # retried, then Readwise's real 204
    assert route.call_count == 2
    harness.router.get(AUTH_PATH).mock(return_value=portal)
    with pytest.raises(ReadwiseUnavailable) as caught:
        harness.client(retry=RetryPolicy(max_attempts=2)).check_token()
    assert caught.value.exit_code == 4 and "204" in str(caught.value)


def test_base_url_may_already_end_in_api_v2(harness: Harness) -> None:
    route = harness.router.get(AUTH_PATH).mock(return_value=httpx.Response(204))
    harness.client(base_url=BASE_URL + "/api/v2/").check_token()
    assert route.calls.last.request.url.path == "/api/v2/auth/"


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("path", [AUTH_PATH, EXPORT_PATH])
def test_rejected_token_raises_at_once_without_retry(
    harness: Harness, status: int, path: str
) -> None:
    route = harness.router.get(path).mock(
        return_value=httpx.Response(status, json={"detail": "Invalid token."})
    )
    client = harness.client()
    with pytest.raises(TokenRejected) as caught:
        if path == AUTH_PATH:
            client.check_token()
        else:
            client.export(updated_after=None)
    assert route.call_count == 1
    assert harness.sleeps == []
    assert caught.value.exit_code == 3
    message = str(caught.value)
    assert "token rejected" in message and f"HTTP {status}" in message
    assert "check the token" in message
    assert TOKEN not in message


def test_rejected_token_mid_export_stops_the_export(harness: Harness) -> None:
    route = harness.export_route().mock(
        side_effect=[page([book(1, highlight(10, 1))], cursor=5), httpx.Response(401)]
    )
    with pytest.raises(TokenRejected):
        harness.client().export(updated_after=None)
    assert route.call_count == 2


@pytest.mark.parametrize("token", ["", "   ", "abc def", "abc\r\nX-Evil: 1", "tökén"])
def test_unusable_token_is_a_config_error_that_does_not_quote_it(token: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    with httpx.Client(transport=transport) as http, pytest.raises(ConfigError) as caught:
        ReadwiseClient(http, token=token, base_url=BASE_URL)
    assert "readwise token" in str(caught.value)
    if token.strip():
        assert token.strip() not in str(caught.value)


# --- paging ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire_cursor", "sent_back"),
    [(49244648, "49244648"), ("cD0yMDI0LTAxLTAx+Zz/==", "cD0yMDI0LTAxLTAx+Zz/==")],
    ids=["numeric", "string"],
)
def test_cursor_is_sent_back_verbatim_as_text(
    harness: Harness, wire_cursor: object, sent_back: str
) -> None:
    route = harness.export_route().mock(
        side_effect=[
            page([book(2, highlight(20, 2))], cursor=wire_cursor),
            page([book(1, highlight(10, 1))]),
        ]
    )
    pages = list(harness.client().export_pages(updated_after=None))
    assert [p.next_cursor for p in pages] == [sent_back, None]
    sent = params_of(route)
    assert "pageCursor" not in sent[0]
    assert sent[1]["pageCursor"] == sent_back
    assert [b.id for p in pages for b in p.books] == [2, 1]


@pytest.mark.parametrize(
    "last_page",
    [
        {"count": 0, "nextPageCursor": None, "results": []},
        {"count": 0, "nextPageCursor": "", "results": []},
        {"count": 0, "results": []},
    ],
    ids=["null", "empty-string", "absent"],
)
def test_paging_stops_when_the_cursor_ends(harness: Harness, last_page: dict[str, Any]) -> None:
    # An empty last page is asked for twice (see the next test); the same answer ends the chain.
    ending = [httpx.Response(200, json=last_page) for _twice in range(2)]
    route = harness.export_route().mock(side_effect=[page([book(1)], cursor="next"), *ending])
    result = harness.client().export(updated_after=None)
    assert route.call_count == 3
    assert result.pages == 2


def test_an_empty_page_after_a_cursor_is_asked_for_again(harness: Harness) -> None:
    # A glitch that ends the chain early would otherwise hide pages 2.. from the watermark.
    route = harness.export_route().mock(
        side_effect=[
            page([book(3)], cursor=3),
            page([]),
            page([book(2)], cursor=2),
            page([book(1)]),
        ]
    )
    result = harness.client().export(updated_after=None)
    assert sorted(result.books) == [1, 2, 3]
    assert [params_of(route)[n].get("pageCursor") for n in range(4)] == [None, "3", "3", "2"]


def test_every_filter_is_resent_on_every_page(harness: Harness) -> None:
    route = harness.export_route().mock(
        side_effect=[page([book(3)], cursor=3), page([book(2)], cursor="2"), page([book(1)])]
    )
    since = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    harness.client().export(updated_after=since, include_deleted=True, ids=[3, 2, 1])
    sent = params_of(route)
    assert len(sent) == 3
    for params in sent:
        assert params["updatedAfter"] == "2024-01-02T03:04:05.678Z"
        assert params["includeDeleted"] == "true"
        assert params["ids"] == "3,2,1"
    assert [params.get("pageCursor") for params in sent] == [None, "3", "2"]


def test_updated_after_is_sent_in_utc_with_z(harness: Harness) -> None:
    route = harness.export_route().mock(return_value=page([]))
    since = datetime(2024, 6, 1, 12, 0, 0, 5000, tzinfo=timezone(timedelta(hours=2)))
    harness.client().export(updated_after=since, include_deleted=False)
    sent = params_of(route)[0]
    assert sent == {"updatedAfter": "2024-06-01T10:00:00.005Z"}
    assert "+" not in str(route.calls.last.request.url)


def test_empty_ids_makes_no_request(harness: Harness) -> None:
    route = harness.export_route().mock(return_value=page([book(1)]))
    result = harness.client().export(updated_after=None, ids=[])
    assert route.call_count == 0
    assert result.books == {} and result.pages == 0 and result.server_date is None


def test_long_ids_lists_are_split_into_chunks(harness: Harness) -> None:
    route = harness.export_route().mock(return_value=page([]))
    ids = list(range(1, 2 * IDS_PER_REQUEST + 51))
    harness.client().export(updated_after=None, ids=ids)
    chunks = [params["ids"].split(",") for params in params_of(route)]
    assert [len(chunk) for chunk in chunks] == [IDS_PER_REQUEST, IDS_PER_REQUEST, 50]
    assert [int(i) for chunk in chunks for i in chunk] == ids


def test_repeated_cursor_is_an_error_not_a_loop(harness: Harness) -> None:
    route = harness.export_route().mock(
        side_effect=[page([book(2)], cursor=77), page([book(1)], cursor=77), page([])]
    )
    with pytest.raises(ApiDataError) as caught:
        harness.client().export(updated_after=None)
    assert route.call_count == 2
    message = str(caught.value)
    assert "'77'" in message and "page 2" in message and "page 1" in message
    assert caught.value.exit_code == 4


def test_cursor_cycle_longer_than_one_is_caught(harness: Harness) -> None:
    route = harness.export_route().mock(
        side_effect=[page([], cursor="a"), page([], cursor="b"), page([], cursor="a"), page([])]
    )
    with pytest.raises(ApiDataError, match="'a' repeats"):
        harness.client().export(updated_after=None)
    assert route.call_count == 3


def test_page_count_has_a_sanity_cap(harness: Harness) -> None:
    counter = iter(range(1, 1000))
    route = harness.export_route().mock(side_effect=lambda request: page([], cursor=next(counter)))
    with pytest.raises(ApiDataError, match="still paging after 5 pages"):
        harness.client(max_pages=5).export(updated_after=None)
    assert route.call_count == 5


@pytest.mark.parametrize("bad_cursor", [True, 1.5, {"next": 1}, [1]])
def test_cursor_of_an_odd_type_is_reported(harness: Harness, bad_cursor: object) -> None:
    harness.export_route().mock(return_value=page([], cursor=bad_cursor))
    with pytest.raises(ApiDataError, match="nextPageCursor should be a string or an integer"):
        harness.client().export(updated_after=None)


def test_books_split_across_pages_are_merged(harness: Harness) -> None:
    harness.export_route().mock(
        side_effect=[
            page(
                [book(9, highlight(91, 9)), book(5, highlight(50, 5), highlight(51, 5))], cursor=5
            ),
            page([book(5, highlight(52, 5), highlight(51, 5, updated_at="2024-02-02T00:00:00Z"))]),
        ]
    )
    result = harness.client().export(updated_after=None)
    assert result.pages == 2
    assert list(result.books) == [9, 5]
    merged = result.books[5]
    assert sorted(h.id for h in merged.highlights) == [50, 51, 52]
    # The later copy of a highlight wins.
    updated = {h.id: h.updated_at for h in merged.highlights}
    assert updated[51] == datetime(2024, 2, 2, tzinfo=UTC)


def test_export_records_the_first_response_date(harness: Harness) -> None:
    harness.export_route().mock(
        side_effect=[
            page([book(2)], cursor=2),
            *[
                httpx.Response(
                    200,
                    json={"nextPageCursor": None, "results": []},
                    headers={"Date": "Wed, 21 Oct 2015 07:30:00 GMT"},
                )
                for _twice in range(2)
            ],
        ]
    )
    result = harness.client().export(updated_after=None)
    assert result.server_date == datetime(2015, 10, 21, 7, 28, tzinfo=UTC)


def test_count_is_passed_through_for_progress_only(harness: Harness) -> None:
    harness.export_route().mock(
        side_effect=[
            page([book(1)], cursor=1, count=503),
            httpx.Response(200, json={"count": "x", "results": []}),
            httpx.Response(200, json={"count": "x", "results": []}),  # asked again: still empty
        ]
    )
    pages = list(harness.client().export_pages(updated_after=None))
    assert [p.count for p in pages] == [503, None]


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2022-09-13T16:41:53.186Z", datetime(2022, 9, 13, 16, 41, 53, 186000, tzinfo=UTC)),
        ("2022-09-13T16:41:53.186123Z", datetime(2022, 9, 13, 16, 41, 53, 186123, tzinfo=UTC)),
        ("2022-09-13T16:41:53Z", datetime(2022, 9, 13, 16, 41, 53, tzinfo=UTC)),
        ("2022-09-13T16:41:53.186+00:00", datetime(2022, 9, 13, 16, 41, 53, 186000, tzinfo=UTC)),
        ("2022-09-13T18:41:53.186+02:00", datetime(2022, 9, 13, 16, 41, 53, 186000, tzinfo=UTC)),
    ],
    ids=["ms-Z", "us-Z", "seconds-Z", "ms-+00:00", "ms-+02:00"],
)
def test_export_timestamps_in_every_form_seen(
    harness: Harness, wire: str, expected: datetime
) -> None:
    harness.export_route().mock(return_value=page([book(1, highlight(10, 1, updated_at=wire))]))
    (parsed,) = harness.client().export(updated_after=None).books[1].highlights
    assert parsed.updated_at == expected
    assert parsed.updated_at is not None and parsed.updated_at.utcoffset() == timedelta(0)


def test_book_parse_error_names_the_page(harness: Harness) -> None:
    broken = book(7, highlight(70, 7, updated_at="yesterday"))
    harness.export_route().mock(side_effect=[page([book(8)], cursor=8), page([broken])])
    with pytest.raises(ApiDataError) as caught:
        harness.client().export(updated_after=None)
    message = str(caught.value)
    assert (
        "export page 2" in message
        and "book 7" in message
        and "not an ISO 8601 timestamp" in message
    )
    assert caught.value.endpoint == EXPORT_PATH


# --- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [("7", 7.0), ("2.5", 2.5), ("0", 0.0), ("100000", 300.0)],
    ids=["integer", "float", "zero", "capped"],
)
def test_429_honours_retry_after_seconds(
    harness: Harness, retry_after: str, expected_wait: float
) -> None:
    route = harness.export_route().mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": retry_after}), page([book(1)])]
    )
    result = harness.client().export(updated_after=None)
    assert harness.sleeps == [expected_wait]
    assert route.call_count == 2
    assert list(result.books) == [1]


def test_429_honours_retry_after_as_http_date_on_the_server_clock(harness: Harness) -> None:
    harness.export_route().mock(
        side_effect=[
            httpx.Response(
                429,
                headers={
                    "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
                    "Retry-After": "Wed, 21 Oct 2015 07:28:42 GMT",
                },
            ),
            page([]),
        ]
    )
    harness.client().export(updated_after=None)
    assert harness.sleeps == [42.0]


@pytest.mark.parametrize("retry_after", [None, "soon", "-5", "nan", ""], ids=repr)
def test_429_without_usable_retry_after_backs_off(
    harness: Harness, retry_after: str | None
) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    harness.export_route().mock(
        side_effect=[
            httpx.Response(429, headers=headers),
            httpx.Response(429, headers=headers),
            page([]),
        ]
    )
    harness.client().export(updated_after=None)
    first, second = harness.sleeps
    assert 0.5 <= first <= 1.0  # backoff_initial 1 s, half of it jittered
    assert 1.0 <= second <= 2.0


def test_each_retry_logs_a_warning_event(harness: Harness) -> None:
    harness.export_route().mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "3"}), page([])]
    )
    with capture_logs() as events:
        harness.client().export(updated_after=None)
    retries = [e for e in events if e["event"] == "readwise.retry"]
    assert len(retries) == 1
    event = retries[0]
    assert event["log_level"] == "warning"
    assert event["endpoint"] == EXPORT_PATH
    assert event["status"] == 429
    assert event["attempt"] == 1
    assert event["wait"] == 3.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(harness: Harness, status: int) -> None:
    route = harness.export_route().mock(
        side_effect=[httpx.Response(status, text="<html>Bad Gateway</html>"), page([book(4)])]
    )
    result = harness.client().export(updated_after=None)
    assert route.call_count == 2
    assert len(harness.sleeps) == 1
    assert list(result.books) == [4]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.ConnectError("[Errno 111] Connection refused"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_transport_failures_are_retried(harness: Harness, failure: Exception) -> None:
    route = harness.export_route().mock(side_effect=[failure, page([book(6)])])
    result = harness.client().export(updated_after=None)
    assert route.call_count == 2
    assert len(harness.sleeps) == 1
    assert list(result.books) == [6]


@pytest.mark.parametrize(
    "bad_body",
    [
        httpx.Response(200, html="<html><body>Sign in to the hotel Wi-Fi</body></html>"),
        httpx.Response(200, text='{"count": 3, "results": [{"user_book_id"'),
        httpx.Response(200, json={"detail": "odd"}),
        httpx.Response(200, json=[{"user_book_id": 1}]),
        httpx.Response(200, json={"results": {"user_book_id": 1}}),
    ],
    ids=["captive-portal", "truncated-json", "no-results", "a-list", "results-not-a-list"],
)
def test_unreadable_200_bodies_are_retried(harness: Harness, bad_body: httpx.Response) -> None:
    route = harness.export_route().mock(side_effect=[bad_body, page([book(3)])])
    result = harness.client().export(updated_after=None)
    assert route.call_count == 2
    assert list(result.books) == [3]


def test_giving_up_reports_endpoint_status_and_attempts(harness: Harness) -> None:
    route = harness.export_route().mock(return_value=httpx.Response(503))
    with pytest.raises(ReadwiseUnavailable) as caught:
        harness.client().export(updated_after=None)
    error = caught.value
    assert type(error) is ReadwiseUnavailable
    assert (error.endpoint, error.status, error.attempts) == (EXPORT_PATH, 503, 8)
    assert error.exit_code == 4
    assert str(error) == (
        "Readwise unavailable: GET /api/v2/export/ failed after 8 attempts (last: HTTP 503)"
    )
    assert route.call_count == 8
    # Seven waits, each within [step/2, step] of a doubling step capped at backoff_max.
    assert len(harness.sleeps) == 7
    for attempt, wait in enumerate(harness.sleeps, start=1):
        step = min(60.0, 2.0 ** (attempt - 1))
        assert step / 2 <= wait <= step


def test_backoff_is_capped_by_the_policy(harness: Harness) -> None:
    harness.export_route().mock(return_value=httpx.Response(502))
    policy = RetryPolicy(max_attempts=6, backoff_initial=10.0, backoff_max=25.0)
    with pytest.raises(ReadwiseUnavailable) as caught:
        harness.client(retry=policy).export(updated_after=None)
    assert caught.value.attempts == 6
    assert len(harness.sleeps) == 5
    assert all(wait <= 25.0 for wait in harness.sleeps)
    assert harness.sleeps[-1] >= 12.5


def test_giving_up_after_transport_errors_names_the_exception(harness: Harness) -> None:
    harness.router.get(AUTH_PATH).mock(
        side_effect=httpx.ConnectError("[Errno 111] Connection refused")
    )
    with pytest.raises(ReadwiseUnavailable) as caught:
        harness.client(retry=RetryPolicy(max_attempts=3)).check_token()
    error = caught.value
    assert (error.endpoint, error.status, error.attempts) == (AUTH_PATH, None, 3)
    assert "ConnectError" in str(error) and "3 attempts" in str(error)
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_giving_up_on_unreadable_bodies_is_an_api_data_error(harness: Harness) -> None:
    harness.export_route().mock(return_value=httpx.Response(200, html="<html>portal</html>"))
    with pytest.raises(ApiDataError) as caught:
        harness.client(retry=RetryPolicy(max_attempts=2)).export(updated_after=None)
    assert caught.value.attempts == 2 and caught.value.status == 200
    assert "not JSON" in str(caught.value)
    assert caught.value.exit_code == 4


@pytest.mark.parametrize("status", [400, 404, 414])
def test_other_client_errors_are_not_retried(harness: Harness, status: int) -> None:
    route = harness.export_route().mock(
        return_value=httpx.Response(status, json={"updatedAfter": ["Enter a valid date/time."]})
    )
    with pytest.raises(ReadwiseUnavailable) as caught:
        harness.client().export(updated_after=None)
    error = caught.value
    assert not isinstance(error, TokenRejected)
    assert route.call_count == 1 and harness.sleeps == []
    assert (error.endpoint, error.status, error.attempts) == (EXPORT_PATH, status, 1)
    assert f"HTTP {status}" in str(error) and "Enter a valid date/time." in str(error)


def test_error_body_echoing_the_token_is_redacted(harness: Harness) -> None:
    harness.export_route().mock(return_value=httpx.Response(400, text=f"bad header Token {TOKEN}"))
    with pytest.raises(ReadwiseUnavailable) as caught:
        harness.client().export(updated_after=None)
    assert TOKEN not in str(caught.value)
    assert "[REDACTED]" in str(caught.value)
