"""A pytest plugin: any connection outside loopback fails the test that attempted it.

Activate it with `pytest_plugins = ["tests.network_guard"]` in the root conftest (or
`-p tests.network_guard`). From session start it wraps `socket.socket.connect`/`connect_ex`,
`socket.create_connection` and `socket.getaddrinfo`: an address outside 127.0.0.0/8 and ::1,
or a host name that is not loopback, is refused at once (a `NetworkBlocked`, which is an
OSError, so the code under test fails fast as if the host were unreachable) and recorded.
Recording matters because SDKs swallow connection errors (a credential chain reports
"unavailable" and moves on): the test that made the attempt fails even then.

Names under the reserved `.invalid`, `.test` and `.example` domains (RFC 2606/6761) fail to
resolve without counting as an attempt: they can never name a real host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Generator, Iterator
from typing import Any

import pytest

RESERVED_SUFFIXES = (".invalid", ".test", ".example")

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_create_connection = socket.create_connection
_real_getaddrinfo = socket.getaddrinfo

_lock = threading.Lock()
_violations: list[str] = []
_installed = False


class NetworkBlocked(ConnectionRefusedError):
    """Raised instead of connecting (or resolving) outside loopback."""


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost` names."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _record(what: str) -> NetworkBlocked:
    with _lock:
        _violations.append(what)
    return NetworkBlocked(f"network guard: {what} (tests may only contact loopback)")


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # Unix sockets and the like never leave the machine
    host = str(address[0]) if isinstance(address, tuple) and address else str(address)
    if not is_loopback_host(host):
        raise _record(f"connect to {host}:{address[1] if isinstance(address, tuple) else '?'}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


def _guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    host = str(address[0])
    if not is_loopback_host(host):
        raise _record(f"connect to {host}:{address[1]}")
    return _real_create_connection(address, *args, **kwargs)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is None or isinstance(host, bytes | bytearray):
        name = host.decode() if isinstance(host, bytes | bytearray) else None
    else:
        name = str(host)
    if name is None or _is_ip_literal(name) or is_loopback_host(name):
        return _real_getaddrinfo(host, *args, **kwargs)  # literals are checked at connect
    if name.lower().rstrip(".").endswith(RESERVED_SUFFIXES):
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: reserved name, never resolved")
    _record(f"lookup of {name}")
    raise socket.gaierror(socket.EAI_NONAME, f"network guard: lookup of {name} refused")


def install() -> None:
    """Wrap the socket functions (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
        socket.create_connection = _guarded_create_connection
        socket.getaddrinfo = _guarded_getaddrinfo
        _installed = True


def uninstall() -> None:
    global _installed
    with _lock:
        socket.socket.connect = _real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
        socket.create_connection = _real_create_connection
        socket.getaddrinfo = _real_getaddrinfo
        _installed = False


def is_installed() -> bool:
    return _installed


def take_violations() -> list[str]:
    """The attempts recorded since the last call, cleared."""
    with _lock:
        taken = list(_violations)
        _violations.clear()
    return taken


@contextlib.contextmanager
def expect_blocked() -> Iterator[list[str]]:
    """For the guard's own tests: install it, and hand over (not fail on) what is blocked."""
    was_installed = is_installed()
    install()
    before = take_violations()
    caught: list[str] = []
    try:
        yield caught
    finally:
        caught.extend(take_violations())
        with _lock:
            _violations.extend(before)
        if not was_installed:
            uninstall()


def _fail_on_violations(phase: str) -> Generator[None, Any, Any]:
    take_violations()  # what happened between tests belongs to no test
    try:
        result = yield
    except BaseException as exc:
        found = take_violations()
        if found:
            exc.add_note(f"network guard ({phase}): " + "; ".join(found))
        raise
    found = take_violations()
    if found:
        pytest.fail(f"network guard ({phase}): " + "; ".join(found), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _fail_on_violations("setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _fail_on_violations("call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, Any, Any]:
    return (yield from _fail_on_violations("teardown"))


def pytest_sessionstart(session: pytest.Session) -> None:
    install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    uninstall()
