"""Readwise v2 writes: update a highlight's note or text, add and remove highlight tags.

`ReadwiseWriter` follows the read client's rules (syncd.sources.readwise): 429 waits for
`Retry-After`, 5xx, timeouts, resets and unreadable bodies back off and retry, a rejected token
raises TokenRejected. For writes, in addition (api.md §4):

- 404: the highlight (or tag) is gone in Readwise: `HighlightGone`, never retried;
- 400: Readwise refused a field: `WriteRejected` naming the field and Readwise's message, never
  retried (the same request would be refused again);
- a tag POST whose answer was lost (reset, cut short, 5xx) may have been applied: before it is
  sent again the highlight's tag list is read, and a tag already there is not sent twice;
- pacing: at most `per_minute` requests (240, Readwise's limit per token) in any 60 s, so a burst
  of a thousand changes waits its turn instead of drawing 429s.

The token travels in the Authorization header only; messages name the method, path and status.
"""

from __future__ import annotations

import collections
import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import httpx
import tenacity

from syncd.errors import ReadwiseUnavailable
from syncd.log import add_secret, get_logger
from syncd.sources.readwise import (
    REJECTED_TOKEN_STATUSES,
    RETRIED_EXCEPTIONS,
    RETRIED_STATUSES,
    RetryPolicy,
    _checked_token,
    _server_root,
    backoff_seconds,
    request_headers,
    retry_after,
    token_rejected,
)
from syncd.writeback.protocol import HighlightGone, WriteRejected

HIGHLIGHT_PATH = "/api/v2/highlights/{id}/"
TAGS_PATH = "/api/v2/highlights/{id}/tags/"
TAG_PATH = "/api/v2/highlights/{id}/tags/{tag_id}/"
PER_MINUTE = 240  # Readwise's default limit per token (api.md §2)
_WINDOW_S = 60.0

_log = get_logger(__name__)

__all__ = ["HighlightGone", "ReadwiseWriter", "RequestPacer", "WriteRejected"]


class _Retryable(Exception):
    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class RequestPacer:
    """At most `per_minute` requests in any sliding 60 s: `wait()` before each request."""

    def __init__(
        self,
        *,
        per_minute: int = PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        self._limit = per_minute
        self._clock = clock
        self._sleep = sleep
        self._sent: collections.deque[float] = collections.deque()
        self.waited = 0.0  # seconds spent waiting in total (for logs and tests)

    def wait(self) -> None:
        now = self._clock()
        while self._sent and self._sent[0] <= now - _WINDOW_S:
            self._sent.popleft()
        if len(self._sent) >= self._limit:
            pause = self._sent[0] + _WINDOW_S - now
            if pause > 0:
                self.waited += pause
                self._sleep(pause)
            now = self._clock()
            self._sent.popleft()
        self._sent.append(now)


class ReadwiseWriter:
    def __init__(
        self,
        http: httpx.Client,
        *,
        token: str,
        base_url: str,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 (frozen: one shared default is safe)
        sleep: Callable[[float], None] = time.sleep,
        pacer: RequestPacer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._token = _checked_token(token)
        add_secret(self._token)
        self._http = http
        self._base_url = _server_root(base_url)
        self._retry = retry
        self._sleep = sleep
        self._pacer = pacer if pacer is not None else RequestPacer(sleep=sleep)
        self._rng = rng if rng is not None else random.Random()

    # --- public API ----------------------------------------------------------------------

    def update_highlight(self, highlight_id: int, fields: Mapping[str, str]) -> dict[str, Any]:
        """PATCH the highlight's `note` and/or `text`; Readwise's DETAIL answer."""
        path = HIGHLIGHT_PATH.format(id=int(highlight_id))
        body = self._send("PATCH", path, json_body=dict(fields))
        return body if isinstance(body, dict) else {}

    def highlight_tags(self, highlight_id: int) -> list[tuple[int, str]]:
        """(tag id, name) of every tag on the highlight, following `next` pages."""
        path = TAGS_PATH.format(id=int(highlight_id))
        tags: list[tuple[int, str]] = []
        url: str | None = self._base_url + path
        pages = 0
        while url is not None and pages < 100:
            body = self._send("GET", path, url=url)
            pages += 1
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise ReadwiseUnavailable(
                    f"Readwise answered GET {path} with something that is not a tag list",
                    endpoint=path,
                    status=200,
                )
            for item in body["results"]:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    tags.append((int(item.get("id") or 0), item["name"]))
            next_url = body.get("next")
            url = next_url if isinstance(next_url, str) and next_url else None
        return tags

    def add_highlight_tag(self, highlight_id: int, name: str) -> tuple[int, str]:
        """POST one tag; never twice: a retry first looks whether the last POST got through."""
        path = TAGS_PATH.format(id=int(highlight_id))

        def already_there() -> tuple[int, str] | None:
            for tag_id, tag_name in self.highlight_tags(highlight_id):
                if tag_name == name:
                    return tag_id, tag_name
            return None

        body = self._send("POST", path, json_body={"name": name}, before_retry=already_there)
        if isinstance(body, tuple):
            return body
        if isinstance(body, dict) and isinstance(body.get("name"), str):
            return int(body.get("id") or 0), body["name"]
        return 0, name

    def delete_highlight_tag(self, highlight_id: int, tag_id: int) -> None:
        """DELETE one tag; a retry first looks whether the last DELETE got through (else the
        repeat would find the tag gone and answer 404)."""
        path = TAG_PATH.format(id=int(highlight_id), tag_id=int(tag_id))

        def already_gone() -> bool | None:
            ids = {existing for existing, _name in self.highlight_tags(highlight_id)}
            return True if tag_id not in ids else None

        self._send("DELETE", path, before_retry=already_gone)

    # --- one request, retried --------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        url: str | None = None,
        before_retry: Callable[[], Any] | None = None,
    ) -> Any:
        """The decoded answer (None for 204). `before_retry`: asked before every attempt after
        the first; a non-None answer is returned instead of sending again."""
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and before_retry is not None:
                found = before_retry()
                if found is not None:
                    return found
            return self._attempt(method, path, url or self._base_url + path, json_body)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._retry.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as failure:
            self._give_up(method, path, failure, attempts)

    def _attempt(
        self, method: str, path: str, url: str, json_body: Mapping[str, Any] | None
    ) -> Any:
        self._pacer.wait()
        try:
            response = self._http.request(
                method,
                url,
                json=dict(json_body) if json_body is not None else None,
                headers=request_headers(self._token),
                timeout=self._retry.timeout,
            )
        except RETRIED_EXCEPTIONS as exc:
            raise _Retryable(type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise ReadwiseUnavailable(
                f"Readwise request {method} {path} could not be sent ({type(exc).__name__});"
                " check the Readwise base URL",
                endpoint=path,
            ) from exc
        status = response.status_code
        if status in REJECTED_TOKEN_STATUSES:
            raise token_rejected(status, f"{method} {path}")
        if status == 429:
            raise _Retryable("HTTP 429", status=status, retry_after=retry_after(response))
        if status in RETRIED_STATUSES:
            raise _Retryable(f"HTTP {status}", status=status)
        if status == 404:
            raise HighlightGone(method, path)
        if status == 400:
            field, message = _first_field_error(response)
            raise WriteRejected(method, path, field, message)
        if not 200 <= status < 300:
            raise ReadwiseUnavailable(
                f"Readwise refused {method} {path} with HTTP {status} (not retried)",
                endpoint=path,
                status=status,
            )
        if status == 204:
            return None
        try:
            return json.loads(response.content)
        except ValueError as exc:
            # A captive portal's page or a body cut short: not Readwise's answer.
            raise _Retryable(f"HTTP {status} with a body that is not JSON", status=status) from exc

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        asked = failure.retry_after if isinstance(failure, _Retryable) else None
        return backoff_seconds(self._retry, state.attempt_number, self._rng, asked)

    def _log_retry(self, method: str, path: str, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        _log.warning(
            "readwise.retry",
            endpoint=path,
            method=method,
            status=failure.status if isinstance(failure, _Retryable) else None,
            reason=failure.reason if isinstance(failure, _Retryable) else repr(failure),
            attempt=state.attempt_number,
            max_attempts=self._retry.max_attempts,
            wait=round(state.upcoming_sleep, 3),
        )

    def _give_up(self, method: str, path: str, failure: _Retryable, attempts: int) -> NoReturn:
        last = f"HTTP {failure.status}" if failure.status is not None else failure.reason
        raise ReadwiseUnavailable(
            f"Readwise unavailable: {method} {path} failed after {attempts} attempts"
            f" (last: {last})",
            endpoint=path,
            status=failure.status,
            attempts=attempts,
        ) from failure.__cause__


def _first_field_error(response: httpx.Response) -> tuple[str, str]:
    """DRF's 400 body `{"field": ["message", ...]}`: the first field and its message."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return "(unknown)", " ".join(response.text.split())[:200]
    if isinstance(body, dict):
        for field, messages in body.items():
            if isinstance(messages, list) and messages:
                return str(field), str(messages[0])[:200]
            return str(field), str(messages)[:200]
    return "(unknown)", str(body)[:200]
