"""The request budget of one run event, counted by a loopback proxy in front of the real
server: a promotion in at most 8 tracking requests, a no-op event in at most 2."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.events import parse_event
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.run_event import handle_events
from tests.counting_proxy import CountingProxy
from tests.counting_proxy import proxy as proxy
from tests.event_samples import run_event
from tests.support import make_run, settings


def handle(proxy: CountingProxy, experiment: tuple[str, str], run_id: str, **env: str):
    experiment_id, name = experiment
    values = {"experiments": name, "promotion_metric": "auc", "promotion_threshold": "0.8"}
    the_settings = settings(proxy.uri, **{**values, "required_tags": "owner", **env})
    gateway = MlflowGateway(proxy.uri)
    event = parse_event(run_event(run_id, experiment_id, name))
    proxy.requests.clear()
    return handle_events([event], gateway, the_settings, datetime.now(UTC))


def outcomes(report) -> dict[str, str]:
    return {r.policy: r.outcome for r in report.records}


def test_a_promotion_beating_the_champion_takes_at_most_8_requests(
    proxy, client, experiment
) -> None:
    experiment_id, name = experiment
    first = make_run(client, experiment_id, metrics={"auc": 0.85}, model=True, tags={"owner": "a"})
    assert outcomes(handle(proxy, experiment, first))["promote-to-registry"] == "applied"
    better = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True, tags={"owner": "a"})

    report = handle(proxy, experiment, better)

    assert outcomes(report)["promote-to-registry"] == "applied", report.records
    assert client.get_model_version_by_alias(name, "champion").run_id == better
    tags = client.get_run(better).data.tags
    assert (tags["governance.compliance"], tags["governance.promoted_to"]) == (
        "compliant",
        f"{name}:2",
    )
    assert len(proxy.requests) <= 8, "\n".join(proxy.requests)


def test_a_first_promotion_creates_the_model_within_the_budget(proxy, client, experiment) -> None:
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True, tags={"owner": "a"})

    report = handle(proxy, experiment, run_id)

    assert outcomes(report)["promote-to-registry"] == "applied", report.records
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert sum("registered-models/create" in r for r in proxy.requests) == 1
    assert len(proxy.requests) <= 8, "\n".join(proxy.requests)


def test_a_noop_event_takes_at_most_2_requests(proxy, client, experiment) -> None:
    experiment_id, _ = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.5}, tags={"owner": "a"})
    handle(proxy, experiment, run_id)  # marks it compliant

    report = handle(proxy, experiment, run_id)

    assert outcomes(report)["promote-to-registry"] == "skipped"
    assert len(proxy.requests) <= 2, "\n".join(proxy.requests)


def test_an_event_out_of_scope_reads_the_run_only(proxy, client, experiment) -> None:
    experiment_id, _ = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True)
    report = handle(proxy, experiment, run_id, experiments=f"other-{uuid.uuid4().hex[:6]}")
    assert [r.outcome for r in report.records] == ["skipped"]
    # The event names the run's experiment: its name is not read again.
    assert proxy.requests == ["GET /api/2.0/mlflow/runs/get"]


def test_an_event_without_the_experiment_name_reads_the_experiment(
    proxy, client, experiment
) -> None:
    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.5}, tags={"owner": "a"})
    handle(proxy, experiment, run_id)  # marks it compliant
    event = run_event(run_id, experiment_id, name)
    event["data"].pop("experimentName")
    the_settings = settings(proxy.uri, experiments=name, required_tags="owner")
    proxy.requests.clear()
    report = handle_events(
        [parse_event(event)], MlflowGateway(proxy.uri), the_settings, datetime.now(UTC)
    )
    assert [r.outcome for r in report.records] == ["skipped"]
    assert proxy.requests == [
        "GET /api/2.0/mlflow/runs/get",
        "GET /api/2.0/mlflow/experiments/get",
    ]


def test_a_promotion_whose_card_is_delivered_stays_within_8_requests(
    proxy, client, experiment
) -> None:
    """Through the App, card delivered: the 8 of the promotion and nothing after the card.
    The run's `governance.promoted_to` (in its one `log-batch`) records the promotion, so the
    version gets no `governance.announced_at` mark; never MLflow's prompt check
    (`registered-models/get`)."""
    from shared.bootstrap import build_app
    from shared.notify.sinks import Channel, MemoryCardSink

    experiment_id, name = experiment
    run_id = make_run(client, experiment_id, metrics={"auc": 0.9}, model=True, tags={"owner": "a"})
    values = {"experiments": name, "promotion_metric": "auc", "promotion_threshold": "0.8"}
    the_settings = settings(proxy.uri, **{**values, "required_tags": "owner"})
    sink = MemoryCardSink()
    app = build_app(the_settings, gateway=MlflowGateway(proxy.uri), channel=Channel(sink, "memory"))
    proxy.requests.clear()

    outcome = app.handle_events(run_event(run_id, experiment_id, name))

    assert outcomes(outcome.report)["promote-to-registry"] == "applied", outcome.report.records
    assert outcome.delivered
    assert sink.messages
    version = client.get_model_version_by_alias(name, "champion")
    assert client.get_run(run_id).data.tags["governance.promoted_to"] == f"{name}:{version.version}"
    assert "governance.announced_at" not in version.tags
    assert not any("registered-models/get" in r for r in proxy.requests), proxy.requests
    assert not any(r.endswith("/model-versions/set-tag") for r in proxy.requests), proxy.requests
    assert proxy.requests[-1].endswith("/runs/log-batch"), proxy.requests
    assert len(proxy.requests) <= 8, "\n".join(proxy.requests)
