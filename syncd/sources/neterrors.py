"""A failed connection, said in words a person can act on: the name did not resolve, nothing
listens there, it timed out, TLS failed, the proxy failed. httpx keeps the operating system's
error at the end of the exception chain; this walks the chain and names the first it knows."""

from __future__ import annotations

import errno
import socket
import ssl

import httpx

# The exceptions that mean "no connection was made" (as opposed to a reply cut short).
CONNECT_FAILURES: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ProxyError,
)

_UNRESOLVED_TEXT = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "no address associated",
    "getaddrinfo failed",
)
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def describe_connect_failure(exc: BaseException, host: str) -> str:
    """What went wrong reaching `host` (host or host:port), in words."""
    chain = _chain(exc)
    text = " ".join(str(item) for item in chain).lower()
    if any(isinstance(item, httpx.ProxyError) for item in chain):
        return f"the proxy failed to connect to {host} (check HTTPS_PROXY / HTTP_PROXY)"
    if any(isinstance(item, socket.gaierror) for item in chain) or any(
        phrase in text for phrase in _UNRESOLVED_TEXT
    ):
        return f"the name {host.rsplit(':', 1)[0]} could not be resolved (no network, or DNS down)"
    if any(isinstance(item, ConnectionRefusedError) for item in chain) or "refused" in text:
        return f"connection refused by {host} (nothing listens there: check base_url)"
    if any(isinstance(item, ssl.SSLError) for item in chain) or "certificate" in text:
        return (
            f"TLS failure talking to {host} (a proxy or captive portal in the way,"
            " or the clock far off)"
        )
    if any(isinstance(item, httpx.TimeoutException | TimeoutError) for item in chain):
        return f"timed out connecting to {host} (no network, or a firewall drops the traffic)"
    if any(isinstance(item, OSError) and item.errno in _UNREACHABLE for item in chain):
        return f"network unreachable on the way to {host} (no network?)"
    return f"could not connect to {host} ({type(exc).__name__})"
