"""Logging output: JSON lines or console, levels, and the token never printed anywhere."""

from __future__ import annotations

import io
import json
import logging
import random
import traceback
from collections.abc import Iterator

import httpx
import pytest
import respx
import structlog

from syncd import log
from syncd.errors import SyncdError
from syncd.log import add_secret, configure_logging, get_logger
from syncd.sources.readwise import AUTH_PATH, EXPORT_PATH, ReadwiseClient, RetryPolicy

TOKEN = "rwLogTestToken9876543210zyxwvutsrqponmlkjihgfedcb"
BASE_URL = "http://127.0.0.1:8742"


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def isolated_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from no secrets and gets root logging and structlog back afterwards."""
    monkeypatch.setattr(log, "_secrets", set())
    monkeypatch.delenv("NO_COLOR", raising=False)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_library_levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    saved_installed = log._installed_handler
    yield
    # Plain assignment: monkeypatch would put back the handler this test installed, which is no
    # longer on the root logger, and the restored one would be orphaned for good.
    log._installed_handler = saved_installed
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_library_levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()


def json_lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


# --- format and levels ----------------------------------------------------------------------


def test_non_terminal_stream_gets_json_lines() -> None:
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    get_logger("syncd.test").info("pass.done", written=3, target="vault")
    (line,) = json_lines(buffer)
    assert line["event"] == "pass.done"
    assert line["written"] == 3
    assert line["level"] == "info"
    assert line["logger"] == "syncd.test"
    assert isinstance(line["timestamp"], str) and line["timestamp"].endswith("Z")


def test_terminal_stream_gets_coloured_console_lines() -> None:
    stream = TerminalStream()
    configure_logging(stream=stream)
    get_logger("syncd.test").info("pass.done", written=3)
    output = stream.getvalue()
    assert "pass.done" in output and "written" in output
    assert "\x1b[" in output  # ANSI colour
    with pytest.raises(json.JSONDecodeError):
        json.loads(output)


def test_no_color_turns_colour_off_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    stream = TerminalStream()
    configure_logging(stream=stream)
    get_logger("syncd.test").info("pass.done")
    assert "pass.done" in stream.getvalue() and "\x1b[" not in stream.getvalue()


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [(-1, ["warning"]), (0, ["info", "warning"]), (1, ["debug", "info", "warning"])],
)
def test_verbosity_sets_the_level(verbosity: int, shown: list[str]) -> None:
    buffer = io.StringIO()
    configure_logging(stream=buffer, verbosity=verbosity)
    logger = get_logger("syncd.test")
    logger.debug("debug")
    logger.info("info")
    logger.warning("warning")
    assert [line["event"] for line in json_lines(buffer)] == shown


def test_reconfiguring_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    get_logger("syncd.test").info("once")
    assert first.getvalue() == ""
    assert len(json_lines(second)) == 1


@pytest.mark.parametrize(("verbosity", "enabled"), [(0, False), (1, False), (2, True)])
def test_http_libraries_stay_quiet_below_vv(verbosity: int, enabled: bool) -> None:
    configure_logging(stream=io.StringIO(), verbosity=verbosity)
    for name in ("httpx", "httpcore"):
        assert logging.getLogger(name).isEnabledFor(logging.INFO) is enabled


# --- redaction ------------------------------------------------------------------------------


def log_token_everywhere() -> None:
    logger = get_logger("syncd.test")
    logger.info(
        f"event mentioning {TOKEN}",
        plain=TOKEN,
        nested={"deeper": [f"prefix-{TOKEN}-suffix", (TOKEN,)]},
        as_bytes=TOKEN.encode(),
        error=ValueError(f"bad token {TOKEN}"),
    )


@pytest.mark.parametrize("json_output", [True, False], ids=["json", "console"])
def test_registered_secret_is_redacted_from_every_value(json_output: bool) -> None:
    buffer = io.StringIO()
    configure_logging(stream=buffer, json_lines=json_output, secrets=[TOKEN])
    log_token_everywhere()
    output = buffer.getvalue()
    assert TOKEN not in output
    assert output.count("[REDACTED]") >= 5
    if json_output:
        (line,) = json_lines(buffer)
        assert line["plain"] == "[REDACTED]"
        assert line["nested"] == {"deeper": ["prefix-[REDACTED]-suffix", ["[REDACTED]"]]}


def test_secret_added_after_configuration_is_redacted() -> None:
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    add_secret(TOKEN + "\n")  # as read from a file, newline and all
    log_token_everywhere()
    assert TOKEN not in buffer.getvalue()


@pytest.mark.parametrize("json_output", [True, False], ids=["json", "console"])
def test_traceback_logged_with_exc_info_is_redacted(json_output: bool) -> None:
    buffer = io.StringIO()
    configure_logging(stream=buffer, json_lines=json_output, secrets=[TOKEN])
    logger = get_logger("syncd.test")
    try:
        try:
            raise KeyError(TOKEN)
        except KeyError as inner:
            raise RuntimeError(f"request with Token {TOKEN} failed") from inner
    except RuntimeError:
        logger.exception("pass.failed")
        logger.error("pass.failed.again", exc_info=True)
    output = buffer.getvalue()
    assert output.count("Traceback (most recent call last)") >= 2
    assert "RuntimeError" in output and "KeyError" in output
    assert TOKEN not in output


def test_authorization_values_are_redacted_without_registration() -> None:
    unregistered = "someOtherKey1234567890abcdef"
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    logger = get_logger("syncd.test")
    logger.info("headers", headers={"Authorization": f"Token {unregistered}", "Accept": "x"})
    logger.info("line", text=f"Authorization: Token {unregistered}")
    logger.info("raw", text=f"[(b'Authorization', b'Token {unregistered}')]")
    logger.info("bare", text=f"sent Token {unregistered} upstream")
    logger.info("harmless", text="Token rejected: check the token")
    lines = json_lines(buffer)
    assert unregistered not in buffer.getvalue()
    assert lines[0]["headers"] == {"Authorization": "[REDACTED]", "Accept": "x"}
    assert lines[1]["text"] == "Authorization: Token [REDACTED]"
    assert lines[4]["text"] == "Token rejected: check the token"


def test_stdlib_records_are_redacted_too() -> None:
    buffer = io.StringIO()
    configure_logging(stream=buffer, secrets=[TOKEN])
    library = logging.getLogger("some.library")
    library.warning("sending %s", {"Authorization": f"Token {TOKEN}"})
    try:
        raise OSError(f"socket said {TOKEN}")
    except OSError:
        library.exception("send failed")
    output = buffer.getvalue()
    assert "sending" in output and "send failed" in output and "OSError" in output
    assert TOKEN not in output


# --- a real client, failing in every way, never shows the token -------------------------------


def failing_client(http: httpx.Client) -> ReadwiseClient:
    return ReadwiseClient(
        http,
        token=TOKEN,
        base_url=BASE_URL,
        retry=RetryPolicy(max_attempts=3),
        sleep=lambda seconds: None,
        rng=random.Random(5),
    )


@pytest.mark.parametrize("json_output", [True, False], ids=["json", "console"])
def test_failing_client_never_shows_the_token(json_output: bool) -> None:
    buffer = io.StringIO()
    # -vv: httpx and httpcore log their request lines too. No secrets registered up front:
    # the client registers its own token.
    configure_logging(stream=buffer, json_lines=json_output, verbosity=2)
    router = respx.Router(base_url=BASE_URL, assert_all_called=False)
    router.get(AUTH_PATH).mock(
        side_effect=[httpx.Response(429), httpx.ReadError("reset"), httpx.Response(401)]
    )
    export = router.get(EXPORT_PATH)
    logger = get_logger("syncd.test")
    errors: list[SyncdError] = []
    with httpx.Client(transport=httpx.MockTransport(router.handler)) as http:
        client = failing_client(http)
        cases: list[httpx.Response | Exception] = [
            httpx.Response(503),
            httpx.ConnectError("[Errno 111] Connection refused"),
            httpx.Response(200, html=f"<p>portal for Token {TOKEN}</p>"),
            httpx.Response(400, text=f"Authorization: Token {TOKEN} is malformed"),
            httpx.Response(403, json={"detail": f"token {TOKEN} revoked"}),
        ]
        with pytest.raises(SyncdError) as rejected:
            client.check_token()
        errors.append(rejected.value)
        for case in cases:
            export.mock(side_effect=[case] * 3)
            with pytest.raises(SyncdError) as caught:
                client.export(updated_after=None)
            errors.append(caught.value)
            logger.error("pass.failed", exc_info=caught.value)

    assert len(errors) == 6
    output = buffer.getvalue()
    assert "readwise.retry" in output
    assert "HTTP Request" in output  # httpx's own request line made it through, redacted
    assert "Traceback" in output
    assert TOKEN not in output
    for error in errors:
        assert TOKEN not in str(error)
        assert TOKEN not in "".join(traceback.format_exception(error))
