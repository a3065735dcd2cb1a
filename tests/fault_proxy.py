"""A loopback HTTP proxy in front of the real MLflow server that fails chosen requests.

It forwards every request unchanged, except those a rule picks, which meet a fault: by
default a 500 as an overloaded or broken MLflow server sends it; or a connection reset
(`reset`), a status with headers such as a long `Retry-After` (`answer`, `throttle`), a burst
of 503s (`Burst`), an answer trickled a byte at a time (`Trickle`), a connection closed without
an answer (`drop`, with the rule `After(n)`: the server goes away after n requests).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

# (method, path, parsed JSON body or None) -> whether the request meets the fault.
Rule = Callable[[str, str, object], bool]
# What a picked request meets: given the handler and the request's raw body.
Fault = Callable[[Any, bytes], None]

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the forwarding itself recomputes.
_DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_DROPPED_BACK = _DROPPED | {"content-encoding"}

INTERNAL_ERROR = {"error_code": "INTERNAL_ERROR", "message": "injected by the test proxy"}
THROTTLED = {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down (test proxy)"}
UNAVAILABLE = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy (test proxy)"}


# -- rules ---------------------------------------------------------------------------------------


def fail_run_search_of(experiment_id: str) -> Rule:
    """Fail `runs/search` whenever it asks for `experiment_id` (every page of it)."""

    def rule(method: str, path: str, body: object) -> bool:
        if not path.split("?")[0].endswith("/runs/search") or not isinstance(body, dict):
            return False
        return experiment_id in [str(e) for e in body.get("experiment_ids", [])]

    return rule


def fail_all_run_searches(method: str, path: str, body: object) -> bool:
    return path.split("?")[0].endswith("/runs/search")


def every_request(method: str, path: str, body: object) -> bool:
    return True


@dataclass
class After:
    """Pass the first `n` requests, pick every one after (a server that goes away)."""

    n: int
    seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, method: str, path: str, body: object) -> bool:
        with self._lock:
            self.seen += 1
            return self.seen > self.n


# -- faults --------------------------------------------------------------------------------------


def internal_error(handler: Any, raw: bytes) -> None:
    handler._answer(500, {"Content-Type": "application/json"}, INTERNAL_ERROR)


def answer(status: int, body: object, **headers: str) -> Fault:
    """Answer `status` with `body` (JSON) and `headers` (underscores become dashes)."""
    sent = {k.replace("_", "-"): v for k, v in headers.items()}

    def fault(handler: Any, raw: bytes) -> None:
        handler._answer(status, {"Content-Type": "application/json", **sent}, body)

    return fault


def throttle(retry_after: str, status: int = 429) -> Fault:
    """A throttling server: `status` with `Retry-After: retry_after`."""
    return answer(status, THROTTLED if status == 429 else UNAVAILABLE, Retry_After=retry_after)


def reset(handler: Any, raw: bytes) -> None:
    """Close the connection with a TCP reset (SO_LINGER 0), as a killed server's host does."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


def drop(handler: Any, raw: bytes) -> None:
    """Close the connection without an answer."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


@dataclass
class Burst:
    """The first `n` picked requests get `status` (optionally with `Retry-After`); later ones
    are forwarded: a server recovering from an overload."""

    n: int
    status: int = 503
    retry_after: str | None = None
    sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, handler: Any, raw: bytes) -> None:
        with self._lock:
            failing = self.sent < self.n
            self.sent += failing
        if not failing:
            handler._forward_to_upstream(raw)
            return
        headers = {"Content-Type": "application/json"}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        handler._answer(self.status, headers, UNAVAILABLE)


@dataclass
class Trickle:
    """Forward, then send the answer one byte every `interval` s (status line and headers
    too, unless `body_only`): each byte comes well within any socket timeout. Gives up after
    `limit_s` so a client that never stops waiting does not keep the proxy busy forever."""

    interval: float = 0.2
    body_only: bool = False
    limit_s: float = 120.0
    bytes_sent: int = 0

    def __call__(self, handler: Any, raw: bytes) -> None:
        status, headers, content = handler._upstream(raw)
        head = _head(handler, status, headers, len(content))
        if self.body_only:
            handler.wfile.write(head)
            handler.wfile.flush()
            slow = content
        else:
            slow = head + content
        handler.close_connection = True
        end = time.monotonic() + self.limit_s
        for index in range(len(slow)):
            if time.monotonic() > end:
                return
            try:
                handler.wfile.write(slow[index : index + 1])
                handler.wfile.flush()
            except OSError:
                return  # the client gave up: what the test wants
            self.bytes_sent += 1
            time.sleep(self.interval)


def _head(handler: Any, status: int, headers: dict[str, str], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} {handler.responses.get(status, ('',))[0]}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


# -- the proxy -----------------------------------------------------------------------------------


def _handler(
    upstream: str, rule: Rule, hits: list[str], fault: Fault | None = None
) -> type[BaseHTTPRequestHandler]:
    meet = fault or internal_error

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: object = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if rule(self.command, self.path, body):
                hits.append(self.path)
                meet(self, raw)
                return
            self._forward_to_upstream(raw)

        def _upstream(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROPPED}
            reply = requests.request(
                self.command, upstream + self.path, data=raw, headers=headers, timeout=30
            )
            back = {k: v for k, v in reply.headers.items() if k.lower() not in _DROPPED_BACK}
            return reply.status_code, back, reply.content

        def _forward_to_upstream(self, raw: bytes) -> None:
            self._answer(*self._upstream(raw))

        def _answer(self, status: int, headers: dict[str, str], content: object) -> None:
            data = content if isinstance(content, bytes) else json.dumps(content).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

        def finish(self) -> None:
            with contextlib.suppress(OSError):  # a fault may have closed the socket already
                super().finish()

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test output is not the place for an access log

    return Forward


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a trickle, a reset we made: expected here


@contextmanager
def fault_proxy(
    upstream: str, rule: Rule, fault: Fault | None = None
) -> Iterator[tuple[str, list[str]]]:
    """Yield the proxy's URI and the list of paths that met the fault, while it serves."""
    hits: list[str] = []
    server = _QuietServer(("127.0.0.1", 0), _handler(upstream, rule, hits, fault))
    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class AfterPassing:
    """Pass requests until `n` requests `method path-suffix` went through; pick all after:
    the server going away right after a chosen change was made."""

    suffix: str
    n: int = 1
    method: str = "POST"
    passed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, method: str, path: str, body: object) -> bool:
        with self._lock:
            if self.passed >= self.n:
                return True
            if method == self.method and path.split("?")[0].endswith(self.suffix):
                self.passed += 1
            return False
