"""Run events end to end against the real server: the use case, `mlgov handle-event` and the
`on_run_event` function called with real azure.functions event objects.

The function runs with an App built for the test (`use_app`: the test server's gateway, a
channel keeping cards in memory); the CLI reads the environment, as it does by contract.
Nothing is patched.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import pytest

from shared.bootstrap import App, build_app, use_app
from shared.cli import main
from shared.errors import TrackingError, TrackingUnavailable
from shared.events import parse_event
from shared.notify.sinks import Channel, MemoryCardSink
from shared.notify.teams import Delivery
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.notifications import notify
from shared.usecases.run_event import handle_events
from tests.conftest import free_port
from tests.event_samples import cloud_event, event_grid_event, on_run_event_function, run_event
from tests.receiver import card_text
from tests.support import make_run, settings

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(mlflow_server):
    return MlflowGateway(mlflow_server.uri)


def handle(gateway, the_settings, event):
    return handle_events([parse_event(event)], gateway, the_settings, datetime.now(UTC))


def only(report):
    (record,) = report.records
    return record


# -- the use case: events are hints -----------------------------------------------------


def test_event_for_a_deleted_run_is_skipped(gateway, client, experiment, mlflow_server):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    client.delete_run(run_id)
    the_settings = settings(mlflow_server.uri, promotion_metric="auc", promotion_threshold="0.8")

    record = only(handle(gateway, the_settings, run_event(run_id, experiment_id, name)))

    assert (record.outcome, record.reason) == ("skipped", "run was deleted")
    assert client.search_registered_models(f"name = '{name}'") == []


def test_event_for_a_run_that_never_existed_is_skipped(gateway, mlflow_server):
    record = only(handle(gateway, settings(mlflow_server.uri), run_event("f" * 32)))
    assert (record.outcome, record.reason) == ("skipped", "run no longer exists")
    assert record.details["event_type"].endswith("RunCompleted")


def test_event_for_a_run_still_going_is_skipped(gateway, client, experiment, mlflow_server):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, status="RUNNING")
    event = run_event(run_id, experiment_id, name)

    record = only(handle(gateway, settings(mlflow_server.uri, required_tags="owner"), event))

    assert record.outcome == "skipped"
    assert record.reason == "run is RUNNING, not finished yet (the sweep will catch up)"
    assert "governance.compliance" not in client.get_run(run_id).data.tags


def test_event_outside_the_experiments_in_scope_is_skipped(
    gateway, client, experiment, mlflow_server
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id)
    the_settings = settings(mlflow_server.uri, experiments="other-*", required_tags="owner")

    record = only(handle(gateway, the_settings, run_event(run_id, experiment_id, name)))

    assert record.reason == f"experiment {name} is outside GOVERNANCE_EXPERIMENTS"
    assert "governance.compliance" not in client.get_run(run_id).data.tags


def test_ignored_events_are_acknowledged_in_the_report(gateway, mlflow_server):
    event = run_event("r1", schema="cloudevents", kind="RunStatusChanged", status="Running")
    record = only(handle(gateway, settings(mlflow_server.uri), event))
    assert (record.outcome, record.reason) == (
        "skipped",
        "ignored: run status Running is not terminal",
    )


@pytest.mark.parametrize(("status", "event_status"), [("FAILED", "Failed"), ("KILLED", "Canceled")])
def test_failed_run_produces_a_failure_notice(
    gateway, client, experiment, mlflow_server, status, event_status
):
    experiment_id, name = experiment
    run_id = make_run(
        client,
        experiment_id,
        status=status,
        duration_hours=0.5,
        name="rf-07",
        tags={"mlflow.user": "ben"},
    )
    event = run_event(
        run_id,
        experiment_id,
        name,
        schema="cloudevents",
        kind="RunStatusChanged",
        status=event_status,
    )

    record = only(handle(gateway, settings(mlflow_server.uri), event))

    assert (record.action, record.outcome, record.run_id) == ("notify", "applied", run_id)
    assert dict(record.details) == {
        "topic": "run-failed",
        "status": status,
        "run_name": "rf-07",
        "owner": "ben",
        "duration_s": "1800",
        "run_url": f"{mlflow_server.uri}/#/experiments/{experiment_id}/runs/{run_id}",
    }
    # Handling only decides the notice; the run is marked once the card is delivered.
    assert "governance.failure_notified_at" not in client.get_run(run_id).data.tags

    # Event Grid delivers at least once: the replay does not alert a second time.
    replayed = only(handle(gateway, settings(mlflow_server.uri), event))
    assert (replayed.action, replayed.outcome) == ("notify", "applied")
    report = handle(gateway, settings(mlflow_server.uri), event)
    sink = MemoryCardSink()
    assert notify(report, Channel(sink, "memory"), gateway).ok
    assert len(sink.messages) == 1
    marked = report.records[-1]
    assert (marked.policy, marked.action, marked.outcome, marked.run_id) == (
        "run-event",
        "set-run-tags",
        "applied",
        run_id,
    )
    notified_at = client.get_run(run_id).data.tags["governance.failure_notified_at"]
    assert marked.details == {"set:governance.failure_notified_at": notified_at}

    replayed = only(handle(gateway, settings(mlflow_server.uri), event))
    assert (replayed.action, replayed.outcome) == ("skip", "skipped")
    assert replayed.reason == f"failure already notified at {notified_at}"


class _Undeliverable:
    """A channel whose every post fails, as Teams answering 503 after the retries does."""

    def post(self, card):
        return Delivery(False, 503, 3, "HTTP 503")


def test_failed_delivery_leaves_the_run_unmarked_so_the_next_event_alerts_again(
    gateway, client, experiment, mlflow_server
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, status="FAILED")
    event = run_event(run_id, experiment_id, name, schema="cloudevents", kind="RunStatusChanged")

    report = handle(gateway, settings(mlflow_server.uri), event)
    assert not notify(report, Channel(_Undeliverable(), "teams"), gateway).ok

    assert [r.action for r in report.records] == ["notify"]
    assert "governance.failure_notified_at" not in client.get_run(run_id).data.tags
    again = only(handle(gateway, settings(mlflow_server.uri), event))
    assert (again.action, again.outcome) == ("notify", "applied")


def test_dry_run_delivery_marks_nothing(gateway, client, experiment, mlflow_server):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, status="FAILED")
    event = run_event(run_id, experiment_id, name, schema="cloudevents", kind="RunStatusChanged")

    report = handle(gateway, settings(mlflow_server.uri, dry_run="true"), event)
    assert notify(report, Channel(MemoryCardSink(), "memory"), gateway).ok

    assert [(r.action, r.outcome) for r in report.records] == [("notify", "planned")]
    assert "governance.failure_notified_at" not in client.get_run(run_id).data.tags


def test_the_same_failed_run_twice_in_one_batch_gets_one_notice(
    gateway, client, experiment, mlflow_server
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, status="KILLED")
    event = run_event(run_id, experiment_id, name)

    report = handle_events(
        [parse_event(event), parse_event(event)],
        gateway,
        settings(mlflow_server.uri),
        datetime.now(UTC),
    )

    assert [(r.action, r.reason) for r in report.records] == [
        ("notify", "run ended KILLED"),
        ("skip", "failure notice already in this batch"),
    ]


class _ForbiddenExperiments:
    """An MlflowClient whose identity may read runs but not experiments (403)."""

    def __new__(cls, uri):
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

        class Forbidden(MlflowClient):
            def get_experiment(self, experiment_id):
                raise MlflowException("caller may not read experiments", PERMISSION_DENIED)

        return Forbidden(tracking_uri=uri, registry_uri=uri)


def test_an_experiment_that_cannot_be_read_is_a_failed_record_not_a_crash(
    client, experiment, mlflow_server
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    forbidden = MlflowGateway(mlflow_server.uri, client=_ForbiddenExperiments(mlflow_server.uri))

    event = run_event(run_id, experiment_id, name)
    event["data"].pop("experimentName")  # an event naming the experiment is not read again
    report = handle(forbidden, settings(mlflow_server.uri), event)

    record = only(report)
    assert (record.action, record.outcome, record.run_id) == ("read-experiment", "failed", run_id)
    assert record.reason.startswith(f"cannot read experiment {experiment_id}: get_experiment")
    assert "caller may not read experiments" in record.reason
    assert report.exit_code == 1


def test_unreachable_server_raises_unavailable_before_changing_anything(mlflow_server):
    dead = MlflowGateway(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TrackingUnavailable):
        handle(dead, settings(dead.tracking_uri), run_event("r1"))


# -- mlgov handle-event -----------------------------------------------------------------


@pytest.fixture
def env(app_env):
    """The process environment the CLI reads: the test server, promotion on."""
    app_env.setenv("GOVERNANCE_PROMOTION_METRIC", "auc_roc")
    app_env.setenv("GOVERNANCE_PROMOTION_THRESHOLD", "0.8")
    return app_env


def host(uri: str, experiment_name: str = "*", **env: str) -> App:
    """The Functions host's App for one test: `uri`, one experiment in scope, promotion on,
    cards kept in memory (`app.channel.sink.messages`)."""
    the_settings = settings(
        uri,
        experiments=experiment_name,
        promotion_metric="auc_roc",
        promotion_threshold="0.8",
        **env,
    )
    return build_app(the_settings, channel=Channel(MemoryCardSink(), "memory"))


def cli(capsys, tmp_path, events, *flags: str) -> tuple[int, dict, str]:
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events), encoding="utf-8")
    code = main(["handle-event", str(path), "--json", *flags])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_cli_run_completed_twice_leaves_exactly_one_champion_version(
    env, client, experiment, capsys, tmp_path
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc_roc": 0.91}, model=True)
    event = run_event(run_id, experiment_id, name)

    first, report, _ = cli(capsys, tmp_path, event)
    second, again, _ = cli(capsys, tmp_path, event)

    assert (first, second) == (0, 0)
    assert [d["outcome"] for d in report["decisions"]] == ["applied"]
    assert [d["reason"] for d in again["decisions"]] == [f"already promoted to {name}:1"]
    (version,) = client.search_model_versions(f"name = '{name}'")
    assert client.get_model_version(name, version.version).aliases == ["champion"]
    # The owner's tags; no announcement mark, as the run is tagged `governance.promoted_to`.
    bookkeeping = ("governance.registered_by", "governance.registered_until")
    assert all(version.tags.get(k) for k in bookkeeping)
    assert {k: v for k, v in version.tags.items() if k not in bookkeeping} == {
        "governance.source_run_id": run_id,
        "governance.metric": "auc_roc",
        "governance.metric_value": "0.91",
    }
    assert client.get_run(run_id).data.tags["governance.promoted_to"] == f"{name}:1"


def test_cli_handles_valid_events_then_exits_2_for_the_malformed(
    env, client, experiment, capsys, tmp_path
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc_roc": 0.91}, model=True)
    bad = run_event("x", experiment_id, name)
    bad["id"] = "evt-bad"
    bad["data"].pop("runId")

    code, report, err = cli(capsys, tmp_path, [bad, run_event(run_id, experiment_id, name)])

    assert code == 2
    assert [d["outcome"] for d in report["decisions"]] == ["applied"]
    assert report["rejected_events"] == [
        {"event_id": "evt-bad", "problem": "data.runId is missing"}
    ]
    assert "mlgov: invalid input: event evt-bad: data.runId is missing" in err
    assert len(client.search_model_versions(f"name = '{name}'")) == 1


def test_cli_input_that_is_not_json_exits_2(env, capsys, tmp_path):
    path = tmp_path / "events.json"
    path.write_text("<html>", encoding="utf-8")
    assert main(["handle-event", str(path)]) == 2
    assert "input is not JSON" in capsys.readouterr().err


def test_cli_dry_run_plans_and_changes_nothing(env, client, experiment, capsys, tmp_path):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc_roc": 0.91}, model=True)

    code, report, _ = cli(capsys, tmp_path, run_event(run_id, experiment_id, name), "--dry-run")

    assert code == 0
    assert report["dry_run"] is True
    assert [d["outcome"] for d in report["decisions"]] == ["planned"]
    assert client.search_model_versions(f"name = '{name}'") == []


def test_cli_unreachable_server_exits_1(env, capsys, tmp_path):
    env.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    path = tmp_path / "events.json"
    path.write_text(json.dumps(run_event("r1")), encoding="utf-8")
    assert main(["handle-event", str(path)]) == 1
    assert "unavailable" in capsys.readouterr().err


# -- the on_run_event function ------------------------------------------------------------


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_function_promotes_from_either_schema(mlflow_server, client, experiment, caplog, schema):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc_roc": 0.91}, model=True)
    event = run_event(run_id, experiment_id, name, schema=schema)
    build = event_grid_event if schema == "eventgrid" else cloud_event
    app = host(mlflow_server.uri, name)

    with use_app(app), caplog.at_level(logging.INFO, logger="functions.run_events"):
        on_run_event_function()(build(event))

    assert client.get_model_version_by_alias(name, "champion").run_id == run_id
    assert f"on_run_event {event['id']}: handle-event: 1 decisions: 1 applied" in caplog.text
    (message,) = app.channel.sink.messages  # the promotion card, on the app's channel
    assert f"Model promoted: {name} v1" in card_text(message)


def test_function_drops_a_malformed_event_without_raising(mlflow_server, caplog):
    event = run_event("r1")
    event["data"]["runId"] = 42
    app = host(mlflow_server.uri)

    with use_app(app), caplog.at_level(logging.ERROR, logger="functions.run_events"):
        on_run_event_function()(event_grid_event(event))

    assert f"on_run_event {event['id']} dropped (malformed, not retried): data.runId" in caplog.text
    assert app.channel.sink.messages == []


def test_function_drops_an_event_whose_run_id_the_server_rejects(mlflow_server, caplog):
    """An id MLflow calls invalid is a poison event: skipped, never redelivered for a day."""
    event = run_event("not a valid id!")
    app = host(mlflow_server.uri)

    with use_app(app), caplog.at_level(logging.INFO, logger="functions.run_events"):
        on_run_event_function()(event_grid_event(event))

    assert f"on_run_event {event['id']}: handle-event: 1 decisions: 0 applied" in caplog.text
    outcome = app.handle_events(event)
    (record,) = outcome.report.records
    assert (record.outcome, record.reason) == ("skipped", "not a valid run id on this server")
    assert outcome.redelivery is None


def test_a_refusal_other_than_access_is_recorded_not_redelivered():
    from shared.usecases.run_event import raise_for_redelivery

    class Refusing:
        """A server that refuses to read the run with `error` (nothing else is reached)."""

        tracking_uri = "http://127.0.0.1:9"

        def __init__(self, error):
            self.error = error

        def get_run(self, run_id):
            raise self.error

    def unread(reason, code):
        # The record the use case makes of the refusal, as the function then sees it.
        event = parse_event(run_event("a" * 32))
        refusing = Refusing(TrackingError(reason, code))
        report = handle_events([event], refusing, settings(), datetime.now(UTC))
        (record,) = report.records
        assert (record.action, record.outcome) == ("read-run", "failed")
        return report

    raise_for_redelivery(unread("BAD_REQUEST: nope", "BAD_REQUEST"))
    with pytest.raises(TrackingError):
        raise_for_redelivery(unread("denied", "PERMISSION_DENIED"))
    with pytest.raises(TrackingError):
        raise_for_redelivery(unread("failed with error code 403 != 200", ""))


def test_function_raises_when_the_server_is_down_so_event_grid_redelivers():
    dead = host(f"http://127.0.0.1:{free_port()}")
    with use_app(dead), pytest.raises(TrackingUnavailable):
        on_run_event_function()(cloud_event(run_event("r1", schema="cloudevents")))


# -- a tracking server that refuses this identity (403), as right after deployment -----


@pytest.fixture
def forbidding(env, httpserver):
    """A local HTTP server answering every MLflow call with 403, as Azure ML does while the
    Function App's new role assignment propagates; MLFLOW_TRACKING_URI points at it."""
    body = {"error_code": "PERMISSION_DENIED", "message": "identity lacks AzureML Data Scientist"}
    httpserver.expect_request(re.compile("/api/.*")).respond_with_json(body, status=403)
    env.setenv("MLFLOW_TRACKING_URI", httpserver.url_for("").rstrip("/"))
    return httpserver


def test_function_raises_when_the_run_cannot_be_read_so_event_grid_redelivers(forbidding):
    event = run_event("a" * 32, schema="cloudevents")
    refused = host(forbidding.url_for("").rstrip("/"))

    with (
        use_app(refused),
        pytest.raises(TrackingError, match="identity lacks AzureML Data Scientist"),
    ):
        on_run_event_function()(cloud_event(event))

    assert any(request.path.endswith("/runs/get") for request, _ in forbidding.log)


def test_cli_records_the_unreadable_run_as_failed(forbidding, capsys, tmp_path):
    code, report, _ = cli(capsys, tmp_path, run_event("a" * 32))

    assert code == 1
    (decision,) = report["decisions"]
    assert (decision["action"], decision["outcome"]) == ("read-run", "failed")
    assert "identity lacks AzureML Data Scientist" in decision["reason"]
