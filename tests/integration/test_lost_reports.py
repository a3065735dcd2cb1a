"""Nothing done goes unreported: the tracking server fails after some changes were made, and
what was applied is still in the report, the log lines and the card of that invocation, which
still fails (exit 1, the host raising for a retry). The real server behind the fault proxy,
a local HTTPS receiver for the cards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from shared.bootstrap import build_app, reset_host_app, use_app
from shared.cli import main
from shared.errors import TrackingUnavailable
from tests.estate_support import Collected
from tests.event_samples import run_event
from tests.fault_proxy import UNAVAILABLE, AfterPassing, answer, fault_proxy, reset
from tests.receiver import PATH, card_text
from tests.receiver import receiver_fixture as receiver_fixture
from tests.receiver import tls_files_fixture as tls_files_fixture
from tests.support import make_run, settings

pytestmark = pytest.mark.integration

PROMOTED = "Model promoted:"


@pytest.fixture
def env(app_env: pytest.MonkeyPatch, receiver) -> Iterator[pytest.MonkeyPatch]:
    """The suite's environment, MLflow's retries as mlgov sets them, cards to the receiver."""
    app_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    app_env.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    app_env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", receiver.url)
    receiver.server.expect_request(PATH, method="POST").respond_with_data("", status=202)
    return app_env


def use(env: pytest.MonkeyPatch, uri: str) -> None:
    env.setenv("MLFLOW_TRACKING_URI", uri)
    reset_host_app()


def deleted(client, run_id: str) -> bool:
    return client.get_run(run_id).info.lifecycle_stage == "deleted"


def texts(receiver) -> list[str]:
    return [card_text(message) for message in receiver.messages()]


def test_a_sweep_whose_server_goes_away_after_two_deletions_reports_and_announces_them(
    env, mlflow_server, client, experiment, receiver, capsys
):
    experiment_id, _ = experiment
    runs = {
        make_run(client, experiment_id, status="FAILED", ended_hours_ago=100, name=f"trial-{i}")
        for i in range(6)
    }
    names = {run_id: client.get_run(run_id).info.run_name for run_id in runs}

    with fault_proxy(mlflow_server.uri, AfterPassing("/runs/delete", 2), reset) as (uri, hits):
        use(env, uri)
        code = main(["sweep", "--json"])
    captured = capsys.readouterr()

    assert code == 1
    assert hits, "the server never went away"
    assert "mlgov: tracking server unavailable" in captured.err
    report = json.loads(captured.out)
    applied = {
        d["run_id"]
        for d in report["decisions"]
        if d["action"] == "delete-run" and d["outcome"] == "applied"
    }
    gone = {run_id for run_id in runs if deleted(client, run_id)}
    # Exactly what the server deleted is reported: the two deletions before it went away.
    assert len(gone) == 2
    assert applied == gone
    assert "tracking server unavailable" in report["interrupted"]
    (row,) = report["experiments"]
    assert row["deleted"] == 2
    # ...and announced, in the card of the invocation that failed.
    (text,) = texts(receiver)
    for run_id in runs:
        assert (names[run_id] in text) == (run_id in gone), names[run_id]


def test_the_timer_logs_and_announces_what_it_deleted_and_still_fails(
    mlflow_server, client, experiment, receiver, caplog, monkeypatch
):
    from azure.functions.timer import TimerRequest

    from functions.scheduled_sweep import scheduled_sweep

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    receiver.server.expect_request(PATH, method="POST").respond_with_data("", status=202)
    experiment_id, name = experiment
    runs = [make_run(client, experiment_id, status="FAILED", ended_hours_ago=100) for _ in range(3)]

    with fault_proxy(mlflow_server.uri, AfterPassing("/runs/delete", 1), reset) as (uri, _):
        the_settings = settings(
            uri, experiments=name, cleanup_statuses="FAILED", teams_webhook_url=receiver.url
        )
        app = build_app(the_settings)
        caplog.set_level(logging.INFO, logger="functions.scheduled_sweep")
        timer = scheduled_sweep.build().get_user_function()
        with use_app(app), pytest.raises(TrackingUnavailable):
            timer(TimerRequest(past_due=False), Collected())

    (gone,) = [run_id for run_id in runs if deleted(client, run_id)]
    lines = [r.getMessage() for r in caplog.records if r.name == "functions.scheduled_sweep"]
    (applied,) = [line for line in lines if line.startswith("applied ")]
    assert applied.startswith(f"applied cleanup-failed-runs delete-run run {gone} ")
    (text,) = texts(receiver)
    assert client.get_run(gone).info.run_name in text


def test_an_event_whose_server_answers_503_right_after_the_promotion_announces_it_once(
    env, mlflow_server, client, experiment, receiver, capsys, tmp_path
):
    experiment_id, name = experiment
    env.setenv("GOVERNANCE_PROMOTION_METRIC", "auc")
    env.setenv("GOVERNANCE_PROMOTION_THRESHOLD", "0.5")
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    event = tmp_path / "event.json"
    event.write_text(json.dumps(run_event(run_id, experiment_id, name)), encoding="utf-8")

    # The alias moves; every request after it (tagging the run first) answers 503.
    rule = AfterPassing("/registered-models/alias")
    with fault_proxy(mlflow_server.uri, rule, answer(503, UNAVAILABLE)) as (uri, hits):
        use(env, uri)
        code = main(["handle-event", str(event), "--json"])
    captured = capsys.readouterr()

    assert code == 1
    # The first request refused is tagging the run, right after the alias moved.
    assert hits[0].endswith("/runs/log-batch"), hits
    report = json.loads(captured.out)
    (promotion,) = [d for d in report["decisions"] if d["action"] == "register-model-version"]
    assert (promotion["outcome"], promotion["details"]["version"]) == ("applied", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert "governance.promoted_to" not in client.get_run(run_id).data.tags
    (text,) = texts(receiver)
    assert text.count(PROMOTED) == 1

    # The redelivery, the server back: it finishes tagging the run and announces nothing.
    use(env, mlflow_server.uri)
    assert main(["handle-event", str(event), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    (finish,) = [d for d in again["decisions"] if d["action"] == "register-model-version"]
    assert finish["outcome"] == "skipped", finish["reason"]
    assert client.get_run(run_id).data.tags["governance.promoted_to"] == f"{name}:1"
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert sum(t.count(PROMOTED) for t in texts(receiver)) == 1
