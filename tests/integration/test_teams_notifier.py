"""The Teams adapter against a real local HTTP server (pytest-httpserver) standing in for Teams."""

from __future__ import annotations

import io
import json
import logging
import random
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.notify.cards import FailureNotice, envelope, failure_card, size_of
from shared.notify.teams import Delivery, FileCardSink, TeamsNotifier, mask_url

PATH = "/workflows/0a1b2c3d/triggers/manual/paths/invoke"
SIG = "Zx9SECRETsignatureValue123"
QUERY = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
CARD = failure_card(FailureNotice("fraud", "r-9", "xgb-9", "alice", "FAILED", 61.0, None))


class FakeTime:
    """A clock that only moves when the notifier sleeps: the time budget without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def url(httpserver: HTTPServer) -> str:
    return httpserver.url_for(PATH) + "?" + QUERY


def notifier(url: str, fake: FakeTime, **options: object) -> TeamsNotifier:
    return TeamsNotifier(
        SecretStr(url),
        sleep=fake.sleep,
        clock=fake.clock,
        rng=random.Random(7),  # noqa: S311 (jitter, not crypto)
        **options,  # type: ignore[arg-type]
    )


def our_log(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged on the client side (the stand-in server's own access log excluded)."""
    return "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("werkzeug", "pytest"))
    )


def test_posts_the_workflows_envelope_and_202_is_success(httpserver: HTTPServer, url: str) -> None:
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_data("", status=202)
    fake = FakeTime()
    delivery = notifier(url, fake).post(CARD)
    assert delivery == Delivery(ok=True, status=202, attempts=1, error=None)
    request = httpserver.log[0][0]
    assert request.args["sig"] == SIG
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.get_json() == envelope(CARD)
    assert request.get_json()["attachments"][0]["contentUrl"] is None
    assert fake.sleeps == []
    httpserver.check_assertions()


def test_any_2xx_is_success(httpserver: HTTPServer, url: str) -> None:
    httpserver.expect_oneshot_request(PATH).respond_with_json({"ok": True}, status=200)
    assert notifier(url, FakeTime()).post(CARD).ok


def test_429_honours_retry_after_then_succeeds(httpserver: HTTPServer, url: str) -> None:
    throttled = Response("slow down", status=429, headers={"Retry-After": "3"})
    httpserver.expect_ordered_request(PATH).respond_with_response(throttled)
    httpserver.expect_ordered_request(PATH).respond_with_data("", status=202)
    fake = FakeTime()
    delivery = notifier(url, fake).post(CARD)
    assert delivery == Delivery(ok=True, status=202, attempts=2, error=None)
    assert fake.sleeps == [3.0]
    assert len(httpserver.log) == 2
    httpserver.check_assertions()


def test_500_is_retried_with_jittered_exponential_backoff(httpserver: HTTPServer, url: str) -> None:
    for _ in range(3):
        httpserver.expect_ordered_request(PATH).respond_with_data("oops", status=500)
    httpserver.expect_ordered_request(PATH).respond_with_data("", status=202)
    fake = FakeTime()
    delivery = notifier(url, fake).post(CARD)
    assert delivery.ok
    assert delivery.attempts == 4
    assert len(fake.sleeps) == 3
    for sleep, ceiling in zip(fake.sleeps, (1.0, 2.0, 4.0), strict=True):
        assert ceiling / 2 <= sleep < ceiling  # exponential, half of it random
    assert len(set(fake.sleeps)) == 3
    # "Equal jitter" from the notifier's seeded rng: half the ceiling, plus a random half.
    rng = random.Random(7)  # noqa: S311 (the same seed as `notifier`)
    assert fake.sleeps == [c / 2 + rng.uniform(0, c / 2) for c in (1.0, 2.0, 4.0)]


def test_400_is_not_retried(httpserver: HTTPServer, url: str) -> None:
    httpserver.expect_request(PATH).respond_with_data("Bad card", status=400)
    fake = FakeTime()
    delivery = notifier(url, fake).post(CARD)
    assert not delivery.ok
    assert delivery.status == 400
    assert delivery.attempts == 1
    assert delivery.error == "HTTP 400: Bad card"
    assert len(httpserver.log) == 1
    assert fake.sleeps == []


def test_gives_up_at_max_attempts(httpserver: HTTPServer, url: str) -> None:
    httpserver.expect_request(PATH).respond_with_data("", status=503)
    fake = FakeTime()
    delivery = notifier(url, fake, max_attempts=3).post(CARD)
    assert (delivery.ok, delivery.status, delivery.attempts) == (False, 503, 3)
    assert "gave up after 3 attempts" in str(delivery.error)
    assert len(httpserver.log) == 3


def test_never_sleeps_past_the_time_budget(httpserver: HTTPServer, url: str) -> None:
    httpserver.expect_request(PATH).respond_with_data("", status=503)
    fake = FakeTime()
    delivery = notifier(url, fake, max_attempts=100, total_timeout_s=20.0).post(CARD)
    assert not delivery.ok
    assert "budget" in str(delivery.error)
    assert sum(fake.sleeps) <= 20.0
    assert 3 <= delivery.attempts < 100
    assert len(httpserver.log) == delivery.attempts


def test_retry_after_beyond_the_budget_gives_up_at_once(httpserver: HTTPServer, url: str) -> None:
    throttled = Response("", status=429, headers={"Retry-After": "120"})
    httpserver.expect_request(PATH).respond_with_response(throttled)
    fake = FakeTime()
    delivery = notifier(url, fake).post(CARD)
    assert (delivery.ok, delivery.status, delivery.attempts) == (False, 429, 1)
    assert "a retry in 120.0 s would pass the 20 s budget" in str(delivery.error)
    assert fake.sleeps == []


def test_connection_errors_are_retried_and_reported() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = FakeTime()
    delivery = notifier(f"http://127.0.0.1:{port}{PATH}?{QUERY}", fake, max_attempts=3).post(CARD)
    assert (delivery.ok, delivery.status, delivery.attempts) == (False, None, 3)
    assert str(delivery.error).startswith("ConnectionError")
    assert len(fake.sleeps) == 2
    assert SIG not in str(delivery.error)
    assert PATH not in str(delivery.error)


def test_the_url_never_reaches_logs_errors_or_reprs(
    httpserver: HTTPServer, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def echo(request: Request) -> Response:  # a server that quotes the URL back in its error
        return Response(f"invalid signature for {request.url}", status=401)

    httpserver.expect_request(PATH).respond_with_handler(echo)
    target = notifier(url, FakeTime())
    delivery = target.post(CARD)
    assert not delivery.ok
    logged = our_log(caplog)
    assert "not delivered" in logged
    assert f"http://{httpserver.host}:{httpserver.port}/…(masked)" in logged
    for shown in (logged, str(delivery.error), repr(delivery), repr(target)):
        assert SIG not in shown
        assert PATH not in shown
    assert "sig=(masked)" in str(delivery.error) or "…(masked)" in str(delivery.error)


def test_server_errors_leave_no_url_in_retry_logs(
    httpserver: HTTPServer, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_ordered_request(PATH).respond_with_data("", status=502)
    httpserver.expect_ordered_request(PATH).respond_with_data("", status=202)
    assert notifier(url, FakeTime()).post(CARD).ok
    logged = our_log(caplog)
    assert "retry 2/4" in logged
    assert SIG not in logged


def test_a_card_that_is_not_json_fails_without_raising(url: str) -> None:
    delivery = notifier(url, FakeTime()).post({"type": "AdaptiveCard", "x": float("nan")})
    assert not delivery.ok
    assert delivery.attempts == 0
    assert "not valid JSON" in str(delivery.error)


def test_oversized_cards_are_shortened_before_posting(httpserver: HTTPServer, url: str) -> None:
    httpserver.expect_request(PATH).respond_with_data("", status=202)
    rows = [{"type": "TextBlock", "text": "z" * 200} for _ in range(500)]
    big = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "Container", "id": "list.runs.x", "items": rows}],
    }
    assert size_of(big) > 24_000
    assert notifier(url, FakeTime()).post(big).ok
    posted = httpserver.log[0][0].get_data()
    assert len(posted) <= 24_000
    assert "more runs" in posted.decode()


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (
            f"https://prod-12.westeurope.logic.azure.com:443{PATH}?{QUERY}",
            "https://prod-12.westeurope.logic.azure.com:443/…(masked)",
        ),
        (f"https://user:pw@example.com{PATH}", "https://example.com/…(masked)"),
        ("not a url", "(masked URL)"),
        ("https://[::1]:8443/x?sig=1", "https://[::1]:8443/…(masked)"),
    ],
)
def test_mask_url_keeps_scheme_and_host_only(raw: str, masked: str) -> None:
    assert mask_url(raw) == masked


def test_file_sink_writes_the_envelope_to_a_stream() -> None:
    stream = io.StringIO()
    delivery = FileCardSink(stream).post(CARD)
    assert delivery == Delivery(ok=True, status=None, attempts=1, error=None)
    assert json.loads(stream.getvalue()) == envelope(CARD)


def test_file_sink_keeps_every_card_in_its_own_file(tmp_path: Path) -> None:
    sink = FileCardSink(tmp_path / "card.json")
    assert sink.post(CARD).ok
    assert sink.post(CARD).ok
    assert sink.written == [tmp_path / "card.json", tmp_path / "card-2.json"]
    for path in sink.written:
        assert json.loads(path.read_text(encoding="utf-8")) == envelope(CARD)


def test_file_sink_reports_an_unwritable_path(tmp_path: Path) -> None:
    delivery = FileCardSink(tmp_path / "missing-dir" / "card.json").post(CARD)
    assert not delivery.ok
    assert "FileNotFoundError" in str(delivery.error)
