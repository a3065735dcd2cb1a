"""The wait figures (`shared.budget`) and the bounded HTTP adapter (`shared.http_deadline`),
against a loopback socket that trickles, throttles or answers; the real server's faults are
tests/integration/test_faults.py."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests

from shared.budget import Budget, deadline, env_name
from shared.errors import SettingsError
from shared.http_deadline import DeadlineExceeded, Throttled, bounded_session

Serve = Callable[[socket.socket], None]


@contextmanager
def loopback(serve: Serve) -> Iterator[str]:
    """A one-connection-at-a-time server on 127.0.0.1 calling `serve` per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_serve_one, args=(serve, conn), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _serve_one(serve: Serve, conn: socket.socket) -> None:
    with conn:
        conn.recv(65536)
        with contextlib.suppress(OSError):  # the client gave up
            serve(conn)


def trickle(conn: socket.socket) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"x" * 200
    for index in range(len(answer)):
        conn.sendall(answer[index : index + 1])
        time.sleep(0.05)


def throttled(retry_after: str) -> Serve:
    def serve(conn: socket.socket) -> None:
        conn.sendall(
            f"HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )

    return serve


def retrying_session() -> requests.Session:
    from urllib3.util.retry import Retry

    from shared.http_deadline import BoundedAdapter

    session = requests.Session()
    session.mount("http://", BoundedAdapter(max_retries=Retry(total=2, status_forcelist=[429])))
    return session


def test_a_trickle_ends_at_the_request_deadline_not_the_socket_timeout() -> None:
    passed = re.escape("the test's 0.5 s deadline passed")
    with (
        loopback(trickle) as url,
        deadline("test", 0.5, Budget(request_s=30)),
        pytest.raises(DeadlineExceeded, match=passed),
    ):
        bounded_session().get(url, timeout=10)


def test_past_the_deadline_nothing_is_sent() -> None:
    sent: list[bytes] = []
    with loopback(lambda conn: sent.append(b"x")) as url, deadline("test", 0.01):
        time.sleep(0.02)
        with pytest.raises(DeadlineExceeded, match="not sent"):
            bounded_session().get(url)
    assert sent == []


def test_a_retry_after_past_the_cap_fails_at_once() -> None:
    with loopback(throttled("3600")) as url, pytest.raises(Throttled, match="3600 s, more"):
        retrying_session().get(url, timeout=5)


def test_a_retry_after_that_would_pass_the_deadline_is_not_waited_for() -> None:
    budget = Budget(retry_after_cap_s=60)
    with (
        loopback(throttled("30")) as url,
        deadline("test", 2, budget),
        pytest.raises(DeadlineExceeded, match=re.escape("a retry in 30.0 s would end past")),
    ):
        retrying_session().get(url, timeout=5)


def test_an_ordinary_answer_passes() -> None:
    def ok(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with loopback(ok) as url:
        assert bounded_session().get(url, timeout=5).text == "ok"


def test_mlflow_builds_its_session_with_the_bounded_adapter() -> None:
    # Pins the MLflow names `install_into_mlflow` relies on (mlflow/utils/request_utils.py).
    from mlflow.utils import request_utils

    from shared.http_deadline import BoundedAdapterMixin, BoundedRetry, install_into_mlflow

    install_into_mlflow()
    session = request_utils._get_request_session(2, 1, 1.0, frozenset({429}), True, True)
    adapter = session.get_adapter("http://127.0.0.1")
    assert isinstance(adapter, BoundedAdapterMixin)
    # MLflow's keep-alive adapter is still underneath (its socket options kept).
    assert "TCPKeepAliveHTTPAdapter" in [c.__name__ for c in type(adapter).__mro__]
    assert isinstance(adapter.max_retries, BoundedRetry)
    assert adapter.max_retries.total == 2
    assert isinstance(adapter.max_retries.new(), BoundedRetry)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("soon", "not a number"), ("0", "positive"), ("-1", "positive"), ("nan", "positive")],
)
def test_an_invalid_figure_is_a_settings_error_naming_it(value: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=f"^MLGOV_SWEEP_SECONDS: .*{problem}"):
        Budget.from_environ({"MLGOV_SWEEP_SECONDS": value})


def test_figures_default_and_can_be_overridden() -> None:
    assert Budget.from_environ({}) == Budget()
    assert Budget.from_environ({"MLGOV_EVENT_SECONDS": "3"}).event_s == 3
    assert env_name("retry_after_cap_s") == "MLGOV_RETRY_AFTER_CAP_SECONDS"
    # Event Grid waits 30 s: the event's tracking work and its card fit inside.
    assert Budget().event_s + Budget().notify_s < 30


def test_a_nested_deadline_never_outlives_its_parent() -> None:
    with deadline("invocation", 1) as outer, deadline("request", 60) as inner:
        assert inner.deadline == outer.deadline
        assert inner.describe() == "the invocation's 1 s deadline"
