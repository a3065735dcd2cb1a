"""The estate's App over in-memory gateways: events routed by workspace, outsiders dropped,
sweeps of every member (a broken one reported, the others done), the estate summary.

Each member gets its own `InMemoryGateway` through the injected factory; nothing is patched.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from shared import tags as T
from shared.app.estate import EstateApp, sweep_message
from shared.errors import TrackingUnavailable
from shared.estate import Member
from shared.notify.cards import estate_summary_card
from shared.notify.sinks import Channel, MemoryCardSink
from shared.tracking.memory import InMemoryGateway
from shared.usecases.summary import TOTAL_LABELS
from tests.event_samples import run_event
from tests.receiver import card_text
from tests.support import NOW, settings

SUB = "11111111-2222-3333-4444-555555555555"
NAMES = ("mlw-dev", "mlw-test", "mlw-prod")
EXPERIMENT = "churn"


def arm_id(name: str, group: str = "rg-ml") -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{name}"
    )


class Broken(InMemoryGateway):
    """A member whose server is down: every read fails as an unreachable server does."""

    def iter_experiments(self):  # type: ignore[no-untyped-def]
        raise TrackingUnavailable("connection refused")


def estate(tmp_path: Path | None = None, broken: str | None = None, **env: str):
    """An EstateApp of the three workspaces, an in-memory gateway each (by name), one
    experiment in each with one old failed run."""
    gateways: dict[str, InMemoryGateway] = {}
    runs: dict[str, str] = {}
    for name in NAMES:
        kind = Broken if name == broken else InMemoryGateway
        gateway = kind(f"memory://{name}", clock=lambda: NOW)
        experiment_id = gateway.create_experiment(EXPERIMENT)
        runs[name] = gateway.add_run(
            experiment_id,
            status="FAILED",
            start_time=NOW - timedelta(hours=101),
            end_time=NOW - timedelta(hours=100),
            user="ben",
        )
        gateways[name] = gateway

    def factory(member: Member) -> InMemoryGateway:
        return gateways[member.name]

    the_settings = settings(
        workspaces=",".join(arm_id(n) for n in NAMES),
        experiments=EXPERIMENT,
        cleanup_statuses="FAILED",
        **env,
    )
    app = EstateApp(the_settings, factory, Channel(MemoryCardSink(), "memory"), lambda: NOW)
    return app, gateways, runs


def event_for(name: str, run_id: str, experiment_id: str = "1", **kw: str) -> dict[str, object]:
    event = run_event(run_id, experiment_id, EXPERIMENT, **kw)
    event["topic" if "topic" in event else "source"] = arm_id(name)
    return event


def finished_run(gateway: InMemoryGateway) -> str:
    (experiment,) = InMemoryGateway.iter_experiments(gateway)
    return gateway.add_run(
        experiment.experiment_id,
        start_time=NOW - timedelta(hours=2),
        end_time=NOW - timedelta(hours=1),
        user="ben",
    )


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_an_event_governs_its_workspace_and_no_other(schema):
    app, gateways, _ = estate(required_tags="team", tag_defaults='{"team": "core"}')
    targets = {name: finished_run(gateway) for name, gateway in gateways.items()}
    # In-memory ids are per gateway: the same run id names a run in each workspace.
    experiment_id = gateways["mlw-test"].get_run(targets["mlw-test"]).experiment_id

    outcome = app.route(event_for("mlw-test", targets["mlw-test"], experiment_id, schema=schema))

    assert outcome is not None
    assert gateways["mlw-test"].get_run(targets["mlw-test"]).tags.get("team") == "core"
    for other in ("mlw-dev", "mlw-prod"):
        assert "team" not in gateways[other].get_run(targets[other]).tags


def test_the_topic_is_compared_in_any_case():
    app, gateways, _ = estate(required_tags="team", tag_defaults='{"team": "core"}')
    run_id = finished_run(gateways["mlw-prod"])
    event = event_for("mlw-prod", run_id)
    event["topic"] = str(event["topic"]).upper()

    assert app.route(event) is not None
    assert gateways["mlw-prod"].get_run(run_id).tags["team"] == "core"


@pytest.mark.parametrize(
    "topic",
    [
        arm_id("mlw-other"),  # same subscription, not listed
        arm_id("mlw-dev", group="rg-elsewhere"),  # a listed name in another group
        "/subscriptions/x/resourceGroups/y",  # no workspace at all
        None,
    ],
)
def test_an_event_from_outside_the_estate_changes_nothing_anywhere(topic, caplog):
    app, gateways, _ = estate(required_tags="team", tag_defaults='{"team": "core"}')
    targets = {name: finished_run(gateway) for name, gateway in gateways.items()}
    event = event_for("mlw-dev", targets["mlw-dev"])
    if topic is None:
        del event["topic"]
    else:
        event["topic"] = topic

    with caplog.at_level(logging.WARNING, logger="shared.app.estate"):
        assert app.route(event) is None

    for name, gateway in gateways.items():
        assert "team" not in gateway.get_run(targets[name]).tags
    assert app.apps == {}  # no member's App was even built
    assert app.channel.sink.messages == []
    (line,) = [r.getMessage() for r in caplog.records]
    assert "not in the estate" in line
    assert "dropped" in line


def test_the_policy_file_applies_per_workspace(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        'overrides:\n  - workspaces: "mlw-prod"\n    tag_defaults: \'{"team": "prod-core"}\'\n',
        encoding="utf-8",
    )
    app, gateways, _ = estate(
        required_tags="team", tag_defaults='{"team": "core"}', policy_file=str(policy)
    )
    runs = {name: finished_run(gateways[name]) for name in ("mlw-dev", "mlw-prod")}
    for name, run_id in runs.items():
        assert app.route(event_for(name, run_id)) is not None

    assert gateways["mlw-prod"].get_run(runs["mlw-prod"]).tags["team"] == "prod-core"
    assert gateways["mlw-dev"].get_run(runs["mlw-dev"]).tags["team"] == "core"


def test_the_sweep_covers_every_member_each_with_its_own_card():
    app, gateways, runs = estate()

    swept = app.sweep()

    assert swept.exit_code == 0
    assert [s.member.name for s in swept.sweeps] == list(NAMES)
    for name, gateway in gateways.items():
        assert gateway.get_run(runs[name]).deleted
        assert gateway.get_run(runs[name]).tags[T.DELETED_REASON]
    texts = [card_text(m) for m in app.channel.sink.messages]
    assert len(texts) == 3
    assert {name for name in NAMES for text in texts if f"Workspace {name}" in text} == set(NAMES)
    assert [w["name"] for w in swept.report.extra["workspaces"]] == list(NAMES)
    assert {row["workspace"] for row in swept.report.extra["experiments"]} == set(NAMES)


def test_each_member_has_its_own_cleanup_guard():
    app, gateways, runs = estate(cleanup_max_runs="1")
    (experiment,) = gateways["mlw-dev"].iter_experiments()
    extra = gateways["mlw-dev"].add_run(
        experiment.experiment_id,
        status="FAILED",
        start_time=NOW - timedelta(hours=101),
        end_time=NOW - timedelta(hours=100),
    )

    app.sweep()

    # Two candidates in dev trip its guard; test and prod have one each and are cleaned.
    assert not gateways["mlw-dev"].get_run(runs["mlw-dev"]).deleted
    assert not gateways["mlw-dev"].get_run(extra).deleted
    assert gateways["mlw-test"].get_run(runs["mlw-test"]).deleted
    assert gateways["mlw-prod"].get_run(runs["mlw-prod"]).deleted


def test_a_member_whose_server_is_down_fails_alone():
    app, gateways, runs = estate(broken="mlw-test")

    swept = app.sweep()

    assert swept.exit_code == 1
    (failed,) = swept.failed
    assert failed.member.name == "mlw-test"
    assert "connection refused" in (failed.error or "")
    assert gateways["mlw-dev"].get_run(runs["mlw-dev"]).deleted
    assert gateways["mlw-prod"].get_run(runs["mlw-prod"]).deleted
    entry = next(w for w in swept.report.extra["workspaces"] if w["name"] == "mlw-test")
    assert entry["swept"] is False


def test_a_sweep_message_names_a_member_or_is_dropped(caplog):
    app, gateways, runs = estate()
    member = app.estate.select("mlw-prod")

    outcome = app.sweep_named(__import__("json").loads(sweep_message(member))["workspace"])
    assert outcome is not None
    assert gateways["mlw-prod"].get_run(runs["mlw-prod"]).deleted
    assert not gateways["mlw-dev"].get_run(runs["mlw-dev"]).deleted

    with caplog.at_level(logging.WARNING, logger="shared.app.estate"):
        assert app.sweep_named(arm_id("mlw-intruder")) is None
    assert any("not in the estate" in r.getMessage() for r in caplog.records)
    assert not gateways["mlw-dev"].get_run(runs["mlw-dev"]).deleted


def test_the_estate_summary_adds_up_and_lists_every_workspace():
    app, gateways, _ = estate()
    for gateway, extra in zip(gateways.values(), (1, 2, 3), strict=True):
        for _ in range(extra):
            finished_run(gateway)

    outcome = app.summary()

    summary = outcome.summary
    assert [w.name for w in summary.workspaces] == list(NAMES)
    finished = TOTAL_LABELS["finished"]
    assert [w.totals[finished] for w in summary.workspaces] == [1, 2, 3]
    for label in TOTAL_LABELS.values():
        assert summary.totals[label] == sum(w.totals[label] for w in summary.workspaces)
    assert summary.totals[finished] == 6
    assert summary.totals[TOTAL_LABELS["failed"]] == 0  # the failed runs ended 100 h ago
    (message,) = app.channel.sink.messages  # one card for the estate
    text = card_text(message)
    assert "3 workspaces" in text
    assert all(name in text for name in NAMES)
    assert outcome.report.extra["estate"]["totals"] == dict(summary.totals)


def test_a_workspace_that_cannot_be_summarised_is_a_row_of_its_own():
    app, _, _ = estate(broken="mlw-dev")

    outcome = app.summary()

    dev = outcome.summary.workspaces[0]
    assert dev.name == "mlw-dev"
    assert dev.error
    assert "connection refused" in dev.error
    assert all(w.error is None for w in outcome.summary.workspaces[1:])
    assert outcome.exit_code == 1
    assert "not summarised" in card_text(app.channel.sink.messages[0])


def test_the_estate_card_keeps_within_the_teams_limit_with_many_workspaces():
    from shared.notify.cards import (
        DEFAULT_LIMIT_BYTES,
        EstateSummary,
        WorkspaceActivity,
        fit,
        size_of,
    )

    labels = list(TOTAL_LABELS.values())
    rows = [
        WorkspaceActivity(f"mlw-team-{i:03}", dict.fromkeys(labels, i), f"https://ml.azure.com/{i}")
        for i in range(400)
    ]
    totals = {k: sum(r.totals[k] for r in rows) for k in labels}
    summary = EstateSummary(NOW - timedelta(hours=24), NOW, totals, rows)

    card = fit(estate_summary_card(summary))

    assert size_of(card) <= DEFAULT_LIMIT_BYTES
    text = card_text({"attachments": [{"content": card}]})
    assert "more workspaces" in text
    assert str(totals[labels[0]]) in text  # the totals survive the trimming


def test_a_scope_is_discovered_through_azure_ai_ml_again_at_each_sweep():
    """The scope's listing through the SDK's own client, on a transport answering the
    documented list payload; a workspace created between two sweeps is swept by the second."""
    from shared.app.azure import AzureSeam, AzureServices
    from shared.bootstrap import discovery
    from tests.azure_support import (
        RESOURCE_GROUP,
        SUBSCRIPTION,
        FakeAzure,
        StaticCredential,
        workspace_body,
    )

    listed = [workspace_body(name="mlw-alpha")]
    listing = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
        "/providers/Microsoft.MachineLearningServices/workspaces"
    )
    fake = FakeAzure().on("GET", listing, lambda _seen: (200, {"value": list(listed)}))
    services = AzureServices(None, AzureSeam(StaticCredential(), fake.transport()))
    the_settings = settings(
        workspace_scope=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}",
        experiments=EXPERIMENT,
        cleanup_statuses="FAILED",
    )
    gateways: dict[str, InMemoryGateway] = {}

    def factory(member: Member) -> InMemoryGateway:
        gateway = gateways[member.name] = InMemoryGateway(clock=lambda: NOW)
        gateway.create_experiment(EXPERIMENT)
        return gateway

    app = EstateApp(
        the_settings,
        factory,
        Channel(MemoryCardSink(), "memory"),
        lambda: NOW,
        discover=discovery(the_settings, services),
    )

    first = app.sweep()
    listed.append(workspace_body(name="mlw-beta"))
    second = app.sweep()

    assert [s.member.name for s in first.sweeps] == ["mlw-alpha"]
    assert [s.member.name for s in second.sweeps] == ["mlw-alpha", "mlw-beta"]
    assert {s.member.source for s in second.sweeps} == {"scope"}
    assert sorted(gateways) == ["mlw-alpha", "mlw-beta"]
    assert len([c for c in fake.calls("GET") if c.path == listing]) == 2


def test_the_summary_timer_posts_one_estate_card():
    from azure.functions.timer import TimerRequest

    from functions.summary import scheduled_summary
    from shared.bootstrap import use_estate

    app, gateways, _ = estate()
    finished_run(gateways["mlw-prod"])
    with use_estate(app):
        scheduled_summary.build().get_user_function()(TimerRequest(past_due=False))
    (message,) = app.channel.sink.messages
    text = card_text(message)
    assert "3 workspaces" in text
    assert all(name in text for name in NAMES)
