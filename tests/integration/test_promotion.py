"""Promotion through run events and the sweep, against the real MLflow server."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ENDPOINT_NOT_FOUND, PERMISSION_DENIED
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from shared.engine.executor import Executor
from shared.errors import TrackingError
from shared.events import parse_event
from shared.model import Experiment
from shared.policies.base import RunContext
from shared.policies.promote_to_registry import RegisterModelVersion, read_facts
from shared.policies.promote_to_registry import evaluate as evaluate_promotion
from shared.tracking.gateway import ModelSource
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.run_event import handle_events
from shared.usecases.sweep import sweep
from tests.event_samples import run_event
from tests.support import make_run, settings


@pytest.fixture
def gateway(mlflow_server):
    return MlflowGateway(mlflow_server.uri)


@pytest.fixture
def promo(mlflow_server, experiment):
    """Settings: promotion on `auc` >= 0.8 for the test's experiment only."""

    def build(**env: str):
        _, name = experiment
        values = {"experiments": name, "promotion_metric": "auc", "promotion_threshold": "0.8"}
        return settings(mlflow_server.uri, **{**values, **env})

    return build


def handle(gateway, the_settings, *events):
    return handle_events([parse_event(e) for e in events], gateway, the_settings, datetime.now(UTC))


def decisions(report, policy="promote-to-registry"):
    return [r for r in report.records if r.policy == policy]


def versions(client, name):
    return sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))


def test_run_completed_registers_tags_and_moves_the_alias(gateway, client, experiment, promo):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.91}, model=True, name="rf-01")

    report = handle(gateway, promo(), run_event(run_id, experiment_id, name))

    (record,) = decisions(report)
    assert record.outcome == "applied", record.reason
    assert record.action == "register-model-version"
    assert record.details["version"] == "1"
    assert record.details["alias_set_as"] == "alias"
    (version,) = versions(client, name)
    assert version.run_id == run_id
    # Who registered it (the owner announces it) and by when that invocation has ended.
    owner = ("governance.registered_by", "governance.registered_until")
    assert all(version.tags.get(key) for key in owner)
    assert {k: v for k, v in version.tags.items() if k not in owner} == {
        "governance.source_run_id": run_id,
        "governance.metric": "auc",
        "governance.metric_value": "0.91",
    }
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_run(run_id).data.tags["governance.promoted_to"] == f"{name}:1"


def test_duplicate_event_registers_no_second_version(gateway, client, experiment, promo):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.91}, model=True)
    event = run_event(run_id, experiment_id, name)

    handle(gateway, promo(), event)
    again = handle(gateway, promo(), event, event)

    assert [r.reason for r in decisions(again)] == [f"already promoted to {name}:1"] * 2
    assert len(versions(client, name)) == 1


def test_older_event_after_a_newer_champion_never_moves_the_alias_back(
    gateway, client, experiment, promo
):
    experiment_id, name = experiment
    older = make_run(client, experiment_id, metrics={"auc": 0.85}, model=True, ended_hours_ago=3)
    newer = make_run(client, experiment_id, metrics={"auc": 0.93}, model=True, ended_hours_ago=1)

    handle(gateway, promo(), run_event(newer, experiment_id, name))
    late = handle(gateway, promo(), run_event(older, experiment_id, name))

    (record,) = decisions(late)
    assert record.outcome == "skipped"
    assert record.reason == f"auc=0.85 does not beat champion {name} v1 (0.93)"
    assert [v.run_id for v in versions(client, name)] == [newer]
    assert client.get_model_version_by_alias(name, "champion").run_id == newer


def test_better_run_takes_over_the_alias(gateway, client, experiment, promo):
    experiment_id, name = experiment
    first = make_run(client, experiment_id, metrics={"auc": 0.85}, model=True)
    second = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)

    handle(gateway, promo(), run_event(first, experiment_id, name))
    report = handle(gateway, promo(), run_event(second, experiment_id, name, schema="cloudevents"))

    (record,) = decisions(report)
    assert record.outcome == "applied", record.reason
    assert (record.details["previous_version"], record.details["previous_value"]) == ("1", "0.85")
    champion = client.get_model_version_by_alias(name, "champion")
    assert (champion.version, champion.run_id) == ("2", second)


def test_minimize_goal_promotes_the_lower_loss(gateway, client, experiment, promo):
    experiment_id, name = experiment
    the_settings = promo(promotion_goal="minimize", promotion_threshold="0.5")
    high = make_run(client, experiment_id, metrics={"auc": 0.3}, model=True)
    low = make_run(client, experiment_id, metrics={"auc": 0.2}, model=True)
    too_high = make_run(client, experiment_id, metrics={"auc": 0.6}, model=True)

    handle(
        gateway, the_settings, *(run_event(r, experiment_id, name) for r in (high, low, too_high))
    )

    assert [v.run_id for v in versions(client, name)] == [high, low]
    assert client.get_model_version_by_alias(name, "champion").run_id == low
    assert "governance.promoted_to" not in client.get_run(too_high).data.tags


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ({}, "no metric auc"),
        ({"auc": math.nan}, "auc is nan, not a finite number"),
        ({"auc": 0.7}, "auc=0.7 is below the threshold 0.8"),
    ],
    ids=["no metric", "NaN metric", "below threshold"],
)
def test_runs_that_do_not_qualify_register_nothing(
    gateway, client, experiment, promo, metrics, reason
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics=metrics, model=True)

    report = handle(gateway, promo(), run_event(run_id, experiment_id, name))

    assert [(r.outcome, r.reason) for r in decisions(report)] == [("skipped", reason)]
    assert versions(client, name) == []


def test_noncompliant_run_is_tagged_and_not_promoted(gateway, client, experiment, promo):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.95}, model=True)

    report = handle(gateway, promo(required_tags="owner"), run_event(run_id, experiment_id, name))

    assert [r.outcome for r in decisions(report, "require-tags")] == ["applied"]
    (record,) = decisions(report)
    assert record.reason == "noncompliant (missing owner): not promoted"
    assert client.get_run(run_id).data.tags["governance.compliance"] == "noncompliant"
    assert versions(client, name) == []


def test_tag_defaults_make_a_run_compliant_before_promotion(gateway, client, experiment, promo):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.95}, model=True)
    the_settings = promo(required_tags="owner", tag_defaults='{"owner": "{user}"}')

    report = handle(gateway, the_settings, run_event(run_id, experiment_id, name))

    assert [r.outcome for r in decisions(report)] == ["applied"]
    assert client.get_run(run_id).data.tags["owner"] == "tester"


def test_run_without_the_model_artifact_is_reported_not_crashed(gateway, client, experiment, promo):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.95}, model=False)

    report = handle(gateway, promo(), run_event(run_id, experiment_id, name))

    (record,) = decisions(report)
    assert record.outcome == "skipped"
    assert record.reason.startswith("no model at 'model' in this run")
    assert versions(client, name) == []
    assert "governance.promoted_to" not in client.get_run(run_id).data.tags


def test_mlflow3_logged_model_is_registered(gateway, client, experiment, promo, mlflow_server):
    import mlflow
    import mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, status="RUNNING")
    # The fluent API needs the global URI; restored after (env var included), so the gateway
    # below runs with a global URI that is not its own, as in the Functions host or the CLI.
    with _use_tracking_uri(mlflow_server.uri), mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Echo(), pip_requirements=["mlflow"]
        )
    assert client.list_artifacts(run_id) == []  # not a run artifact: a LoggedModel

    report = handle(gateway, promo(), run_event(run_id, experiment_id, name))

    (record,) = decisions(report)
    assert record.outcome == "applied", record.reason
    assert record.details["source"] == f"models:/{info.model_id}"
    (version,) = versions(client, name)
    assert version.run_id == run_id
    assert client.get_model_version_by_alias(name, "champion").version == version.version


def test_interrupted_promotion_is_finished_by_the_redelivery(gateway, client, experiment, promo):
    """A crash after registering (before the alias) leaves a version; the retry reuses it."""
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)

    report = handle(gateway, promo(), run_event(run_id, experiment_id, name))

    (record,) = decisions(report)
    assert record.outcome == "applied", record.reason
    assert "reused" in record.reason
    (version,) = versions(client, name)
    assert version.tags["governance.source_run_id"] == run_id
    assert client.get_model_version_by_alias(name, "champion").version == "1"


def test_alias_that_moved_to_a_better_version_meanwhile_stays(gateway, client, experiment, promo):
    """Compare-and-set: the decision saw no champion; a better one arrived before applying."""
    experiment_id, name = experiment
    mine = make_run(client, experiment_id, metrics={"auc": 0.88}, model=True)
    rival = make_run(client, experiment_id, metrics={"auc": 0.95}, model=True)
    the_settings = promo()
    context = RunContext(
        now=datetime.now(UTC),
        experiment=Experiment(experiment_id, name),
        policy=the_settings.policy_for(name),
    )
    run = gateway.get_run(mine)
    (action,) = evaluate_promotion(run, context, read_facts(run, context, gateway))
    assert isinstance(action, RegisterModelVersion)

    handle(gateway, the_settings, run_event(rival, experiment_id, name))
    record = Executor(gateway, dry_run=False).apply_one(action)

    assert record.outcome == "skipped"
    assert record.reason.startswith(f"champion moved meanwhile to {name} v1, as good or better")
    assert client.get_model_version_by_alias(name, "champion").run_id == rival
    assert [v.run_id for v in versions(client, name)] == [rival]


class _NoAliasClient:
    """An MlflowClient whose registry refuses aliases, as Azure ML may (unverified there)."""

    def __new__(cls, uri):
        from mlflow import MlflowClient

        class Refusing(MlflowClient):
            def set_registered_model_alias(self, name, alias, version):
                raise MlflowException("aliases are not supported", ENDPOINT_NOT_FOUND)

            def get_model_version_by_alias(self, name, alias):
                raise MlflowException("aliases are not supported", ENDPOINT_NOT_FOUND)

        return Refusing(tracking_uri=uri, registry_uri=uri)


def test_registry_refusing_aliases_falls_back_to_a_version_tag(
    client, experiment, promo, mlflow_server
):
    experiment_id, name = experiment
    gateway = MlflowGateway(mlflow_server.uri, client=_NoAliasClient(mlflow_server.uri))
    first = make_run(client, experiment_id, metrics={"auc": 0.85}, model=True)
    second = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    worse = make_run(client, experiment_id, metrics={"auc": 0.86}, model=True)

    report = handle(
        gateway, promo(), *(run_event(r, experiment_id, name) for r in (first, second, worse))
    )

    outcomes = [(r.outcome, r.details.get("alias_set_as")) for r in decisions(report)]
    assert outcomes == [
        ("applied", "tag governance.alias"),
        ("applied", "tag governance.alias"),
        ("skipped", None),
    ]
    assert "registry refused aliases" in decisions(report)[0].reason
    by_run = {v.run_id: v for v in versions(client, name)}
    assert set(by_run) == {first, second}
    assert by_run[second].tags["governance.alias"] == "champion"
    assert "governance.alias" not in by_run[first].tags


def test_dry_run_plans_the_same_promotion_and_changes_nothing(gateway, client, experiment, promo):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.91}, model=True)

    report = handle(gateway, promo(dry_run="true"), run_event(run_id, experiment_id, name))

    (record,) = decisions(report)
    assert record.outcome == "planned"
    assert record.details["model_name"] == name
    assert record.details["value"] == "0.91"
    assert versions(client, name) == []
    assert "governance.promoted_to" not in client.get_run(run_id).data.tags


def test_sweep_promotes_only_the_best_trial_and_is_idempotent(gateway, client, experiment, promo):
    experiment_id, name = experiment
    trials = {
        auc: make_run(client, experiment_id, metrics={"auc": auc}, model=True, name=f"t-{auc}")
        for auc in (0.86, 0.93, 0.9, 0.7)
    }
    now = datetime.now(UTC)

    report = sweep(gateway, promo(), now)

    by_run = {r.run_id: r for r in decisions(report)}
    assert by_run[trials[0.93]].outcome == "applied"
    assert by_run[trials[0.86]].reason == (
        "not the best of this sweep: t-0.93 has auc=0.93 (this run 0.86)"
    )
    assert by_run[trials[0.9]].outcome == "skipped"
    assert by_run[trials[0.7]].reason == "auc=0.7 is below the threshold 0.8"
    assert [v.run_id for v in versions(client, name)] == [trials[0.93]]

    again = sweep(gateway, promo(), now)

    assert all(r.outcome == "skipped" for r in decisions(again))
    assert len(versions(client, name)) == 1


def test_sweep_best_trial_without_a_model_does_not_block_the_others(
    gateway, client, experiment, promo
):
    experiment_id, name = experiment
    make_run(client, experiment_id, metrics={"auc": 0.97}, model=False)
    with_model = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)

    sweep(gateway, promo(), datetime.now(UTC))

    assert [v.run_id for v in versions(client, name)] == [with_model]


def test_model_gone_between_decision_and_apply_is_skipped_not_crashed(
    gateway, client, experiment, promo
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=False)
    the_settings = promo(promotion_artifact_path="elsewhere")
    context = RunContext(
        now=datetime.now(UTC),
        experiment=Experiment(experiment_id, name),
        policy=the_settings.policy_for(name),
    )
    run = gateway.get_run(run_id)
    facts = dataclasses.replace(
        read_facts(run, context, gateway), model_source=ModelSource(f"runs:/{run_id}/elsewhere")
    )
    (action,) = evaluate_promotion(run, context, facts)
    # A decision that carries no model (not one found then) makes the handler look itself.
    action = dataclasses.replace(action, source=None)

    record = Executor(gateway, dry_run=False).apply_one(action)

    assert record.outcome == "skipped"
    assert record.reason.startswith("no model at 'elsewhere' in this run")
    assert versions(client, name) == []


def test_sweep_catches_up_a_missed_event_the_same_way(gateway, client, experiment, promo):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)

    sweep(gateway, promo(), datetime.now(UTC))
    late_event = handle(gateway, promo(), run_event(run_id, experiment_id, name))

    assert [r.reason for r in decisions(late_event)] == [f"already promoted to {name}:1"]
    assert len(versions(client, name)) == 1


def test_an_artifact_folder_without_mlmodel_is_not_a_model(gateway, client, experiment, promo):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9})
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "notes.txt").write_text("not a model", encoding="utf-8")
        client.log_artifacts(run_id, folder, "model")

    report = handle(gateway, promo(), run_event(run_id, experiment_id, name))

    assert decisions(report)[0].outcome == "skipped"
    assert versions(client, name) == []


# -- races, refusals and awkward names ---------------------------------------------------


class _RacedGateway(MlflowGateway):
    """A gateway whose registration is overtaken: just before it creates its version, a
    second invocation handles the same event from start to end (Event Grid redelivering
    while the first still runs, or the sweep catching up the same run)."""

    def __init__(self, uri, rival):
        super().__init__(uri)
        self.rival = rival

    def create_model_version(self, name, source, run_id, tags, **kwargs):
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival()
        return super().create_model_version(name, source, run_id, tags, **kwargs)


def test_concurrent_registrations_of_one_run_leave_one_version_with_the_alias(
    gateway, client, experiment, promo, mlflow_server
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.91}, model=True)
    event = run_event(run_id, experiment_id, name)
    rival_report = []
    raced = _RacedGateway(
        mlflow_server.uri, lambda: rival_report.append(handle(gateway, promo(), event))
    )

    report = handle(raced, promo(), event)

    # The rival found nothing registered, so it registered v1 and moved the alias.
    (rival,) = decisions(rival_report[0])
    assert (rival.outcome, rival.details["version"]) == ("applied", "1")
    # This invocation had decided before the rival registered; it created v2, found v1 of
    # the same run, deleted its own duplicate and left the promotion (and its card) to the
    # invocation that registered the survivor: one of them reports it applied.
    (record,) = decisions(report)
    assert record.outcome == "skipped", record.reason
    assert "a concurrent registration made v1 first: v2 deleted" in record.reason
    assert "being promoted by the invocation that registered it" in record.reason
    (version,) = versions(client, name)
    assert (version.version, version.run_id) == ("1", run_id)
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_run(run_id).data.tags["governance.promoted_to"] == f"{name}:1"


def test_a_duplicate_registered_after_ours_is_left_to_the_call_that_made_it(
    gateway, client, experiment, promo
):
    """The lower version wins: a call never deletes a version it did not create."""
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.91}, model=True)

    class LateRival(MlflowGateway):
        def create_model_version(self, name, source, run_id, tags, **kwargs):
            ours = super().create_model_version(name, source, run_id, tags, **kwargs)
            client.create_model_version(name, source.source, run_id=run_id)  # the rival's v2
            return ours

    event = run_event(run_id, experiment_id, name)
    report = handle(LateRival(gateway.tracking_uri), promo(), event)

    (record,) = decisions(report)
    assert (record.outcome, record.details["version"]) == ("applied", "1")
    assert [v.version for v in versions(client, name)] == ["1", "2"]
    assert client.get_model_version_by_alias(name, "champion").version == "1"


@pytest.mark.parametrize("alias", ["v1", "latest", "Champion!"])
def test_an_alias_the_registry_rejects_is_an_error_not_the_tag_fallback(
    gateway, client, experiment, alias
):
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, model=True)
    source = ModelSource(source=f"runs:/{run_id}/model")
    version = gateway.create_model_version(name, source, run_id, {})

    with pytest.raises(TrackingError, match="set_registered_model_alias failed"):
        gateway.set_alias(name, alias, version.version)

    assert "governance.alias" not in client.get_model_version(name, version.version).tags


class _ForbiddenArtifactsClient:
    """An MlflowClient whose identity may not list artifacts (403), as a missing role gives."""

    def __new__(cls, uri):
        from mlflow import MlflowClient

        class Forbidden(MlflowClient):
            def list_artifacts(self, run_id, path=None):
                raise MlflowException("caller may not list artifacts", PERMISSION_DENIED)

        return Forbidden(tracking_uri=uri, registry_uri=uri)


def test_a_refused_lookup_fails_that_policy_and_keeps_what_was_applied_before(
    client, experiment, promo, mlflow_server
):
    experiment_id, name = experiment
    gateway = MlflowGateway(mlflow_server.uri, client=_ForbiddenArtifactsClient(mlflow_server.uri))
    run_id = make_run(client, experiment_id, metrics={"auc": 0.91}, model=True)
    the_settings = promo(required_tags="owner", tag_defaults='{"owner": "{user}"}')

    report = handle(gateway, the_settings, run_event(run_id, experiment_id, name))

    tagging, promotion = report.records
    assert (tagging.policy, tagging.outcome) == ("require-tags", "applied")
    assert (promotion.policy, promotion.action, promotion.outcome) == (
        "promote-to-registry",
        "evaluate",
        "failed",
    )
    assert promotion.reason.startswith("could not decide: list_artifacts failed: ")
    assert "caller may not list artifacts" in promotion.reason
    assert report.exit_code == 1
    tags = client.get_run(run_id).data.tags
    assert (tags["owner"], tags["governance.compliance"]) == ("tester", "compliant")
    assert versions(client, name) == []


def test_a_model_name_with_both_quote_kinds_is_filtered_on_the_client(
    gateway, client, experiment, promo
):
    """No MLflow filter literal can hold both quote kinds: such a name is compared on the
    client instead of failing the promotion (or, before, the whole event)."""
    experiment_id, experiment_name = experiment
    name = f"""churn 'v2' "{experiment_name}" """.strip()
    older = make_run(client, experiment_id, metrics={"auc": 0.85}, model=True)
    newer = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    the_settings = promo(promotion_model_name="churn 'v2' \"{experiment_name}\"")

    report = handle(
        gateway,
        the_settings,
        run_event(older, experiment_id, experiment_name),
        run_event(newer, experiment_id, experiment_name),
        run_event(newer, experiment_id, experiment_name),
    )

    assert [r.outcome for r in decisions(report)] == ["applied", "applied", "skipped"]
    registered = [v for v in client.search_model_versions() if v.name == name]
    assert sorted((v.version, v.run_id) for v in registered) == [("1", older), ("2", newer)]
    assert client.get_model_version_by_alias(name, "champion").run_id == newer


class _LoggedModelSearches:
    """An MlflowClient that records the LoggedModel filters sent; `refuse` makes it answer a
    filter on `source_run_id` as a server without that filter would."""

    def __new__(cls, uri, refuse=False):
        from mlflow import MlflowClient

        sent: list[str] = []

        class Recording(MlflowClient):
            filters = sent

            def search_logged_models(self, experiment_ids, filter_string=None, **kwargs):
                sent.append(filter_string or "")
                if refuse and "source_run_id" in (filter_string or ""):
                    raise MlflowException("unsupported filter", ENDPOINT_NOT_FOUND)
                return super().search_logged_models(experiment_ids, filter_string, **kwargs)

        return Recording(tracking_uri=uri, registry_uri=uri)


@pytest.mark.parametrize("refuse", [False, True], ids=["server filter", "refused: walk"])
def test_logged_models_are_looked_up_by_run_on_the_server(
    client, experiment, mlflow_server, refuse
):
    experiment_id, _ = experiment
    runs = [make_run(client, experiment_id) for _ in range(3)]
    models = {r: client.create_logged_model(experiment_id, "model", source_run_id=r) for r in runs}
    recording = _LoggedModelSearches(mlflow_server.uri, refuse=refuse)
    gateway = MlflowGateway(mlflow_server.uri, client=recording)

    source = gateway.find_model_source(gateway.get_run(runs[1]), "model")

    assert source == ModelSource(
        source=f"models:/{models[runs[1]].model_id}", model_id=models[runs[1]].model_id
    )
    narrow = f"name = 'model' AND source_run_id = '{runs[1]}'"
    assert recording.filters == ([narrow, "name = 'model'"] if refuse else [narrow])
    assert gateway.capabilities.logged_model_run_filter is not refuse
