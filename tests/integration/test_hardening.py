"""Hardening: failure paths and contracts a mutation review found untested, on the real server.

Each test names the behaviour it pins; faults come from a loopback proxy in front of the
real MLflow server, or from a gateway (or MlflowClient) subclass that fails one chosen call.
"""

from __future__ import annotations

import json
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from shared import tags as T
from shared.bootstrap import reset_host_app
from shared.cli import main
from shared.engine.actions import DeleteRun
from shared.engine.executor import Executor
from shared.errors import TrackingError, TrackingUnavailable
from shared.events import parse_event
from shared.model import Experiment
from shared.policies import cleanup_failed_runs as cleanup_policy
from shared.policies.base import RunContext
from shared.policies.cleanup_failed_runs import CleanupFacts
from shared.settings import get_settings
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.run_event import handle_events
from shared.usecases.sweep import sweep
from tests.event_samples import event_grid_event, on_run_event_function, run_event
from tests.fault_proxy import INTERNAL_ERROR, Rule, _handler
from tests.support import make_run, settings

pytestmark = pytest.mark.integration


# -- a proxy answering a chosen status and body ---------------------------------------------


@contextmanager
def answering(upstream: str, rule: Rule, status: int, body: object) -> Iterator[str]:
    """`tests.fault_proxy`, but the requests its rule picks get `status` with `body`.

    A body that is bytes is sent as text/html, as a gateway in front of MLflow answers.
    """
    base = _handler(upstream, rule, [])

    class Answer(base):  # type: ignore[misc,valid-type]
        def _answer(self, code, headers, content):  # type: ignore[no-untyped-def]
            if content is INTERNAL_ERROR:  # the proxy's injected failure: ours instead
                code = status
                content = body
                headers = {
                    "Content-Type": "text/html" if isinstance(body, bytes) else "application/json"
                }
            super()._answer(code, headers, content)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def get_run_requests(method: str, path: str, body: object) -> bool:
    return path.split("?")[0].endswith("/runs/get")


def artifact_listings(method: str, path: str, body: object) -> bool:
    return path.split("?")[0].endswith("/mlflow-artifacts/artifacts")


def _clear_caches() -> None:
    # The Functions host's App is rebuilt from the environment as it is now.
    reset_host_app()


@pytest.fixture
def env(app_env):
    """The process environment the CLI and the functions read: the test server, one experiment."""
    return app_env


# -- 1. a 5xx from the tracking server is "unavailable": the invocation fails and is retried --

# With MLFLOW_HTTP_REQUEST_MAX_RETRIES=0, 500/502/503/504 come back from MLflow's client as
# "Max retries exceeded ... too many 503 error responses" (error code INTERNAL_ERROR). Other
# 5xx are not retried by the client and arrive as they are: a JSON error keeps its error
# code, an HTML page from a gateway becomes "failed with error code 5xx != 200".
FIVE_XX = {
    "503-retried-by-the-client": (503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "x"}),
    # Only the error code says "transient" (the text has no 5xx wording the gateway knows).
    "507-json-error-code": (507, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}),
    # Only the text says "transient": 501 maps to NOT_IMPLEMENTED, not a transient code.
    "501-html-page": (501, b"<html><body>501 Not Implemented</body></html>"),
    "507-html-page": (507, b"<html><body>Insufficient Storage</body></html>"),
}


@pytest.mark.parametrize("case", sorted(FIVE_XX))
def test_5xx_on_runs_get_fails_on_run_event_and_exits_1(
    env, client, experiment, mlflow_server, capsys, tmp_path, case
):
    status, body = FIVE_XX[case]
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id)
    env.setenv("GOVERNANCE_REQUIRED_TAGS", "owner")
    event = run_event(run_id, experiment_id, name)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")

    with answering(mlflow_server.uri, get_run_requests, status, body) as proxy:
        env.setenv("MLFLOW_TRACKING_URI", proxy)
        _clear_caches()
        with pytest.raises(TrackingUnavailable, match="unavailable during get_run"):
            on_run_event_function()(event_grid_event(event))

        assert main(["handle-event", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    assert "tracking server unavailable during get_run" in captured.err
    assert captured.out == ""  # failed as a whole: no report of half a batch
    assert "governance.compliance" not in client.get_run(run_id).data.tags


def test_5xx_html_page_on_the_artifact_listing_fails_the_promotion_event(
    env, client, experiment, mlflow_server
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    env.setenv("GOVERNANCE_PROMOTION_METRIC", "auc")
    env.setenv("GOVERNANCE_PROMOTION_THRESHOLD", "0.8")
    event = run_event(run_id, experiment_id, name)

    with answering(mlflow_server.uri, artifact_listings, 507, b"<html>busy</html>") as proxy:
        env.setenv("MLFLOW_TRACKING_URI", proxy)
        _clear_caches()
        # Not a `failed` record that acknowledges the event: the promotion would be lost.
        with pytest.raises(TrackingUnavailable, match="list_artifacts"):
            on_run_event_function()(event_grid_event(event))

    assert client.search_model_versions(f"name = '{name}'") == []


# -- gateways that fail one chosen call ----------------------------------------------------


class TagsRefusedFor(MlflowGateway):
    """`set_run_tags` is refused (403-like, permanent) for one run; the others go through."""

    def __init__(self, uri: str, run_id: str) -> None:
        super().__init__(uri)
        self.refused = run_id

    def set_run_tags(self, run_id, tags, delete=()):  # type: ignore[no-untyped-def]
        if run_id == self.refused:
            raise TrackingError(f"log_batch failed: PERMISSION_DENIED on {run_id}")
        super().set_run_tags(run_id, tags, delete)


class DeleteRefused(MlflowGateway):
    def delete_run(self, run_id: str) -> None:
        raise TrackingError(f"delete_run failed: PERMISSION_DENIED on {run_id}")


# -- 2. one failed action is recorded and the others go on -----------------------------------


def test_a_refused_tag_write_fails_that_run_only_and_the_sweep_goes_on(
    mlflow_server, client, experiment
):
    experiment_id, name = experiment
    # Runs are read newest first: the refused one (made last) comes before the other two.
    others = [make_run(client, experiment_id, ended_hours_ago=2) for _ in range(2)]
    refused = make_run(client, experiment_id, ended_hours_ago=1)
    the_settings = settings(
        mlflow_server.uri, experiments=name, required_tags="owner", cleanup_statuses=""
    )

    report = sweep(TagsRefusedFor(mlflow_server.uri, refused), the_settings, datetime.now(UTC))

    outcomes = {r.run_id: r.outcome for r in report.records}
    assert outcomes == {refused: "failed", others[0]: "applied", others[1]: "applied"}
    (failed,) = [r for r in report.records if r.outcome == "failed"]
    assert failed.action == "set-run-tags"
    assert "PERMISSION_DENIED" in failed.reason
    assert report.exit_code == 1
    assert all(client.get_run(r).data.tags[T.COMPLIANCE] == "noncompliant" for r in others)
    assert T.COMPLIANCE not in client.get_run(refused).data.tags


# -- 3. all tag writes for one run go in one request -----------------------------------------


class CountingClient(MlflowClient):
    """The real client, counting the tag-writing calls the gateway makes."""

    def __init__(self, uri: str) -> None:
        super().__init__(tracking_uri=uri, registry_uri=uri)
        self.batches: dict[str, list[dict[str, str]]] = {}
        self.single_tags: list[tuple[str, str]] = []

    def log_batch(self, run_id, metrics=(), params=(), tags=(), **kwargs):  # type: ignore[no-untyped-def]
        self.batches.setdefault(run_id, []).append({t.key: t.value for t in tags})
        return super().log_batch(run_id, metrics=metrics, params=params, tags=tags, **kwargs)

    def set_tag(self, run_id, key, value, **kwargs):  # type: ignore[no-untyped-def]
        self.single_tags.append((run_id, key))
        return super().set_tag(run_id, key, value, **kwargs)


def test_all_tags_for_a_run_are_written_in_one_log_batch(mlflow_server, client, experiment):
    experiment_id, name = experiment
    compliant = make_run(client, experiment_id, tags={"dataset": "v1"})
    missing = make_run(client, experiment_id, tags={"mlflow.user": ""})
    counting = CountingClient(mlflow_server.uri)
    the_settings = settings(
        mlflow_server.uri,
        experiments=name,
        required_tags="owner,dataset",
        tag_defaults='{"owner": "{user}"}',
        cleanup_statuses="",
    )

    report = sweep(
        MlflowGateway(mlflow_server.uri, client=counting), the_settings, datetime.now(UTC)
    )

    assert report.counts()["applied"] == 2
    assert counting.single_tags == []
    assert counting.batches == {
        compliant: [{"owner": "tester", T.COMPLIANCE: "compliant"}],
        missing: [{T.COMPLIANCE: "noncompliant", T.MISSING_TAGS: "owner,dataset"}],
    }


# -- 4. restore --dry-run changes nothing ----------------------------------------------------


def test_restore_dry_run_plans_and_restores_nothing(env, client, experiment, capsys):
    experiment_id, _ = experiment
    env.setenv("GOVERNANCE_CLEANUP_STATUSES", "FAILED")
    old = {make_run(client, experiment_id, status="FAILED", ended_hours_ago=100) for _ in range(2)}
    assert main(["sweep", "--json"]) == 0
    capsys.readouterr()
    assert all(client.get_run(r).info.lifecycle_stage == "deleted" for r in old)

    assert main(["restore", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["dry_run"] is True
    assert {d["run_id"]: d["outcome"] for d in report["decisions"]} == dict.fromkeys(old, "planned")
    assert report["restore"]["restored"] == 2
    for run_id in old:
        run = client.get_run(run_id)
        assert run.info.lifecycle_stage == "deleted"
        assert T.DELETED_REASON in run.data.tags
        assert T.RESTORED_AT not in run.data.tags


# -- 5. cleanup re-reads the run before deleting; 6. a failed delete leaves no tags ----------


def _delete_action(gateway: MlflowGateway, run_id: str, experiment_name: str) -> DeleteRun:
    """The DeleteRun the cleanup policy decides for `run_id` as it is now."""
    the_settings = settings(gateway.tracking_uri, cleanup_statuses="FAILED")
    run = gateway.get_run(run_id)
    context = RunContext(
        now=datetime.now(UTC),
        experiment=Experiment(experiment_id=run.experiment_id, name=experiment_name),
        policy=the_settings.policy_for(experiment_name),
    )
    (action,) = cleanup_policy.evaluate(run, context, CleanupFacts())
    assert isinstance(action, DeleteRun)
    return action


def test_delete_skips_a_run_protected_after_the_decision(mlflow_server, client, experiment):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, status="FAILED", ended_hours_ago=100)
    gateway = MlflowGateway(mlflow_server.uri)
    action = _delete_action(gateway, run_id, name)
    client.set_tag(run_id, "governance.keep", "true")  # someone protects it meanwhile

    record = Executor(gateway, dry_run=False).apply_one(action)

    assert record.outcome == "skipped"
    assert record.reason == "protected by governance.keep=true since the sweep decided"
    run = client.get_run(run_id)
    assert run.info.lifecycle_stage == "active"
    assert T.DELETED_REASON not in run.data.tags


def test_delete_skips_a_run_whose_status_changed_after_the_decision(
    mlflow_server, client, experiment
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, status="FAILED", ended_hours_ago=100)
    gateway = MlflowGateway(mlflow_server.uri)
    action = _delete_action(gateway, run_id, name)
    client.update_run(run_id, status="FINISHED")  # a rerun marked it finished meanwhile

    record = Executor(gateway, dry_run=False).apply_one(action)

    assert record.outcome == "skipped"
    assert record.reason == "status changed to FINISHED since the sweep decided"
    assert client.get_run(run_id).info.lifecycle_stage == "active"


def test_a_refused_delete_rolls_back_the_deletion_tags(mlflow_server, client, experiment):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, status="FAILED", ended_hours_ago=100)
    the_settings = settings(
        mlflow_server.uri, experiments=name, cleanup_statuses="FAILED", cleanup_after_hours="72"
    )

    report = sweep(DeleteRefused(mlflow_server.uri), the_settings, datetime.now(UTC))

    (record,) = [r for r in report.records if r.action == "delete-run"]
    assert record.outcome == "failed"
    assert "PERMISSION_DENIED" in record.reason
    assert report.exit_code == 1
    run = client.get_run(run_id)
    assert run.info.lifecycle_stage == "active"
    assert not [k for k in run.data.tags if k.startswith("governance.deleted_")]
    (row,) = report.extra["experiments"]
    assert (row["deleted"], row["failed"]) == (0, 1)


# -- 7. per-experiment promoted count --------------------------------------------------------


def test_sweep_counts_promotions_per_experiment(mlflow_server, client):
    prefix = f"promo-{uuid.uuid4().hex[:8]}"
    ids = {n: client.create_experiment(f"{prefix}-{n}") for n in ("a", "b", "c")}
    # a: two runs clear the threshold (one version: the best); b: one; c: none does.
    make_run(client, ids["a"], metrics={"auc": 0.91}, model=True)
    best_a = make_run(client, ids["a"], metrics={"auc": 0.95}, model=True)
    make_run(client, ids["b"], metrics={"auc": 0.85}, model=True)
    make_run(client, ids["c"], metrics={"auc": 0.5}, model=True)
    the_settings = settings(
        mlflow_server.uri,
        experiments=f"{prefix}-*",
        promotion_metric="auc",
        promotion_threshold="0.8",
        cleanup_statuses="",
    )

    report = sweep(MlflowGateway(mlflow_server.uri), the_settings, datetime.now(UTC))

    rows = {row["experiment"]: row for row in report.extra["experiments"]}
    assert {name: row["promoted"] for name, row in rows.items()} == {
        f"{prefix}-a": 1,
        f"{prefix}-b": 1,
        f"{prefix}-c": 0,
    }
    assert client.get_model_version_by_alias(f"{prefix}-a", "champion").run_id == best_a


# -- 8. a per-experiment policy file, end to end ---------------------------------------------


def test_policy_file_overrides_apply_per_experiment_in_one_sweep(env, client, capsys, tmp_path):
    prefix = f"pf-{uuid.uuid4().hex[:8]}"
    strict, lax = f"{prefix}-prod", f"{prefix}-scratch"
    ids = {name: client.create_experiment(name) for name in (strict, lax)}
    runs = {
        name: {
            "finished": make_run(client, ids[name], ended_hours_ago=1),
            "failed": make_run(client, ids[name], status="FAILED", ended_hours_ago=30),
        }
        for name in (strict, lax)
    }
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        f'overrides:\n  - experiments: "{prefix}-scratch*"\n'
        "    required_tags: []\n    cleanup_after_hours: 12\n",
        encoding="utf-8",
    )
    env.setenv("GOVERNANCE_EXPERIMENTS", f"{prefix}-*")
    env.setenv("GOVERNANCE_REQUIRED_TAGS", "owner")
    env.setenv("GOVERNANCE_CLEANUP_STATUSES", "FAILED")
    env.setenv("GOVERNANCE_CLEANUP_AFTER_HOURS", "72")
    env.setenv("GOVERNANCE_CATCHUP_HOURS", "48")
    env.setenv("GOVERNANCE_POLICY_FILE", str(policy_file))

    assert main(["sweep", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    # prod: default policy, owner required; the failed run is within the 72 h grace period.
    for run_id in runs[strict].values():
        run = client.get_run(run_id)
        assert run.info.lifecycle_stage == "active"
        assert run.data.tags[T.COMPLIANCE] == "noncompliant"
        assert run.data.tags[T.MISSING_TAGS] == "owner"
    # scratch: no tags required, a 12 h grace period: its failed run is deleted.
    assert client.get_run(runs[lax]["failed"]).info.lifecycle_stage == "deleted"
    assert T.COMPLIANCE not in client.get_run(runs[lax]["finished"]).data.tags
    deletions = [d["run_id"] for d in report["decisions"] if d["action"] == "delete-run"]
    assert deletions == [runs[lax]["failed"]]
    rows = {row["experiment"]: row for row in report["experiments"]}
    assert (rows[strict]["deleted"], rows[strict]["tagged"]) == (0, 2)
    assert (rows[lax]["deleted"], rows[lax]["tagged"]) == (1, 0)


# -- 12. an MLflow 2 style model folder, logged as run artifacts, is registered ---------------


def test_pyfunc_model_folder_logged_as_artifacts_is_promoted(
    env, client, experiment, mlflow_server
):
    import mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: list[str], params=None) -> list[str]:  # type: ignore[no-untyped-def]
            return model_input

    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.93}, status="RUNNING")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "model")
        mlflow.pyfunc.save_model(str(path), python_model=Echo(), pip_requirements=["mlflow"])
        client.log_artifacts(run_id, str(path), "model")
    client.set_terminated(run_id, "FINISHED")
    assert "model/MLmodel" in {f.path for f in client.list_artifacts(run_id, "model")}
    env.setenv("GOVERNANCE_PROMOTION_METRIC", "auc")
    env.setenv("GOVERNANCE_PROMOTION_THRESHOLD", "0.8")

    report = handle_events(
        [parse_event(run_event(run_id, experiment_id, name))],
        MlflowGateway(client.tracking_uri),
        get_settings(),
        datetime.now(UTC),
    )

    (record,) = [r for r in report.records if r.policy == "promote-to-registry"]
    assert record.outcome == "applied", record.reason
    assert record.details["source"] == f"runs:/{run_id}/model"
    (version,) = client.search_model_versions(f"name = '{name}'")
    assert version.run_id == run_id
    assert client.get_model_version_by_alias(name, "champion").version == version.version
    # The registered version loads back as the pyfunc model it is.
    with _use_tracking_uri(mlflow_server.uri):
        loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert loaded.metadata.flavors["python_function"]["loader_module"] == "mlflow.pyfunc.model"
