"""Readwise v2 API client: token check and the paged highlight export, with retries.

The httpx.Client is passed in (tests inject a mock transport). Messages and log events name the
endpoint path and status only: the token travels in the Authorization header and nowhere else.
See shared/readwise/api.md §1-§3 and §8 for the behaviour this follows.
"""

from __future__ import annotations

import functools
import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, NoReturn, TypeVar, cast

import httpx
import tenacity

from syncd import __version__
from syncd.errors import ApiDataError, ConfigError, ReadwiseUnavailable, TokenRejected
from syncd.log import add_secret, get_logger
from syncd.model import Book, book_from_json, format_timestamp, merge_highlights
from syncd.sources.neterrors import CONNECT_FAILURES, describe_connect_failure
from syncd.wording import counted

_T = TypeVar("_T")

AUTH_PATH = "/api/v2/auth/"
EXPORT_PATH = "/api/v2/export/"

# Long `ids` lists make URLs Readwise answers with 414; readwise-mirror asks 100 at a time.
IDS_PER_REQUEST = 100
# A 50k-highlight library is ~50 pages; this only stops a server that never ends the cursor chain.
DEFAULT_MAX_PAGES = 10_000

# Shared by the export and the write-back client (syncd.sources.readwise_write).
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
REJECTED_TOKEN_STATUSES = frozenset({401, 403})
# Transport failures worth another try: timeouts, refused/reset connections, bodies cut short.
RETRIED_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    httpx.DecodingError,
)

_log = get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8  # per request
    backoff_initial: float = 1.0  # seconds, doubled per attempt, with jitter
    backoff_max: float = 60.0
    max_retry_after: float = 300.0  # a Retry-After above this is capped
    timeout: float = 30.0  # per request (connect/read)
    # When set: a request that cannot connect at all (refused, unresolved, connect timeout,
    # proxy) gives up after this many attempts, each allowed `connect_timeout` to connect.
    connect_attempts: int | None = None
    connect_timeout: float | None = None


# A person waiting at a terminal: give up connecting within ~10 s (3 attempts of at most 2 s,
# plus waits of at most 1 s and 2 s) instead of the minutes a daemon may wait out.
INTERACTIVE_CONNECT_ATTEMPTS = 3
INTERACTIVE_CONNECT_TIMEOUT = 2.0


def interactive_policy(policy: RetryPolicy) -> RetryPolicy:
    """The policy for someone at a terminal: connection failures give up within ~10 s."""
    return replace(
        policy,
        connect_attempts=INTERACTIVE_CONNECT_ATTEMPTS,
        connect_timeout=min(policy.timeout, INTERACTIVE_CONNECT_TIMEOUT),
    )


@dataclass(frozen=True)
class ExportPage:
    books: list[Book]
    next_cursor: str | None
    count: int | None  # the server's own count; only good for progress display (api.md §3.3)
    server_date: datetime | None = None  # this response's Date header


@dataclass(frozen=True)
class ExportResult:
    books: dict[int, Book]  # by user_book_id, highlights merged across pages
    pages: int
    server_date: datetime | None  # Date header of the first response, for the watermark


class _RetryableFailure(Exception):
    """One failed attempt that may succeed if repeated. Internal to the retry loop."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        malformed_body: bool = False,
        no_connection: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.malformed_body = malformed_body
        self.no_connection = no_connection


class ReadwiseClient:
    def __init__(
        self,
        http: httpx.Client,
        *,
        token: str,
        base_url: str,
        retry: RetryPolicy = RetryPolicy(),  # frozen, so one shared default is safe
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        first_retry: RetryPolicy | None = None,
    ) -> None:
        """base_url is the server root (https://readwise.io); a trailing /api/v2/ is tolerated.
        `first_retry` replaces `retry` until Readwise first answers (see `interactive_policy`)."""
        self._token = _checked_token(token)
        add_secret(self._token)
        self._http = http
        self._base_url = _server_root(base_url)
        self._retry = retry
        self._first_retry = first_retry
        self._answered = False  # set once any HTTP reply arrived: the network is there
        self._host = httpx.URL(self._base_url).netloc.decode("ascii", "replace")
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._max_pages = max_pages

    # --- public API ----------------------------------------------------------------------

    def check_token(self) -> None:
        """GET /api/v2/auth/: returns if Readwise accepts the token (204), else raises."""
        self._request(AUTH_PATH, params={}, expect_export_body=False)

    def export_pages(
        self,
        *,
        updated_after: datetime | None,
        include_deleted: bool = True,
        ids: Sequence[int] | None = None,
    ) -> Iterator[ExportPage]:
        """Every page of GET /api/v2/export/ for these filters, following pageCursor.

        ids=None exports every book; an empty ids list exports nothing (no request is made).
        Long ids lists are split into requests of IDS_PER_REQUEST books.
        """
        filters: dict[str, str] = {}
        if updated_after is not None:
            filters["updatedAfter"] = format_timestamp(updated_after)
        if include_deleted:
            filters["includeDeleted"] = "true"
        if ids is None:
            yield from self._pages_for(filters)
            return
        for start in range(0, len(ids), IDS_PER_REQUEST):
            chunk = ids[start : start + IDS_PER_REQUEST]
            yield from self._pages_for({**filters, "ids": ",".join(str(int(i)) for i in chunk)})

    def export(
        self,
        *,
        updated_after: datetime | None,
        include_deleted: bool = True,
        ids: Sequence[int] | None = None,
    ) -> ExportResult:
        """All pages collected; a book split across pages comes back as one Book."""
        books: dict[int, Book] = {}
        pages = 0
        server_date: datetime | None = None
        for page in self.export_pages(
            updated_after=updated_after, include_deleted=include_deleted, ids=ids
        ):
            if pages == 0:
                server_date = page.server_date
            pages += 1
            for book in page.books:
                earlier = books.get(book.id)
                if earlier is not None:
                    book = book.with_highlights(
                        merge_highlights(earlier.highlights, book.highlights)
                    )
                books[book.id] = book
        return ExportResult(books=books, pages=pages, server_date=server_date)

    # --- paging ----------------------------------------------------------------------------

    def _pages_for(self, filters: Mapping[str, str]) -> Iterator[ExportPage]:
        # The next page is asked for (on a background thread) as soon as its cursor is known,
        # so Readwise's time to build it overlaps with the caller's work on this one.
        used_cursors: dict[str, int] = {}  # cursor -> the page number it was returned by
        page_number = 1
        job = _Background(lambda: self._page(filters, None, 1))
        while True:
            page = job.result()
            next_cursor = page.next_cursor
            if next_cursor is not None:
                if next_cursor in used_cursors:
                    raise self._data_error(
                        f"export page {page_number}: nextPageCursor {next_cursor!r} repeats the"
                        f" cursor returned by page {used_cursors[next_cursor]}; the server is"
                        " not advancing"
                    )
                used_cursors[next_cursor] = page_number
                if page_number < self._max_pages:
                    job = _Background(
                        functools.partial(self._page, filters, next_cursor, page_number + 1)
                    )
            yield page
            if next_cursor is None:
                return
            if page_number >= self._max_pages:
                raise self._data_error(
                    f"export: still paging after {self._max_pages} pages; giving up on a cursor"
                    " chain that does not end"
                )
            page_number += 1

    def _page(self, filters: Mapping[str, str], cursor: str | None, page_number: int) -> ExportPage:
        # Every filter goes out again with every cursor: the cursor holds only the position.
        params = dict(filters)
        if cursor is not None:
            params["pageCursor"] = cursor
        response, body = self._request(EXPORT_PATH, params=params, expect_export_body=True)
        assert body is not None
        if cursor is not None and not body["results"] and body.get("nextPageCursor") in (None, ""):
            # Nothing after a cursor: the chain really ends here, or a glitch cut it short and
            # the watermark would skip whatever it hid. One more look tells them apart.
            _log.warning("readwise.empty_page", endpoint=EXPORT_PATH, page=page_number)
            response, body = self._request(EXPORT_PATH, params=params, expect_export_body=True)
            assert body is not None
        return ExportPage(
            books=self._books(body, page_number),
            next_cursor=self._next_cursor(body, page_number),
            count=_optional_int(body.get("count")),
            server_date=_http_date(response.headers.get("Date")),
        )

    def _next_cursor(self, body: Mapping[str, Any], page_number: int) -> str | None:
        # Opaque: a JSON number on the wire, a string in the docs; sent back verbatim as text.
        raw = body.get("nextPageCursor")
        if raw is None or raw == "":
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise self._data_error(
                f"export page {page_number}: nextPageCursor should be a string or an integer,"
                f" got {type(raw).__name__} {raw!r:.40}"
            )
        return str(raw)

    def _books(self, body: Mapping[str, Any], page_number: int) -> list[Book]:
        books: list[Book] = []
        for index, item in enumerate(body["results"]):
            try:
                books.append(book_from_json(item))
            except ApiDataError as exc:
                raise self._data_error(
                    f"export page {page_number}, result [{index}]: {exc}"
                ) from exc
        return books

    def _data_error(self, message: str) -> ApiDataError:
        return ApiDataError(message, endpoint=EXPORT_PATH, status=200)

    # --- one request, retried --------------------------------------------------------------

    def _request(
        self, path: str, *, params: Mapping[str, str], expect_export_body: bool
    ) -> tuple[httpx.Response, dict[str, Any] | None]:
        attempts = 0
        policy = self._retry
        if self._first_retry is not None and not self._answered:
            policy = self._first_retry

        def attempt() -> tuple[httpx.Response, dict[str, Any] | None]:
            nonlocal attempts
            attempts += 1
            return self._attempt(path, params, expect_export_body, attempts, policy)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts:
                return True
            failure = state.outcome.exception() if state.outcome is not None else None
            return (
                policy.connect_attempts is not None
                and isinstance(failure, _RetryableFailure)
                and failure.no_connection
                and state.attempt_number >= policy.connect_attempts
            )

        retrying = tenacity.Retrying(
            stop=stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_RetryableFailure),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(path, state, policy),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _RetryableFailure as failure:
            self._give_up(path, failure, attempts)

    def _attempt(
        self,
        path: str,
        params: Mapping[str, str],
        expect_export_body: bool,
        attempt: int,
        policy: RetryPolicy,
    ) -> tuple[httpx.Response, dict[str, Any] | None]:
        timeout = httpx.Timeout(policy.timeout, connect=policy.connect_timeout or policy.timeout)
        try:
            response = self._http.get(
                self._base_url + path,
                params=params,
                headers=request_headers(self._token),
                timeout=timeout,
            )
        except CONNECT_FAILURES as exc:
            words = describe_connect_failure(exc, self._host)
            raise _RetryableFailure(f"{type(exc).__name__}: {words}", no_connection=True) from exc
        except RETRIED_EXCEPTIONS as exc:
            raise _RetryableFailure(type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            # A bad URL scheme and the like: repeating the request cannot help.
            raise ReadwiseUnavailable(
                f"Readwise request GET {path} could not be sent ({type(exc).__name__});"
                " check the Readwise base URL",
                endpoint=path,
                attempts=attempt,
            ) from exc

        self._answered = True
        status = response.status_code
        if status in REJECTED_TOKEN_STATUSES:
            raise token_rejected(status, f"GET {path}")
        if status == 429:
            raise _RetryableFailure("HTTP 429", status=status, retry_after=retry_after(response))
        if status in RETRIED_STATUSES:
            raise _RetryableFailure(f"HTTP {status}", status=status)
        if not 200 <= status < 300:
            raise ReadwiseUnavailable(
                f"Readwise refused GET {path} with HTTP {status} (not retried)"
                f"{_status_hint(status)}: {self._excerpt(response)}",
                endpoint=path,
                status=status,
                attempts=attempt,
            )
        if not expect_export_body:
            if status != 204:
                # Readwise answers a good token with 204 and no body: a 200 page here is a
                # captive portal or a proxy, not Readwise (retried like any unreadable reply).
                raise _RetryableFailure(f"HTTP {status} instead of 204")
            return response, None
        return response, _export_body(response)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        asked = failure.retry_after if isinstance(failure, _RetryableFailure) else None
        return backoff_seconds(self._retry, state.attempt_number, self._rng, asked)

    def _log_retry(self, path: str, state: tenacity.RetryCallState, policy: RetryPolicy) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        reason = failure.reason if isinstance(failure, _RetryableFailure) else repr(failure)
        # Someone waiting at a terminal gets one line when it gives up (within ~10 s), not one
        # per retry: there the retries are info (-v shows them).
        say = _log.info if policy is self._first_retry else _log.warning
        say(
            "readwise.retry",
            endpoint=path,
            status=failure.status if isinstance(failure, _RetryableFailure) else None,
            reason=reason,
            attempt=state.attempt_number,
            max_attempts=policy.connect_attempts
            if isinstance(failure, _RetryableFailure)
            and failure.no_connection
            and policy.connect_attempts is not None
            else policy.max_attempts,
            wait=round(state.upcoming_sleep, 3),
        )

    def _give_up(self, path: str, failure: _RetryableFailure, attempts: int) -> NoReturn:
        last = f"HTTP {failure.status}" if failure.status is not None else failure.reason
        if failure.malformed_body:
            last = f"{last}, {failure.reason}"
        message = (
            f"Readwise unavailable: GET {path} failed after {counted(attempts, 'attempt')}"
            f" (last: {last})"
        )
        error_type = ApiDataError if failure.malformed_body else ReadwiseUnavailable
        raise error_type(
            message, endpoint=path, status=failure.status, attempts=attempts
        ) from failure.__cause__

    def _excerpt(self, response: httpx.Response) -> str:
        text = " ".join(response.text.split())[:200] or "(empty body)"
        # The server has no reason to echo the token, but a proxy page might: never pass it on.
        return text.replace(self._token, "[REDACTED]")


# --- helpers --------------------------------------------------------------------------------


def _checked_token(token: str) -> str:
    # Refuse what cannot go in a header: httpx's error for it would quote the whole value.
    token = token.strip()
    if not token:
        raise ConfigError(["readwise token: empty"])
    if not token.isascii() or not token.isprintable() or any(ch.isspace() for ch in token):
        raise ConfigError(
            ["readwise token: contains spaces, control or non-ASCII characters; paste it again"]
        )
    return token


def _server_root(base_url: str) -> str:
    return base_url.strip().rstrip("/").removesuffix("/api/v2")


def _export_body(response: httpx.Response) -> dict[str, Any]:
    """The decoded export page, or a retryable failure for a body that is not one."""
    content_type = response.headers.get("Content-Type", "")
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise _RetryableFailure(
            f"body is not JSON (Content-Type {content_type or 'missing'!s:.40})",
            status=response.status_code,
            malformed_body=True,
        ) from exc
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise _RetryableFailure(
            "body is JSON but not an export page (an object with a `results` list)",
            status=response.status_code,
            malformed_body=True,
        )
    return body


# --- shared with the write-back client (syncd.sources.readwise_write) --------------------------


def request_headers(token: str) -> dict[str, str]:
    """What every request to Readwise carries."""
    return {
        "Authorization": f"Token {token}",
        "Accept": "application/json",
        "User-Agent": f"syncd/{__version__}",
    }


def token_rejected(status: int, request: str) -> TokenRejected:
    """The error for a 401/403 answer to `request` ("GET /api/v2/auth/")."""
    return TokenRejected(
        f"Readwise token rejected (HTTP {status} on {request}): check the token in your"
        " config; a valid one is shown at https://readwise.io/access_token"
    )


def retry_after(response: httpx.Response) -> float | None:
    """A 429's Retry-After in seconds (against the server's own clock), None if unreadable."""
    return _retry_after_seconds(
        response.headers.get("Retry-After"),
        server_now=_http_date(response.headers.get("Date")),
    )


def backoff_seconds(
    policy: RetryPolicy, attempt: int, rng: random.Random, asked: float | None
) -> float:
    """How long to wait before attempt `attempt + 1`: what the server `asked` (Retry-After,
    capped), else exponential with "equal jitter": half the step fixed, half random, so
    retries spread out but never collapse to zero."""
    if asked is not None:
        return min(asked, policy.max_retry_after)
    step = min(policy.backoff_max, policy.backoff_initial * 2.0 ** (attempt - 1))
    return step / 2 + rng.uniform(0, step / 2)


def _retry_after_seconds(value: str | None, *, server_now: datetime | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date; None when missing or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        moment = _http_date(text)
        if moment is None:
            return None
        # Measured against the server's own clock when it sent one, so skew does not matter.
        now = server_now if server_now is not None else datetime.now(UTC)
        return max(0.0, (moment - now).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000" means UTC with unknown origin
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _optional_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _status_hint(status: int) -> str:
    if status == 414:
        return " (URL too long: too many ids in one request)"
    if status == 400:
        return " (the request was malformed; this is a bug in syncd)"
    return ""


class _Background(Generic[_T]):
    """One call on a daemon thread; `result()` waits for it and returns or raises what it did.
    A daemon thread, so an abandoned call (the pass stopped) never holds up the exit."""

    def __init__(self, call: Callable[[], _T]) -> None:
        self._call = call
        self._value: _T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="syncd-readwise", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> _T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return cast(_T, self._value)
