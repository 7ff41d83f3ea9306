"""Faults and rate limiting for the stand-in Readwise server.

A `FaultPlan` decides, request by request, whether the server misbehaves. Requests are numbered
from 1 in arrival order; export requests (`/api/v2/export`) also get their own number from 1,
and so do write requests (PATCH / POST / DELETE on the highlight routes).
The first rule that matches a request wins; each request gets at most one fault.

    FaultPlan.on_export_requests({1: Fault.status(503), 2: Fault.reset()})
    FaultPlan.on_requests({1: Fault.throttle(retry_after=2)})           # any path, 1-based
    FaultPlan().add_path_fault("/api/v2/auth/", Fault.status(502), times=2)
    FaultPlan().fail_next_exports(3, Fault.truncate())                   # armed at runtime
    FaultPlan().revoke_token_from(5)                                     # 401 from request 5 on
    FaultPlan.on_export_requests({2: Fault.run(lambda: library.delete_book(book_id))})
    FaultPlan.seeded(7, probability=0.3)                                 # random, reproducible
    FaultPlan.on_write_requests({1: Fault.status(503)})                  # the first write
    FaultPlan().add_random_writes(7, probability=0.3)                    # random writes only

Fault kinds, as the client sees them:

- `status(code)`: that status with an HTML body (a proxy's error page), before authentication.
  Default bodies exist for 500, 502, 503 and 504.
- `throttle(retry_after=N)`: 429 with the DRF body and `Retry-After: N`. `retry_after` may be an
  int (seconds), any string (sent verbatim, e.g. garbage) or None (header left out);
  `throttle_until(seconds)` sends an HTTP-date that many seconds ahead instead.
- `delay(seconds)`: waits, then answers normally (use it to exceed a client timeout). `stop()`
  of the server cuts the wait short.
- `reset(fraction)`: sends the headers and that fraction of the body, then closes the socket with
  SO_LINGER 0, which makes the kernel send a TCP RST.
- `truncate(fraction)`: sends a full `Content-Length`, that fraction of the body, then closes
  normally, so the body ends early.
- `captive_portal()`: 200 with `Content-Type: text/html` and a Wi-Fi login page.
- `empty_page()` (export only): 200 `{"count":0,"nextPageCursor":null,"results":[]}`.
- `repeat_cursor()` (export only): the real page, but `nextPageCursor` is the `pageCursor` of the
  request, so a client that trusts it asks for the same page again. No effect on a first page.
- `revoked()`: 401 `{"detail":"Invalid token."}` as if the token had been revoked.
- `run(callback)`: calls `callback()` (e.g. a library mutation) and then answers normally; use it
  for "the library changes between pages".

Faults that answer before authentication (status, throttle, captive_portal, revoked) do not
consume a rate-limit slot.

Rate limiting (server quirk `rate_limit=True`) follows Django REST Framework's
`SimpleRateThrottle`, per token and scope: a 60 s sliding window with 240 requests for `default`
and 20 for `highlight_list` and `book_list`; a refused request is not recorded; `Retry-After` is
`ceil(time until the oldest request leaves the window / (free slots + 1))`, DRF's formula; the 429
body is `{"detail":"Request was throttled. Expected available in N seconds."}`. Authentication
(401) is checked first, as in DRF.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "status",
    "throttle",
    "delay",
    "reset",
    "truncate",
    "captive_portal",
    "empty_page",
    "repeat_cursor",
    "revoked",
    "run",
]

ERROR_PAGES: Mapping[int, str] = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def error_page(code: int, reason: str) -> str:
    """An nginx-style HTML error page, as a proxy in front of the API would send."""
    return (
        f"<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


CAPTIVE_PORTAL_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in to Wi-Fi</title></head><body>"
    "<h1>Welcome to Airport Free Wi-Fi</h1><form action='/login' method='post'>"
    "<input type='checkbox' name='terms'> I accept the terms<button>Connect</button></form>"
    "</body></html>"
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One way to misbehave on one request; build it with the class methods."""

    kind: FaultKind
    code: int = 0
    body: str = ""
    retry_after: str | None = None
    retry_after_date_seconds: int | None = None
    seconds: float = 0.0
    fraction: float = 0.5
    callback: Callable[[], object] | None = None

    @classmethod
    def status(cls, code: int, *, body: str | None = None) -> Fault:
        if not 400 <= code <= 599:
            raise ValueError(f"Fault.status: {code} is not an error status (400-599)")
        reason = ERROR_PAGES.get(code, "Error")
        return cls("status", code=code, body=error_page(code, reason) if body is None else body)

    @classmethod
    def throttle(cls, *, retry_after: int | str | None = 1) -> Fault:
        header = str(retry_after) if isinstance(retry_after, int) else retry_after
        return cls("throttle", code=429, retry_after=header)

    @classmethod
    def throttle_until(cls, seconds: int) -> Fault:
        return cls("throttle", code=429, retry_after_date_seconds=seconds)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        if seconds <= 0:
            raise ValueError(f"Fault.delay: seconds must be > 0, got {seconds}")
        return cls("delay", seconds=seconds)

    @classmethod
    def reset(cls, fraction: float = 0.5) -> Fault:
        return cls("reset", fraction=_fraction("reset", fraction))

    @classmethod
    def truncate(cls, fraction: float = 0.5) -> Fault:
        return cls("truncate", fraction=_fraction("truncate", fraction))

    @classmethod
    def captive_portal(cls) -> Fault:
        return cls("captive_portal", code=200, body=CAPTIVE_PORTAL_PAGE)

    @classmethod
    def empty_page(cls) -> Fault:
        return cls("empty_page")

    @classmethod
    def repeat_cursor(cls) -> Fault:
        return cls("repeat_cursor")

    @classmethod
    def revoked(cls) -> Fault:
        return cls("revoked", code=401)

    @classmethod
    def run(cls, callback: Callable[[], object]) -> Fault:
        return cls("run", callback=callback)


def _fraction(kind: str, fraction: float) -> float:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"Fault.{kind}: fraction must be in [0, 1), got {fraction}")
    return fraction


RETRYABLE_FAULTS: tuple[Fault, ...] = (
    Fault.throttle(retry_after=0),
    Fault.status(500),
    Fault.status(502),
    Fault.status(503),
    Fault.status(504),
    Fault.reset(),
    Fault.truncate(),
    Fault.captive_portal(),
)
"""What `FaultPlan.seeded` draws from by default: every fault a client should retry quickly."""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a fault rule may look at. `export_index` is None for non-export requests."""

    index: int
    export_index: int | None
    method: str
    path: str
    write_index: int | None = None  # PATCH / POST / DELETE requests, numbered from 1


def normalise_path(path: str) -> str:
    """Routes match with and without a trailing slash."""
    return path.rstrip("/") or "/"


class _Rule:
    def fault_for(self, request: RequestInfo) -> Fault | None:
        raise NotImplementedError


Scope = Literal["all", "exports", "writes"]


def _scoped_index(request: RequestInfo, scope: Scope) -> int | None:
    if scope == "exports":
        return request.export_index
    if scope == "writes":
        return request.write_index
    return request.index


class _ByIndex(_Rule):
    def __init__(self, faults: Mapping[int, Fault], *, scope: Scope) -> None:
        if any(index < 1 for index in faults):
            raise ValueError(f"request numbers start at 1, got {sorted(faults)}")
        self._faults = dict(faults)
        self._scope = scope

    def fault_for(self, request: RequestInfo) -> Fault | None:
        index = _scoped_index(request, self._scope)
        return None if index is None else self._faults.get(index)


class _ByPath(_Rule):
    def __init__(self, path: str, fault: Fault, times: int | None) -> None:
        self._path = normalise_path(path)
        self._fault = fault
        self._remaining = times

    def fault_for(self, request: RequestInfo) -> Fault | None:
        if request.path != self._path or self._remaining == 0:
            return None
        if self._remaining is not None:
            self._remaining -= 1
        return self._fault


class _NextExports(_Rule):
    def __init__(self, count: int, fault: Fault) -> None:
        self._remaining = count
        self._fault = fault

    def fault_for(self, request: RequestInfo) -> Fault | None:
        if request.export_index is None or self._remaining <= 0:
            return None
        self._remaining -= 1
        return self._fault


class _FromIndex(_Rule):
    def __init__(self, first: int, fault: Fault) -> None:
        self._first = first
        self._fault = fault

    def fault_for(self, request: RequestInfo) -> Fault | None:
        return self._fault if request.index >= self._first else None


class _Random(_Rule):
    def __init__(
        self, seed: int, probability: float, faults: Sequence[Fault], scope: Scope
    ) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        if not faults:
            raise ValueError("a random fault plan needs at least one fault to draw from")
        self._rng = random.Random(seed)
        self._probability = probability
        self._faults = tuple(faults)
        self._scope = scope

    def fault_for(self, request: RequestInfo) -> Fault | None:
        if _scoped_index(request, self._scope) is None:
            return None
        # two draws per eligible request whatever the outcome, so a seed replays identically
        hit = self._rng.random() < self._probability
        fault = self._rng.choice(self._faults)
        return fault if hit else None


class FaultPlan:
    """An ordered list of fault rules; thread-safe, and extendable while the server runs."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    @classmethod
    def on_export_requests(cls, faults: Mapping[int, Fault]) -> FaultPlan:
        """Faults keyed by export request number (1 = the first export request)."""
        return cls().add_export_faults(faults)

    @classmethod
    def on_requests(cls, faults: Mapping[int, Fault]) -> FaultPlan:
        """Faults keyed by request number over all paths (1 = the first request)."""
        return cls().add_request_faults(faults)

    @classmethod
    def seeded(
        cls,
        seed: int,
        *,
        probability: float,
        faults: Sequence[Fault] = RETRYABLE_FAULTS,
        exports_only: bool = True,
    ) -> FaultPlan:
        """Each (export) request fails with `probability`, the fault drawn from `faults`."""
        return cls().add_random(
            seed, probability=probability, faults=faults, exports_only=exports_only
        )

    @classmethod
    def on_write_requests(cls, faults: Mapping[int, Fault]) -> FaultPlan:
        """Faults keyed by write request number (PATCH / POST / DELETE; 1 = the first)."""
        return cls().add_write_faults(faults)

    def _add(self, rule: _Rule) -> FaultPlan:
        with self._lock:
            self._rules.append(rule)
        return self

    def add_export_faults(self, faults: Mapping[int, Fault]) -> FaultPlan:
        return self._add(_ByIndex(faults, scope="exports"))

    def add_request_faults(self, faults: Mapping[int, Fault]) -> FaultPlan:
        return self._add(_ByIndex(faults, scope="all"))

    def add_write_faults(self, faults: Mapping[int, Fault]) -> FaultPlan:
        return self._add(_ByIndex(faults, scope="writes"))

    def add_random_writes(
        self, seed: int, *, probability: float, faults: Sequence[Fault] = RETRYABLE_FAULTS
    ) -> FaultPlan:
        """Each write request (PATCH / POST / DELETE) fails with `probability`."""
        return self._add(_Random(seed, probability, faults, "writes"))

    def add_path_fault(self, path: str, fault: Fault, *, times: int | None = 1) -> FaultPlan:
        """`fault` on the next `times` requests to `path` (None: on all of them)."""
        return self._add(_ByPath(path, fault, times))

    def fail_next_exports(self, count: int, fault: Fault) -> FaultPlan:
        """`fault` on the next `count` export requests from now on."""
        return self._add(_NextExports(count, fault))

    def revoke_token_from(self, request_number: int) -> FaultPlan:
        """401 "Invalid token." on request `request_number` and every later one."""
        return self._add(_FromIndex(request_number, Fault.revoked()))

    def add_random(
        self,
        seed: int,
        *,
        probability: float,
        faults: Sequence[Fault] = RETRYABLE_FAULTS,
        exports_only: bool = True,
    ) -> FaultPlan:
        return self._add(_Random(seed, probability, faults, "exports" if exports_only else "all"))

    def fault_for(self, request: RequestInfo) -> Fault | None:
        """The fault for this request, consuming one use of a counted rule."""
        with self._lock:
            for rule in self._rules:
                fault = rule.fault_for(request)
                if fault is not None:
                    return fault
            return None


THROTTLE_RATES: Mapping[str, int] = {"default": 240, "highlight_list": 20, "book_list": 20}


class SlidingWindowThrottle:
    """DRF's SimpleRateThrottle: per (token, scope) request history over a sliding window."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        window_seconds: float = 60.0,
        rates: Mapping[str, int] = THROTTLE_RATES,
    ) -> None:
        self._clock = clock
        self._window = window_seconds
        self._rates = dict(rates)
        self._history: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, token: str, scope: str) -> int | None:
        """None if the request may go ahead (and is recorded); else Retry-After seconds."""
        limit = self._rates[scope]
        with self._lock:
            now = self._clock()
            history = self._history.setdefault((token, scope), [])  # newest first, as in DRF
            while history and history[-1] <= now - self._window:
                history.pop()
            if len(history) < limit:
                history.insert(0, now)
                return None
            remaining = self._window - (now - history[-1])
            available = limit - len(history) + 1
            return max(0, math.ceil(remaining / available))
