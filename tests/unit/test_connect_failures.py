"""Readwise out of reach while someone waits at a terminal (`syncd check`, `--once` on a TTY):
the answer comes within ~10 s and names the cause in words; the daemon keeps its back-off.
Failures come from an injected transport or a closed port on 127.0.0.1, never the network."""

from __future__ import annotations

import random
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from syncd import cli
from syncd.errors import ReadwiseUnavailable
from syncd.sources.neterrors import describe_connect_failure
from syncd.sources.readwise import (
    AUTH_PATH,
    INTERACTIVE_CONNECT_ATTEMPTS,
    INTERACTIVE_CONNECT_TIMEOUT,
    ReadwiseClient,
    RetryPolicy,
    interactive_policy,
)

TOKEN = "rwTestToken0123456789abcdefghijklmnopqrstuvwxyzAB"
BASE_URL = "http://127.0.0.1:8741"


def _refused() -> httpx.ConnectError:
    error = httpx.ConnectError("[Errno 111] Connection refused")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


def _unresolved() -> httpx.ConnectError:
    error = httpx.ConnectError("[Errno -2] Name or service not known")
    error.__cause__ = socket.gaierror(-2, "Name or service not known")
    return error


def _tls() -> httpx.ConnectError:
    error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    error.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    return error


FAILURES: dict[str, tuple[Callable[[], Exception], str]] = {
    "refused": (_refused, "connection refused by 127.0.0.1:8741"),
    "unresolved": (_unresolved, "the name 127.0.0.1 could not be resolved"),
    "timeout": (lambda: httpx.ConnectTimeout("timed out"), "timed out connecting to"),
    "tls": (_tls, "TLS failure talking to 127.0.0.1:8741"),
    "proxy": (lambda: httpx.ProxyError("502 Bad Gateway"), "the proxy failed to connect"),
}


def _client(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float], *, quick: bool
) -> ReadwiseClient:
    retry = RetryPolicy()
    return ReadwiseClient(
        httpx.Client(transport=httpx.MockTransport(handler)),
        token=TOKEN,
        base_url=BASE_URL,
        retry=retry,
        first_retry=interactive_policy(retry) if quick else None,
        sleep=sleeps.append,
        rng=random.Random(7),
    )


def _failing(failure: Callable[[], Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure()

    return handler


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_at_a_terminal_an_unreachable_readwise_is_named_within_ten_seconds(kind: str) -> None:
    failure, words = FAILURES[kind]
    sleeps: list[float] = []
    with pytest.raises(ReadwiseUnavailable) as caught:
        _client(_failing(failure), sleeps, quick=True).check_token()
    error = caught.value
    assert error.attempts == INTERACTIVE_CONNECT_ATTEMPTS
    assert words in str(error)
    assert TOKEN not in str(error)
    # The worst case: every attempt waits its whole connect timeout, plus every back-off.
    worst = sum(sleeps) + INTERACTIVE_CONNECT_ATTEMPTS * INTERACTIVE_CONNECT_TIMEOUT
    assert worst <= 10.0


def test_the_daemon_keeps_its_patient_back_off() -> None:
    sleeps: list[float] = []
    with pytest.raises(ReadwiseUnavailable) as caught:
        _client(_failing(_refused), sleeps, quick=False).check_token()
    assert caught.value.attempts == RetryPolicy().max_attempts == 8
    assert sum(sleeps) > 30
    assert "connection refused" in str(caught.value)


def test_after_readwise_answered_once_the_rest_of_the_pass_is_patient() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == AUTH_PATH:
            return httpx.Response(204)
        if len(calls) <= 5:  # the network drops for four attempts mid-pass
            raise _refused()
        return httpx.Response(200, json={"count": 0, "nextPageCursor": None, "results": []})

    client = _client(handler, [], quick=True)
    client.check_token()
    assert client.export(updated_after=None).books == {}
    assert len(calls) == 6


def test_words_for_an_unknown_failure_still_name_the_host() -> None:
    assert "could not connect to h:1" in describe_connect_failure(httpx.ConnectError("?"), "h:1")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_check_against_a_closed_local_port_exits_4_naming_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[readwise]\ntoken = "{TOKEN}"\nbase_url = "http://127.0.0.1:{_closed_port()}"\n'
        f'[state]\ndir = "{(tmp_path / "state").as_posix()}"\n'
        f'[[targets]]\nname = "main"\nformat = "obsidian"\nvault = "{vault.as_posix()}"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    code = cli.main(["check", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 4
    assert "connection refused by 127.0.0.1:" in err
    assert f"after {INTERACTIVE_CONNECT_ATTEMPTS} attempts" in err
    assert TOKEN not in err


def test_at_a_terminal_retries_are_not_warnings_each() -> None:
    with capture_logs() as quick, pytest.raises(ReadwiseUnavailable):
        _client(_failing(_refused), [], quick=True).check_token()
    with capture_logs() as patient, pytest.raises(ReadwiseUnavailable):
        _client(_failing(_refused), [], quick=False).check_token()
    assert [e["log_level"] for e in quick if e["event"] == "readwise.retry"] == ["info"] * 2
    assert {e["log_level"] for e in patient if e["event"] == "readwise.retry"} == {"warning"}
