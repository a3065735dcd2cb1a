"""The tracking gateway against a real MLflow server."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import RunNotFound, TrackingUnavailable
from shared.tracking.client_defaults import HTTP_DEFAULTS, apply_client_defaults
from shared.tracking.gateway import ModelSource, RunQuery
from shared.tracking.links import run_url
from shared.tracking.mlflow_gateway import MlflowGateway
from tests.conftest import free_port
from tests.support import make_run


@pytest.fixture
def gateway(mlflow_server):
    return MlflowGateway(mlflow_server.uri)


def test_get_run_maps_the_entity(gateway, client, experiment):
    experiment_id, _ = experiment
    run_id = make_run(
        client,
        experiment_id,
        status="FAILED",
        tags={"owner": "ana"},
        metrics={"auc_roc": 0.91},
        ended_hours_ago=2,
        name="rf-01",
    )
    run = gateway.get_run(run_id)
    assert run.run_id == run_id
    assert run.experiment_id == experiment_id
    assert run.status == "FAILED"
    assert run.is_terminal
    assert run.run_name == "rf-01"
    assert run.user == "tester"
    assert run.tags["owner"] == "ana"
    assert run.metrics == {"auc_roc": 0.91}
    assert run.end_time is not None
    assert run.end_time.tzinfo is UTC
    age = datetime.now(UTC) - run.end_time
    assert timedelta(hours=1.9) < age < timedelta(hours=2.1)
    assert not run.deleted


def test_missing_run_raises_run_not_found(gateway):
    with pytest.raises(RunNotFound):
        gateway.get_run("0" * 32)


def test_iter_runs_filters_by_status_and_time(gateway, client, experiment):
    experiment_id, _ = experiment
    old_failed = make_run(client, experiment_id, status="FAILED", ended_hours_ago=100)
    new_failed = make_run(client, experiment_id, status="FAILED", ended_hours_ago=1)
    killed = make_run(client, experiment_id, status="KILLED", ended_hours_ago=100)
    finished = make_run(client, experiment_id, status="FINISHED", ended_hours_ago=1)
    running = make_run(client, experiment_id, status="RUNNING")
    now = datetime.now(UTC)

    def ids(**kwargs):
        return {r.run_id for r in gateway.iter_runs(RunQuery(experiment_id, **kwargs))}

    assert ids() == {old_failed, new_failed, killed, finished, running}
    assert ids(statuses=frozenset({"FAILED"})) == {old_failed, new_failed}
    assert ids(statuses=frozenset({"FAILED", "KILLED"})) == {old_failed, new_failed, killed}
    assert ids(statuses=frozenset()) == set()
    before = now - timedelta(hours=72)
    assert ids(statuses=frozenset({"FAILED"}), finished_before=before) == {old_failed}
    # The running run has no end: it has not finished after anything.
    assert ids(finished_after=now - timedelta(hours=24)) == {new_failed, finished}


def test_iter_runs_walks_every_page(mlflow_server, client, experiment):
    experiment_id, _ = experiment
    created = {make_run(client, experiment_id) for _ in range(7)}
    gateway = MlflowGateway(mlflow_server.uri, page_size=3)
    assert {r.run_id for r in gateway.iter_runs(RunQuery(experiment_id))} == created


def test_set_run_tags_sets_and_deletes(gateway, client, experiment):
    experiment_id, _ = experiment
    run_id = make_run(client, experiment_id, tags={"stale": "x"})
    gateway.set_run_tags(run_id, {"a": "1", "b": "2"}, delete=("stale", "never-there"))
    tags = client.get_run(run_id).data.tags
    assert tags["a"] == "1"
    assert tags["b"] == "2"
    assert "stale" not in tags


def test_child_runs_and_deleted_view(gateway, client, experiment):
    experiment_id, _ = experiment
    parent = make_run(client, experiment_id)
    child = make_run(client, experiment_id, tags={"mlflow.parentRunId": parent})
    make_run(client, experiment_id)
    assert [r.run_id for r in gateway.iter_child_runs(experiment_id, parent)] == [child]
    gateway.delete_run(child)
    assert list(gateway.iter_child_runs(experiment_id, parent)) == []
    deleted = list(gateway.iter_runs(RunQuery(experiment_id, deleted=True)))
    assert [r.run_id for r in deleted] == [child]
    assert deleted[0].deleted
    gateway.restore_run(child)
    assert not gateway.get_run(child).deleted


def test_experiments_are_listed(gateway, experiment):
    experiment_id, name = experiment
    found = {e.experiment_id: e.name for e in gateway.iter_experiments()}
    assert found[experiment_id] == name
    assert gateway.get_experiment(experiment_id).name == name
    assert gateway.get_experiment("987654321") is None


def test_model_source_and_registry_round_trip(gateway, client, experiment):
    experiment_id, name = experiment
    with_model = make_run(client, experiment_id, model=True)
    without = make_run(client, experiment_id)
    source = gateway.find_model_source(gateway.get_run(with_model), "model")
    assert source is not None
    assert source.source == f"runs:/{with_model}/model"
    assert gateway.find_model_source(gateway.get_run(without), "model") is None

    model_name = f"{name}-model"
    version = gateway.create_model_version(model_name, source, with_model, {"k": "v"})
    assert version.run_id == with_model
    assert version.tags["k"] == "v"
    assert gateway.run_has_model_versions(with_model)
    assert not gateway.run_has_model_versions(without)
    assert [v.version for v in gateway.find_model_versions(model_name, with_model)] == [
        version.version
    ]
    assert gateway.get_model_version_by_alias(model_name, "champion") is None
    assert gateway.set_alias(model_name, "champion", version.version) == "alias"
    champion = gateway.get_model_version_by_alias(model_name, "champion")
    assert champion is not None
    assert champion.version == version.version
    assert "champion" in champion.aliases


def test_run_url_for_each_kind_of_server(mlflow_server):
    from shared.model import Run

    run = Run(run_id="abc", experiment_id="3", status="FINISHED", start_time=None, end_time=None)
    assert run_url(mlflow_server.uri, run) == f"{mlflow_server.uri}/#/experiments/3/runs/abc"
    azure = (
        "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/1111/resourceGroups/rg"
        "/providers/Microsoft.MachineLearningServices/workspaces/ws"
    )
    assert run_url(azure, run) == (
        "https://ml.azure.com/runs/abc?wsid=/subscriptions/1111/resourcegroups/rg/workspaces/ws"
    )
    assert run_url("sqlite:///tmp/x.db", run) is None


def test_server_down_is_tracking_unavailable():
    gateway = MlflowGateway(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TrackingUnavailable):
        gateway.get_run("0" * 32)
    with pytest.raises(TrackingUnavailable):
        list(gateway.iter_experiments())


def test_run_url_never_carries_the_credentials_of_the_tracking_uri():
    from shared.model import Run

    run = Run(run_id="abc", experiment_id="3", status="FINISHED", start_time=None, end_time=None)
    assert run_url("https://alice:s3cret@mlflow.example.com:8443/base/", run) == (
        "https://mlflow.example.com:8443/base/#/experiments/3/runs/abc"
    )
    assert run_url("http://token@10.0.0.5:5000", run) == (
        "http://10.0.0.5:5000/#/experiments/3/runs/abc"
    )


def test_http_defaults_fit_event_grid_unless_the_user_set_them(monkeypatch):
    for key in HTTP_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "42")  # the user's own choice

    apply_client_defaults(os.environ)

    from mlflow.environment_variables import (
        MLFLOW_DISABLE_TELEMETRY,
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    # Read back through MLflow's own parsers: a value it cannot parse would fail every call.
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 42
    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 2
    assert MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 1
    assert MLFLOW_DISABLE_TELEMETRY.get() is True
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT")
    apply_client_defaults(os.environ)
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 10


def test_registration_waits_at_most_five_seconds_for_a_pending_version(
    client, experiment, mlflow_server
):
    from mlflow import MlflowClient

    waits = []

    class Recording(MlflowClient):
        def create_model_version(self, *args, await_creation_for=300, **kwargs):
            waits.append(await_creation_for)
            return super().create_model_version(
                *args, await_creation_for=await_creation_for, **kwargs
            )

    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, model=True)
    gateway = MlflowGateway(
        mlflow_server.uri, client=Recording(mlflow_server.uri, mlflow_server.uri)
    )
    gateway.create_model_version(name, ModelSource(f"runs:/{run_id}/model"), run_id, {})
    assert waits == [5]


def test_a_duplicate_version_can_be_deleted_twice(gateway, client, experiment):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, model=True)
    source = ModelSource(f"runs:/{run_id}/model")
    first = gateway.create_model_version(name, source, run_id, {})
    second = gateway.create_model_version(name, source, run_id, {})

    gateway.delete_model_version(name, second.version)
    gateway.delete_model_version(name, second.version)  # a racer removed it already: fine

    assert [v.version for v in gateway.find_model_versions(name, run_id)] == [first.version]
