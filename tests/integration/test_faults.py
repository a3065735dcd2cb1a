"""Each class of fault, injected between mlgov and the real MLflow server (tests.fault_proxy):
every invocation ends within its bounds (no test measures time: each asserts the ending),
exits 1 with the failure named, and leaks nothing.

The figures are lowered through `MLGOV_*_SECONDS` where a test would otherwise wait for the
production deadline; the retries are MLflow's defaults as mlgov sets them (2).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from shared.bootstrap import reset_host_app
from shared.cli import main
from shared.errors import TrackingUnavailable
from tests.event_samples import event_grid_event, on_run_event_function, run_event
from tests.fault_proxy import (
    After,
    Burst,
    Trickle,
    drop,
    every_request,
    fail_run_search_of,
    fault_proxy,
    reset,
    throttle,
)
from tests.receiver import PATH, SIG
from tests.receiver import receiver_fixture as receiver_fixture
from tests.receiver import tls_files_fixture as tls_files_fixture
from tests.support import make_run

pytestmark = pytest.mark.integration


@pytest.fixture
def env(app_env: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The suite's environment with MLflow's retries as mlgov sets them in production."""
    app_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    app_env.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    return app_env


@pytest.fixture
def two_experiments(env, client, experiment) -> dict[str, str]:
    """The test's experiment ("good") and a second ("bad"), both in scope, a run in each."""
    good_id, good_name = experiment
    bad_name = f"{good_name}-bad"
    bad_id = client.create_experiment(bad_name)
    for experiment_id in (good_id, bad_id):
        make_run(client, experiment_id, status="FAILED", ended_hours_ago=1)
    env.setenv("GOVERNANCE_EXPERIMENTS", f"{good_name},{bad_name}")
    return {"good": good_id, "bad": bad_id, "bad_name": bad_name}


def use(env: pytest.MonkeyPatch, uri: str) -> None:
    env.setenv("MLFLOW_TRACKING_URI", uri)
    reset_host_app()


def failed_reasons(out: str, experiment: str) -> list[str]:
    report = json.loads(out)
    return [
        r["reason"]
        for r in report["decisions"]
        if r["experiment"] == experiment and r["outcome"] == "failed"
    ]


# -- throttling: Retry-After honoured up to the cap, then the invocation fails at once -----------


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_past_the_cap_fails_the_sweep_at_once(
    env, mlflow_server, experiment, capsys, status
):
    with fault_proxy(mlflow_server.uri, every_request, throttle("3600", status)) as (uri, hits):
        use(env, uri)
        assert main(["sweep", "--json"]) == 1
    err = capsys.readouterr().err
    assert "tracking server unavailable during search_experiments" in err
    assert f"throttled: HTTP {status} asked to retry after 3600 s, more than the 5 s cap" in err
    assert len(hits) == 1  # not retried: the server said an hour


def test_a_retry_after_past_the_cap_fails_the_event_for_redelivery(
    env, mlflow_server, client, experiment
):
    run_id = make_run(client, experiment[0])
    event = run_event(run_id, *experiment)
    with fault_proxy(mlflow_server.uri, every_request, throttle("3600")) as (uri, _):
        use(env, uri)
        with pytest.raises(TrackingUnavailable, match="more than the 5 s cap"):
            on_run_event_function()(event_grid_event(event))


def test_a_retry_after_within_the_cap_is_waited_for(env, mlflow_server, experiment, capsys):
    burst = Burst(1, status=429, retry_after="1")
    with fault_proxy(mlflow_server.uri, every_request, burst) as (uri, _):
        use(env, uri)
        assert main(["sweep", "--json"]) == 0
    assert burst.sent == 1
    assert json.loads(capsys.readouterr().out)["command"] == "sweep"


def test_a_cap_lowered_below_the_retry_after_refuses_it(env, mlflow_server, experiment, capsys):
    env.setenv("MLGOV_RETRY_AFTER_CAP_SECONDS", "0.5")
    with fault_proxy(mlflow_server.uri, every_request, Burst(1, 429, "1")) as (uri, _):
        use(env, uri)
        assert main(["sweep", "--json"]) == 1
    assert "more than the 0.5 s cap" in capsys.readouterr().err


# -- 503 bursts: absorbed by the retries when short, a failed invocation when long --------------


def test_a_short_503_burst_is_absorbed_by_the_retries(env, mlflow_server, experiment, capsys):
    burst = Burst(2)
    with fault_proxy(mlflow_server.uri, every_request, burst) as (uri, _):
        use(env, uri)
        assert main(["sweep", "--json"]) == 0
    assert burst.sent == 2


def test_a_long_503_burst_on_one_experiment_is_reported_and_exits_1(
    mlflow_server, two_experiments, env, capsys
):
    rule = fail_run_search_of(two_experiments["bad"])
    with fault_proxy(mlflow_server.uri, rule, Burst(1000)) as (uri, hits):
        use(env, uri)
        assert main(["sweep", "--json"]) == 1
    reasons = failed_reasons(capsys.readouterr().out, two_experiments["bad_name"])
    assert reasons
    assert all("too many 503 error responses" in r for r in reasons)
    assert len(hits) % 3 == 0  # each search: the request and its two retries


# -- connection resets and a server that goes away -----------------------------------------------


def test_a_reset_connection_fails_that_experiment_and_exits_1(
    mlflow_server, two_experiments, env, capsys
):
    rule = fail_run_search_of(two_experiments["bad"])
    with fault_proxy(mlflow_server.uri, rule, reset) as (uri, hits):
        use(env, uri)
        assert main(["sweep", "--json"]) == 1
    assert hits
    reasons = failed_reasons(capsys.readouterr().out, two_experiments["bad_name"])
    assert reasons
    assert all("tracking server unavailable" in r for r in reasons)


def test_a_reset_on_every_request_fails_the_event_for_redelivery(
    env, mlflow_server, client, experiment, tmp_path, capsys
):
    run_id = make_run(client, experiment[0])
    path = tmp_path / "event.json"
    path.write_text(json.dumps(run_event(run_id, *experiment)), encoding="utf-8")
    with fault_proxy(mlflow_server.uri, every_request, reset) as (uri, _):
        use(env, uri)
        assert main(["handle-event", str(path), "--json"]) == 1
    assert "tracking server unavailable during get_run" in capsys.readouterr().err


@pytest.mark.parametrize("after", [1, 3, 5])
def test_a_server_that_goes_away_mid_sweep_ends_it_with_exit_1(
    mlflow_server, two_experiments, env, capsys, after
):
    with fault_proxy(mlflow_server.uri, After(after), drop) as (uri, hits):
        use(env, uri)
        assert main(["sweep", "--json"]) == 1
    assert hits
    captured = capsys.readouterr()
    assert "tracking server unavailable" in captured.out + captured.err


# -- a trickle: the request deadline, not a socket timeout, ends it ------------------------------


@pytest.mark.parametrize("body_only", [False, True], ids=["whole-answer", "body"])
def test_a_trickling_search_is_given_up_on_and_reported(
    mlflow_server, two_experiments, env, capsys, body_only
):
    env.setenv("MLGOV_REQUEST_SECONDS", "1.5")
    trickle = Trickle(interval=0.1, body_only=body_only)
    rule = fail_run_search_of(two_experiments["bad"])
    with fault_proxy(mlflow_server.uri, rule, trickle) as (uri, hits):
        use(env, uri)
        assert main(["sweep", "--json"]) == 1
    assert hits
    assert trickle.bytes_sent > 0
    reasons = failed_reasons(capsys.readouterr().out, two_experiments["bad_name"])
    assert reasons
    assert all("the request's 1.5 s deadline passed" in r for r in reasons)


def test_a_trickle_past_the_event_deadline_fails_the_event_for_redelivery(
    env, mlflow_server, client, experiment
):
    env.setenv("MLGOV_EVENT_SECONDS", "1")
    run_id = make_run(client, experiment[0])
    event = run_event(run_id, *experiment)
    with fault_proxy(mlflow_server.uri, every_request, Trickle(interval=0.1)) as (uri, _):
        use(env, uri)
        with pytest.raises(TrackingUnavailable, match="the event invocation's 1 s deadline"):
            on_run_event_function()(event_grid_event(event))


def test_the_sweep_budget_ends_a_slow_sweep_and_names_it(
    mlflow_server, two_experiments, env, capsys
):
    env.setenv("MLGOV_SWEEP_SECONDS", "1")
    rule = fail_run_search_of(two_experiments["bad"])
    with fault_proxy(mlflow_server.uri, rule, Trickle(interval=0.1)) as (uri, _):
        use(env, uri)
        assert main(["sweep", "--json"]) == 1
    captured = capsys.readouterr()
    assert "the sweep's 1 s deadline passed" in captured.out + captured.err


# -- the figures themselves are settings of a kind: invalid ones exit 2 naming them --------------


def test_an_invalid_figure_exits_2_naming_it(env, capsys):
    env.setenv("MLGOV_EVENT_SECONDS", "soon")
    assert main(["sweep", "--json"]) == 2
    assert "MLGOV_EVENT_SECONDS: not a number of seconds" in capsys.readouterr().err


# -- nothing leaks: everything the app emits, searched for every form of every secret -----------

PASSWORD = "Pa55-w0rd/Secret"
USER = "alice"


def _echoes(url: str) -> dict[str, str]:
    """How a receiver can echo the webhook back (each short enough to be quoted whole)."""
    return {
        "percent-encoded": f"no such flow: {quote(url, safe='')}",
        "percent-encoded-twice": f"bad {quote(quote(url, safe=''), safe='')}",
        "json-escaped": json.dumps({"error": {"url": url.replace("/", "\\/")}}),
        "bare-signature": f"signature {SIG} expired",
        "plain": f"workflow disabled: {url}",
    }


def secret_forms(url: str) -> set[str]:
    """Every spelling of a secret a leak could take."""
    plain = {url, SIG, PASSWORD, f"{USER}:{PASSWORD}", f"{USER}:{quote(PASSWORD, safe='')}"}
    forms = set(plain)
    for secret in plain:
        once = quote(secret, safe="")
        forms |= {once, quote(once, safe=""), secret.replace("/", "\\/")}
        forms.add(json.dumps(secret.replace("/", "\\/"))[1:-1])
    return forms


def _userinfo(uri: str) -> str:
    return uri.replace("http://", f"http://{USER}:{quote(PASSWORD, safe='')}@", 1)


def test_nothing_the_app_emits_on_failing_paths_carries_a_secret(
    mlflow_server, two_experiments, env, receiver, caplog, capsys, tmp_path, client
):
    from tests.conftest import free_port

    caplog.set_level(logging.DEBUG)
    env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", receiver.url)
    emitted: list[str] = []
    reports: list[dict[str, Any]] = []

    def run(*argv: str) -> int:
        code = main(list(argv))
        captured = capsys.readouterr()
        emitted.extend([captured.out, captured.err])
        if "--json" in argv and captured.out.strip():
            reports.append(json.loads(captured.out))
        return code

    bad = fail_run_search_of(two_experiments["bad"])
    for index, (form, echo) in enumerate(sorted(_echoes(receiver.url).items())):
        receiver.server.clear()
        receiver.server.expect_request(PATH).respond_with_data(echo, status=400)
        make_run(client, two_experiments["good"], status="FAILED", ended_hours_ago=1)
        with fault_proxy(mlflow_server.uri, bad) as (uri, _):
            use(env, _userinfo(uri))
            # A 5xx on one experiment: its reason quotes MLflow's error (the URL it called).
            argv = ["sweep", "--json"] if index % 2 == 0 else ["-vv", "sweep"]
            assert run(*argv) == 1, form
        emitted.extend(json.dumps(m) for m in receiver.messages())

    # The tracking server down: the error names the URI it could not reach.
    event = tmp_path / "event.json"
    event.write_text(json.dumps(run_event("0" * 32, *two_experiments_of(env))), encoding="utf-8")
    use(env, _userinfo(f"http://127.0.0.1:{free_port()}"))
    assert run("handle-event", str(event), "--json") == 1
    assert run("-v", "sweep") == 1
    with fault_proxy(mlflow_server.uri, every_request, reset) as (uri, _):
        use(env, _userinfo(uri))
        assert run("summary", "--json") == 1

    emitted.extend(_log_text(record) for record in caplog.records)
    text = "\n".join(emitted)
    # The failing paths were taken: an echo was quoted, a reason names the server's answer.
    errors = [n["error"] for r in reports for n in r["notifications"] if n.get("error")]
    assert errors
    assert all("HTTP 400" in e for e in errors)
    assert any("tracking server unavailable" in e for e in emitted)
    assert "(masked)" in text
    leaked = sorted(form for form in secret_forms(receiver.url) if form in text)
    assert leaked == []


def two_experiments_of(env: pytest.MonkeyPatch) -> tuple[str, str]:
    return ("1", os.environ["GOVERNANCE_EXPERIMENTS"].split(",")[0])


def _log_text(record: logging.LogRecord) -> str:
    formatter = logging.Formatter("%(name)s %(message)s")
    return formatter.format(record) + "\n" + (record.exc_text or "")
