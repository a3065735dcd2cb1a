"""Governance events out through the App, against the real MLflow server: each invocation's
applied decisions reach the topic (a local HTTPS server) as one valid CloudEvents batch, and
a failing topic changes no decision and no exit code.
"""

from __future__ import annotations

import json
import logging

import pytest

from shared.app.azure import AzureSeam, use_azure
from shared.azure.credential import EVENTGRID_SCOPE
from shared.azure.events_out import EVENT_TYPES
from shared.bootstrap import build_app, use_app
from shared.cli import main
from shared.notify.sinks import Channel, MemoryCardSink
from tests.azure_support import StaticCredential
from tests.event_samples import event_grid_event, on_run_event_function, run_event
from tests.receiver import receiver_fixture, tls_files_fixture  # noqa: F401 (fixtures)
from tests.support import make_run, settings

pytestmark = pytest.mark.integration

TOPIC_PATH = "/api/events"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8"
TOKEN = "event-grid-token"


@pytest.fixture(name="topic")
def topic_fixture(receiver, tls_files):
    """The stand-in topic's server and URL, and the seam trusting its certificate."""
    credential = StaticCredential(TOKEN)
    seam = AzureSeam(credential=credential, events_verify=str(tls_files[0]))
    return receiver.server, receiver.server.url_for(TOPIC_PATH), seam, credential


@pytest.fixture(name="env")
def env_fixture(app_env, topic):
    _, url, _, _ = topic
    app_env.setenv("GOVERNANCE_EVENTS_TOPIC_ENDPOINT", url)
    app_env.setenv("GOVERNANCE_CLEANUP_STATUSES", "FAILED")
    app_env.setenv("GOVERNANCE_REQUIRED_TAGS", "owner")
    return app_env


def _batches(server) -> list[list[dict]]:
    return [json.loads(request.get_data()) for request, _ in server.log]


def _valid_cloudevent(event: dict) -> None:
    # CloudEvents 1.0 required attributes, plus the ones the publisher always sets.
    assert event["specversion"] == "1.0"
    assert event["id"]
    assert event["source"]
    assert event["type"] in EVENT_TYPES
    assert event["datacontenttype"] == "application/json"
    assert {"subject", "time", "data"} <= set(event)


def test_a_sweep_publishes_its_applied_decisions_as_one_batch(
    env, topic, client, experiment, mlflow_server, capsys
):
    server, _, seam, credential = topic
    server.expect_request(TOPIC_PATH, method="POST").respond_with_data("", status=200)
    experiment_id, _ = experiment
    failed = make_run(client, experiment_id, status="FAILED", ended_hours_ago=100)
    untagged = make_run(client, experiment_id, tags={"mlflow.user": ""})

    with use_azure(seam):
        code = main(["sweep", "--json"])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    ((request, _),) = server.log
    assert request.headers["Content-Type"] == BATCH_CONTENT_TYPE
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert credential.scopes == [(EVENTGRID_SCOPE,)]
    (batch,) = _batches(server)
    for event in batch:
        _valid_cloudevent(event)
        assert event["source"] == mlflow_server.uri  # no workspace: the tracking URI
    by_type = {e["type"]: e for e in batch}
    assert set(by_type) == {"mlgov.RunDeleted", "mlgov.RunNoncompliant"}
    assert by_type["mlgov.RunDeleted"]["subject"] == f"experiments/{experiment_id}/runs/{failed}"
    assert by_type["mlgov.RunDeleted"]["data"]["run_id"] == failed
    assert by_type["mlgov.RunNoncompliant"]["data"]["run_id"] == untagged
    (entry,) = [n for n in report["notifications"] if n["channel"].startswith("event grid")]
    assert (entry["ok"], entry["notices"], entry["error"]) == ("true", "2", "")


def test_a_failing_topic_changes_no_decision_and_no_exit_code(
    env, topic, client, experiment, capsys
):
    server, _, seam, _ = topic
    server.expect_request(TOPIC_PATH, method="POST").respond_with_json(
        {"error": {"code": "InternalServerError", "message": "try later"}}, status=500
    )
    experiment_id, _ = experiment
    failed = make_run(client, experiment_id, status="FAILED", ended_hours_ago=100)

    with use_azure(seam):
        code = main(["sweep", "--json"])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    decisions = {d["run_id"]: d for d in report["decisions"] if d["action"] == "delete-run"}
    assert decisions[failed]["outcome"] == "applied"
    assert client.get_run(failed).info.lifecycle_stage == "deleted"
    (entry,) = [n for n in report["notifications"] if n["channel"].startswith("event grid")]
    assert entry["ok"] == "false"
    assert entry["error"].startswith("HttpResponseError: 500")
    assert TOKEN not in json.dumps(report)
    assert len(server.log) >= 1


def test_a_dry_run_publishes_nothing(env, topic, client, experiment, capsys):
    server, _, seam, _ = topic
    make_run(client, experiment[0], status="FAILED", ended_hours_ago=100)

    with use_azure(seam):
        assert main(["sweep", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert server.log == []
    assert not [n for n in report["notifications"] if n["channel"].startswith("event grid")]


def test_a_promotion_by_the_function_is_a_model_promoted_event(
    topic, mlflow_server, client, experiment, caplog
):
    server, url, seam, _ = topic
    server.expect_request(TOPIC_PATH, method="POST").respond_with_data("", status=200)
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.91}, model=True)
    the_settings = settings(
        mlflow_server.uri,
        experiments=name,
        promotion_metric="auc",
        promotion_threshold="0.5",
        events_topic_endpoint=url,
    )
    app = build_app(the_settings, channel=Channel(MemoryCardSink(), "memory"), azure=seam)

    with use_app(app), caplog.at_level(logging.INFO, logger="functions.run_events"):
        on_run_event_function()(event_grid_event(run_event(run_id, experiment_id, name)))

    (batch,) = _batches(server)
    (event,) = batch
    _valid_cloudevent(event)
    assert event["type"] == "mlgov.ModelPromoted"
    assert event["subject"] == f"models/{name}:1"
    assert event["data"]["run_id"] == run_id
    assert event["data"]["details"]["version"] == "1"
