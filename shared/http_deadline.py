"""Bounded HTTP: a `requests` adapter whose every request ends by its deadline, a byte-a-second
trickle included, whose retries never wait past it and which honours `Retry-After` up to a cap.

The figures are `shared.budget`'s. `install_into_mlflow` puts the adapter under MLflow's REST
client; `bounded_session` gives one to any other caller (the Teams webhook).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from shared.budget import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, Scope, active_budget, deadline


class DeadlineExceeded(requests.exceptions.Timeout):
    """The request had no complete answer by its deadline (a slow or trickling server)."""


class Throttled(requests.exceptions.RetryError):
    """The server asked to be retried later than the `Retry-After` cap allows."""


class _Stop(Exception):
    """Raised inside urllib3's retry loop (from `BoundedRetry`) to end it at once."""

    def __init__(self, reason: str, *, throttled: bool = False) -> None:
        super().__init__(reason)
        self.throttled = throttled


# -- one watchdog thread for every request under way -------------------------------------------


@dataclass(order=True)
class _Alarm:
    when: float
    seq: int
    fire: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class _Watchdog:
    """Calls each alarm's `fire` at its time unless cancelled first (one daemon thread)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Alarm] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, when: float, fire: Callable[[], None]) -> _Alarm:
        alarm = _Alarm(when, next(self._seq), fire)
        with self._cond:
            heapq.heappush(self._heap, alarm)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mlgov-http-deadline", daemon=True
                )
                self._thread.start()
            if self._heap[0] is alarm:
                # Woken only for a new earliest alarm: it sleeps until the earliest anyway,
                # and most requests' deadlines come after those already armed.
                self._cond.notify()
        return alarm

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0].when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                alarm = heapq.heappop(self._heap)
            with contextlib.suppress(Exception):  # a socket already gone is the goal
                alarm.fire()


_WATCHDOG = _Watchdog()


# -- the request under way, the connections it uses --------------------------------------------


class _Attempt:
    """One request: its deadline scope and the connections it sent on. At the deadline the
    watchdog shuts their sockets, which wakes a read blocked on a trickle."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.expired = False
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            expired = self.expired
        if expired:
            _abort(connection)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            _abort(connection)


def _abort(connection: HTTPConnection) -> None:
    # The socket as of the request: http.client drops `sock` from a connection whose answer
    # says `Connection: close`, while the answer still reads from it.
    sock = getattr(connection, "_mlgov_sock", None) or connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its
            # SSL object under the reading thread's feet.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("mlgov_http_attempt", default=None)


class _Watched:
    """A urllib3 connection that tells the request under way (if any) it is being used."""

    sock: socket.socket | None

    def connect(self) -> None:
        self._enlist()
        super().connect()  # type: ignore[misc]
        self._mlgov_sock = self.sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._enlist()
        super().request(*args, **kwargs)  # type: ignore[misc]
        self._mlgov_sock = self.sock

    def _enlist(self) -> None:
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.watch(self)  # type: ignore[arg-type]


class BoundedHTTPConnection(_Watched, HTTPConnection):
    pass


class BoundedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class BoundedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = BoundedHTTPConnection


class BoundedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = BoundedHTTPSConnection


_POOLS = {"http": BoundedHTTPConnectionPool, "https": BoundedHTTPSConnectionPool}


# -- retries that respect the deadline and the Retry-After cap ---------------------------------


class BoundedRetry(Retry):
    """urllib3's `Retry` that never waits past the request's deadline, and fails at once when
    `Retry-After` asks for more than the cap (urllib3 would wait up to `retry_after_max`, 6 h)."""

    def increment(self, *args: Any, **kwargs: Any) -> BoundedRetry:
        attempt = _ATTEMPT.get()
        if attempt is not None and (attempt.expired or attempt.scope.expired()):
            raise _Stop(attempt.scope.why_expired())
        return super().increment(*args, **kwargs)

    def sleep(self, response: Any = None) -> None:
        wait: float | None = None
        if self.respect_retry_after_header and response is not None:
            with contextlib.suppress(InvalidHeader):  # garbage: the backoff decides
                wait = self.get_retry_after(response)
            cap = active_budget().retry_after_cap_s
            if wait is not None and wait > cap:
                status = getattr(response, "status", "")
                raise _Stop(
                    f"throttled: HTTP {status} asked to retry after {wait:.0f} s, "
                    f"more than the {cap:g} s cap",
                    throttled=True,
                )
        if not wait:
            wait = self.get_backoff_time()
        attempt = _ATTEMPT.get()
        if attempt is not None and wait >= attempt.scope.remaining():
            raise _Stop(f"a retry in {wait:.1f} s would end past {attempt.scope.describe()}")
        super().sleep(response)


def _bounded(retry: Retry) -> BoundedRetry:
    """The same retry policy as a `BoundedRetry` (`new` keeps the class through increments)."""
    if isinstance(retry, BoundedRetry):
        return retry
    bounded = BoundedRetry.__new__(BoundedRetry)
    bounded.__dict__.update(vars(retry))
    return bounded


def _timeouts(given: Any, remaining: float) -> Any:
    """(connect, read) for one request: each within its figure and the time left."""
    if isinstance(given, tuple):
        connect, read = given
    elif given is None or isinstance(given, int | float):
        connect = read = given
    else:  # a urllib3 Timeout object: the caller's choice, still under the watchdog
        return given
    connect = min(connect or CONNECT_TIMEOUT_S, CONNECT_TIMEOUT_S, remaining)
    read = min(read or READ_TIMEOUT_S, remaining)
    return (connect, read)


class BoundedAdapterMixin:
    """The `send` of a bounded adapter; mixed into `HTTPAdapter` or MLflow's subclass of it."""

    max_retries: Retry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retries = _bounded(self.max_retries)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[misc]
        self.poolmanager.pool_classes_by_scheme = _POOLS  # type: ignore[attr-defined]

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)  # type: ignore[misc]
        manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        with deadline("request", active_budget().request_s) as scope:
            if scope.expired():
                raise DeadlineExceeded(f"not sent: {scope.why_expired()}", request=request)
            attempt = _Attempt(scope)
            alarm = _WATCHDOG.arm(scope.deadline, attempt.expire)
            token = _ATTEMPT.set(attempt)
            try:
                response: requests.Response = super().send(  # type: ignore[misc]
                    request,
                    stream=stream,
                    timeout=_timeouts(timeout, scope.remaining()),
                    verify=verify,
                    cert=cert,
                    proxies=proxies,
                )
                if not stream:
                    _ = response.content  # the body is read under the deadline too
                if attempt.expired:
                    # Cut short by the watchdog: a status line or headers ended early can
                    # parse as an empty 200, which must never pass for an answer.
                    raise DeadlineExceeded(
                        f"no complete answer: {scope.why_expired()}", request=request
                    )
                return response
            except _Stop as stop:
                kind = Throttled if stop.throttled else DeadlineExceeded
                raise kind(str(stop), request=request) from None
            except requests.RequestException as exc:
                if attempt.expired:
                    raise DeadlineExceeded(
                        f"no complete answer: {scope.why_expired()}", request=request
                    ) from exc
                raise
            finally:
                alarm.cancel()
                _ATTEMPT.reset(token)


class BoundedAdapter(BoundedAdapterMixin, HTTPAdapter):
    """A plain `requests` adapter with the bounds."""


def bounded_session() -> requests.Session:
    """A `requests.Session` whose every request is bounded (for callers other than MLflow)."""
    session = requests.Session()
    adapter = BoundedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_INSTALL_LOCK = threading.Lock()


def install_into_mlflow() -> None:
    """Make MLflow's REST session use the bounded adapter (idempotent).

    MLflow builds its session in mlflow/utils/request_utils.py, `_cached_get_request_session`:
    a `TCPKeepAliveHTTPAdapter` (looked up by name on each build) with a urllib3 `Retry` whose
    `respect_retry_after_header` follows MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER. The adapter
    is replaced by a subclass of it carrying these bounds (keep-alive options kept), and the
    cache of sessions is cleared so none built before escapes them. MLflow 3.15's names;
    tests/unit/test_http_deadline.py fails if they move.
    """
    from mlflow.utils import request_utils

    with _INSTALL_LOCK:
        current = request_utils.TCPKeepAliveHTTPAdapter
        if issubclass(current, BoundedAdapterMixin):
            return
        bounded = type("MlflowBoundedAdapter", (BoundedAdapterMixin, current), {})
        request_utils.TCPKeepAliveHTTPAdapter = bounded  # type: ignore[misc,assignment]
        request_utils._cached_get_request_session.cache_clear()
