"""The stand-in Readwise API over real HTTP on 127.0.0.1 (api.md §1-§3, §9).

Routes, each with or without a trailing slash:

- `GET /api/v2/auth/`: 204 for the right token, else 401 with DRF's body and
  `WWW-Authenticate: Token`.
- `GET /api/v2/export/`: `updatedAfter`, `includeDeleted`, `pageCursor`, `ids` as api.md §3
  describes; pages of whole books in descending `user_book_id`, up to `page_highlights`
  highlights (one larger book still goes whole); `nextPageCursor` = last id on the page.
- `/api/v2/highlights/<id>/` (GET, PATCH) and its `tags` routes (GET, POST, DELETE): see
  `syncd.standin.writes`. Every injected fault applies to them as to the export.

Order of checks per request: URL length (414), injected fault, authentication (401), rate limit
(429), route (404 HTML / 405), parameters (400), answer.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal, NamedTuple
from urllib.parse import parse_qs, urlsplit

from syncd.standin.faults import (
    Fault,
    FaultPlan,
    RequestInfo,
    SlidingWindowThrottle,
    normalise_path,
)
from syncd.standin.library import Library, TimestampStyle, dump_json
from syncd.standin.writes import answer_write, is_highlight_route

AUTH_PATH = "/api/v2/auth"
EXPORT_PATH = "/api/v2/export"
_TRUE_WORDS = frozenset({"true", "1", "yes"})
_NOT_FOUND_PAGE = (
    '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n'
    "<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    "</body>\n</html>\n"
)
_URI_TOO_LONG_PAGE = (
    "<html>\r\n<head><title>414 Request-URI Too Large</title></head>\r\n<body>\r\n"
    "<center><h1>414 Request-URI Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class Quirks:
    """Switches for the behaviours api.md §9 leaves uncertain; defaults are the fake's."""

    cursor_type: Literal["int", "str"] = "int"
    page_highlights: int = 1000
    book_meta_in_incremental: bool = False
    tag_change_bumps_updated: bool = True
    timestamp_style: TimestampStyle = "ms"
    max_url_length: int = 8192
    rate_limit: bool = False

    def __post_init__(self) -> None:
        if self.cursor_type not in ("int", "str"):
            raise ValueError(f"Quirks.cursor_type must be 'int' or 'str', got {self.cursor_type!r}")
        if self.timestamp_style not in ("ms", "us"):
            raise ValueError(
                f"Quirks.timestamp_style must be 'ms' or 'us', got {self.timestamp_style!r}"
            )
        if self.page_highlights < 1:
            raise ValueError(f"Quirks.page_highlights must be >= 1, got {self.page_highlights}")
        if self.max_url_length < 64:
            raise ValueError(f"Quirks.max_url_length must be >= 64, got {self.max_url_length}")


class RequestRecord(NamedTuple):
    """One served request: query values are decoded, the last one per name (as Django reads)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: str = ""  # the request body as sent (PATCH / POST), decoded as UTF-8


class FiredFault(NamedTuple):
    request_index: int
    kind: str


Transport = Literal["normal", "reset", "truncate"]


@dataclass(slots=True)
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    transport: Transport = "normal"
    fraction: float = 1.0
    delay: float = 0.0


def _json(status: int, body: object, *headers: tuple[str, str]) -> _Response:
    return _Response(status, dump_json(body).encode(), headers=list(headers))


def _html(status: int, page: str) -> _Response:
    return _Response(status, page.encode(), content_type="text/html; charset=utf-8")


@dataclass(frozen=True, slots=True)
class ExportQuery:
    updated_after: datetime | None
    include_deleted: bool
    cursor: int | None
    ids: frozenset[int] | None


def parse_updated_after(raw: str) -> datetime | None:
    """Django's ISO 8601 reading: naive means UTC. None for a value it rejects."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_export_query(params: dict[str, str]) -> ExportQuery | dict[str, list[str]]:
    """The export filters, or DRF-style field errors (all of them, as DRF reports)."""
    errors: dict[str, list[str]] = {}
    updated_after: datetime | None = None
    raw = params.get("updatedAfter", "")
    if raw:
        updated_after = parse_updated_after(raw)
        if updated_after is None:
            errors["updatedAfter"] = ["Enter a valid date/time."]
    cursor: int | None = None
    raw = params.get("pageCursor", "")
    if raw:
        try:
            cursor = int(raw)
        except ValueError:
            errors["pageCursor"] = ["A valid integer is required."]
    ids: frozenset[int] | None = None
    raw = params.get("ids", "")
    if raw:
        try:
            ids = frozenset(int(part) for part in raw.split(",") if part.strip())
        except ValueError:
            errors["ids"] = ["Enter a whole number."]
    if errors:
        return errors
    include_deleted = params.get("includeDeleted", "").strip().lower() in _TRUE_WORDS
    return ExportQuery(updated_after, include_deleted, cursor, ids)


@dataclass(frozen=True, slots=True)
class ExportPage:
    count: int
    next_cursor: int | None
    books: list[str]  # JSON text of each book


def build_export_page(library: Library, query: ExportQuery, quirks: Quirks) -> ExportPage:
    """One export page under the current filters; see api.md §3.3-§3.4 [fake]."""
    bumps = quirks.tag_change_bumps_updated
    after = query.updated_after
    with library.lock:
        matching: list[int] = []
        for book_id in library.book_ids_below(query.cursor):
            if query.ids is not None and book_id not in query.ids:
                continue
            book = library.book(book_id)
            if book.is_deleted and not query.include_deleted:
                continue
            newest = library.summary(book_id).newest(
                tag_change_bumps=bumps, include_deleted=query.include_deleted
            )
            if newest is None:
                continue  # nothing of this book is visible under these filters
            meta_changed = (
                quirks.book_meta_in_incremental and after is not None and book.updated_at > after
            )
            if after is None or newest > after or meta_changed:
                matching.append(book_id)
        books: list[str] = []
        shown = 0
        for book_id in matching:
            highlights = [
                h
                for h in library.highlights_in(book_id)
                if (query.include_deleted or not h.is_deleted)
                and (after is None or h.exported_updated_at(tag_change_bumps=bumps) > after)
            ]
            if books and shown + len(highlights) > quirks.page_highlights:
                break
            fragments = ",".join(
                library.highlight_fragment(h, style=quirks.timestamp_style, tag_change_bumps=bumps)
                for h in highlights
            )
            books.append(library.book_prefix(book_id) + fragments + "]}")
            shown += len(highlights)
        next_cursor = matching[len(books) - 1] if len(books) < len(matching) else None
        return ExportPage(len(matching), next_cursor, books)


def _cursor_json(cursor: int | str | None, quirks: Quirks) -> str:
    if cursor is None:
        return "null"
    return dump_json(str(cursor)) if quirks.cursor_type == "str" else str(int(cursor))


def authenticate(header: str | None, token: str) -> str | None:
    """DRF TokenAuthentication: None if valid, else the 401 `detail` text."""
    parts = (header or "").split()
    if not parts or parts[0].lower() != "token":
        return "Authentication credentials were not provided."
    if len(parts) == 1:
        return "Invalid token header. No credentials provided."
    if len(parts) > 2:
        return "Invalid token header. Token string should not contain spaces."
    if not hmac.compare_digest(parts[1].encode(), token.encode()):
        return "Invalid token."
    return None


def _unauthorized(detail: str) -> _Response:
    return _json(401, {"detail": detail}, ("WWW-Authenticate", "Token"))


def _throttled(wait: int, header: str | None = None) -> _Response:
    unit = "second" if wait == 1 else "seconds"
    detail = f"Request was throttled. Expected available in {wait} {unit}."
    response = _json(429, {"detail": detail})
    if header is not None:
        response.headers.append(("Retry-After", header))
    return response


class _App:
    """Transport-free request handling: target + headers in, a `_Response` out."""

    def __init__(
        self,
        library: Library,
        token: str,
        quirks: Quirks,
        faults: FaultPlan,
        throttle: SlidingWindowThrottle,
    ) -> None:
        self.library = library
        self.token = token
        self.quirks = quirks
        self.faults = faults
        self.throttle = throttle
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._fired: list[FiredFault] = []
        self._errors: list[str] = []
        self._request_count = 0
        self._export_count = 0
        self._write_count = 0

    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def fired(self) -> list[FiredFault]:
        with self._lock:
            return list(self._fired)

    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def handle(
        self,
        method: str,
        target: str,
        authorization: str | None,
        body: bytes = b"",
        content_type: str = "",
    ) -> _Response:
        split = urlsplit(target)
        path = normalise_path(split.path)
        params = {name: values[-1] for name, values in parse_qs(split.query, True).items()}
        with self._lock:
            self._request_count += 1
            export_index: int | None = None
            write_index: int | None = None
            if path == EXPORT_PATH:
                self._export_count += 1
                export_index = self._export_count
            if method in ("PATCH", "POST", "DELETE"):
                self._write_count += 1
                write_index = self._write_count
            info = RequestInfo(self._request_count, export_index, method, path, write_index)
        try:
            response = self._respond(info, target, params, authorization, body, content_type)
        except Exception as exc:  # a bug here or in a test's callback: make it visible
            problem = f"request {info.index} {method} {split.path}: {exc!r}"
            with self._lock:
                self._errors.append(problem)
            response = _Response(500, problem.encode(), content_type="text/plain; charset=utf-8")
        with self._lock:
            self._requests.append(
                RequestRecord(
                    method, split.path, params, response.status, body.decode("utf-8", "replace")
                )
            )
        return response

    def _respond(
        self,
        info: RequestInfo,
        target: str,
        params: dict[str, str],
        authorization: str | None,
        body: bytes = b"",
        content_type: str = "",
    ) -> _Response:
        if len(target.encode()) > self.quirks.max_url_length:
            return _html(414, _URI_TOO_LONG_PAGE)
        fault = self.faults.fault_for(info)
        if fault is not None:
            with self._lock:
                self._fired.append(FiredFault(info.index, fault.kind))
            early = self._early_fault(fault)
            if early is not None:
                return early
        response = self._route(info, params, authorization, fault, body, content_type)
        if fault is not None and fault.kind in ("reset", "truncate"):
            response.transport = fault.kind
            response.fraction = fault.fraction
        if fault is not None and fault.kind == "delay":
            response.delay = fault.seconds
        return response

    def _early_fault(self, fault: Fault) -> _Response | None:
        """Faults that answer instead of the API; None for those that alter its answer."""
        if fault.kind == "status":
            return _html(fault.code, fault.body)
        if fault.kind == "captive_portal":
            return _html(200, fault.body)
        if fault.kind == "revoked":
            return _unauthorized("Invalid token.")
        if fault.kind == "throttle":
            header = fault.retry_after
            if fault.retry_after_date_seconds is not None:
                moment = datetime.now(UTC) + timedelta(seconds=fault.retry_after_date_seconds)
                header = format_datetime(moment, usegmt=True)
            seconds = fault.retry_after or ""
            wait = int(seconds) if seconds.isdigit() else 1
            return _throttled(wait, header)
        if fault.kind == "run" and fault.callback is not None:
            fault.callback()
        return None

    def _route(
        self,
        info: RequestInfo,
        params: dict[str, str],
        authorization: str | None,
        fault: Fault | None,
        body: bytes = b"",
        content_type: str = "",
    ) -> _Response:
        writes = is_highlight_route(info.path)
        if info.path not in (AUTH_PATH, EXPORT_PATH) and not writes:
            return _html(404, _NOT_FOUND_PAGE)
        problem = authenticate(authorization, self.token)
        if problem is not None:
            return _unauthorized(problem)
        if self.quirks.rate_limit:
            wait = self.throttle.wait_for(self.token, "default")
            if wait is not None:
                return _throttled(wait, str(wait))
        if writes:
            answer = answer_write(self.library, info.method, info.path, body, content_type)
            if answer.body is None:
                return _Response(answer.status)
            return _json(answer.status, answer.body)
        if info.method != "GET":
            return _json(405, {"detail": f'Method "{info.method}" not allowed.'})
        if info.path == AUTH_PATH:
            return _Response(204)
        return self._export(params, fault)

    def _export(self, params: dict[str, str], fault: Fault | None) -> _Response:
        query = parse_export_query(params)
        if isinstance(query, dict):
            return _json(400, query)
        kind = fault.kind if fault is not None else None
        if kind == "empty_page":
            return _json(200, {"count": 0, "nextPageCursor": None, "results": []})
        page = build_export_page(self.library, query, self.quirks)
        cursor: int | None = page.next_cursor
        if kind == "repeat_cursor" and query.cursor is not None:
            cursor = query.cursor
        body = (
            f'{{"count":{page.count},"nextPageCursor":{_cursor_json(cursor, self.quirks)},'
            f'"results":[{",".join(page.books)}]}}'
        )
        return _Response(200, body.encode())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx pools connections
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def version_string(self) -> str:
        return "nginx"  # what sits in front of the real API; no Python version leaks

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header follows the library's clock: it is the server's time."""
        return format_datetime(self.server.app.library.clock_reading(), usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the request log lives in StandinServer.requests."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        app = self.server.app
        response = app.handle(
            self.command,
            self.path,
            self.headers.get("Authorization"),
            body,
            self.headers.get("Content-Type") or "",
        )
        if response.delay and app.stopping.wait(response.delay):
            self.close_connection = True
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._write(response)

    def _write(self, response: _Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.transport == "normal":
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: int(len(response.body) * response.fraction)])
        self.close_connection = True
        if response.transport == "reset":
            self.wfile.flush()
            # SO_LINGER 0 + close: the kernel answers with RST instead of an orderly FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, app: _App, port: int) -> None:
        self.app = app
        super().__init__(("127.0.0.1", port), _Handler)


class StandinServer:
    """A running stand-in: `with StandinServer(library, token="t") as server: server.base_url`."""

    def __init__(
        self,
        library: Library,
        *,
        token: str,
        quirks: Quirks | None = None,
        faults: FaultPlan | None = None,
        port: int = 0,
        throttle_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`port` 0 picks a free port; `throttle_clock` drives the rate limiter's window."""
        if not token or any(ch.isspace() for ch in token):
            raise ValueError("the stand-in token must be non-empty and contain no whitespace")
        self.library = library
        self.quirks = quirks or Quirks()
        self.faults = faults or FaultPlan()
        throttle = SlidingWindowThrottle(clock=throttle_clock)
        self._app = _App(library, token, self.quirks, self.faults, throttle)
        self._port = port
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in server is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far, in order (a copy)."""
        return self._app.requests()

    @property
    def errors(self) -> list[str]:
        """Exceptions raised while handling requests (answered with a plain-text 500)."""
        return self._app.errors()

    @property
    def fired_faults(self) -> list[FiredFault]:
        """Every injected fault so far with the number of the request it hit."""
        return self._app.fired()

    def start(self) -> str:
        """Bind a free port on 127.0.0.1, serve in a thread, return the base URL."""
        if self._server is not None:
            raise RuntimeError("the stand-in server is already running")
        self._app.stopping.clear()
        self._server = _HTTPServer(self._app, self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="standin-readwise",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close the socket; injected delays end at once."""
        if self._server is None:
            return
        self._app.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> StandinServer:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
