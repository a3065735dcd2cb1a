"""The App's operations over the in-memory gateway: use-case behaviour without a server.

Each test builds the App as the composition root does, injecting `InMemoryGateway`, a channel
that keeps the cards and a fixed clock; nothing is patched.
"""

from __future__ import annotations

import json
from datetime import timedelta

from shared import tags as T
from shared.app import EXIT_FAILED, EXIT_INVALID, App
from shared.bootstrap import build_app
from shared.notify.sinks import Channel, MemoryCardSink
from shared.notify.teams import Delivery
from shared.tracking.capabilities import Capabilities
from shared.tracking.memory import InMemoryGateway
from tests.event_samples import run_event
from tests.receiver import card_text
from tests.support import NOW, settings

EXPERIMENT = "churn"


def hours_ago(hours: float):
    return NOW - timedelta(hours=hours)


def memory_app(gateway: InMemoryGateway, **env: str) -> App:
    """The App over `gateway`, EXPERIMENT in scope, cards kept in memory, the clock at NOW."""
    return build_app(
        settings(experiments=EXPERIMENT, **env),
        gateway=gateway,
        channel=Channel(MemoryCardSink(), "memory"),
        clock=lambda: NOW,
    )


def cards(app: App) -> list[str]:
    """The text of each message the app's channel received."""
    sink = app.channel.sink
    assert isinstance(sink, MemoryCardSink)
    return [card_text(message) for message in sink.messages]


def failed_run(gateway: InMemoryGateway, experiment_id: str, ended_hours_ago: float, **kw) -> str:
    ended = hours_ago(ended_hours_ago)
    start = kw.pop("start_time", ended - timedelta(minutes=30))
    return gateway.add_run(
        experiment_id, status="FAILED", start_time=start, end_time=ended, user="ben", **kw
    )


# -- cleanup -------------------------------------------------------------------------------


def test_cleanup_deletes_children_before_their_parent():
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    # The parent started last, so it is listed first: only the ordering puts children first.
    parent = failed_run(gateway, experiment_id, 100, start_time=hours_ago(101), name="search")
    children = [
        failed_run(gateway, experiment_id, 100, start_time=hours_ago(105 + i), parent_run_id=parent)
        for i in range(2)
    ]
    app = memory_app(gateway, cleanup_statuses="FAILED")

    outcome = app.sweep()

    deleted = [
        r.run_id
        for r in outcome.report.records
        if r.action == "delete-run" and r.outcome == "applied"
    ]
    assert set(deleted[:2]) == set(children)
    assert deleted[2:] == [parent]
    assert all(gateway.get_run(run_id).deleted for run_id in deleted)
    assert outcome.delivered
    (text,) = cards(app)
    assert "Cleanup: 3 runs deleted" in text


def test_a_parent_with_a_kept_child_is_not_deleted():
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    parent = failed_run(gateway, experiment_id, 100, name="search")
    child = failed_run(
        gateway, experiment_id, 100, parent_run_id=parent, tags={"governance.keep": "true"}
    )

    outcome = memory_app(gateway, cleanup_statuses="FAILED").sweep()

    assert not gateway.get_run(parent).deleted
    assert not gateway.get_run(child).deleted
    assert not any(r.action == "delete-run" for r in outcome.report.records)
    (spared,) = [r for r in outcome.report.records if r.run_id == parent]
    assert spared.reason.startswith("parent of runs that stay: ")
    assert child[:8] in spared.reason


def test_the_guard_deletes_nothing_above_the_cap():
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    runs = [failed_run(gateway, experiment_id, 100) for _ in range(3)]
    app = memory_app(gateway, cleanup_statuses="FAILED", cleanup_max_runs="2")

    outcome = app.sweep()

    assert not any(gateway.get_run(run_id).deleted for run_id in runs)
    (guard,) = [r for r in outcome.report.records if r.details.get("topic") == "cleanup-guard"]
    assert (guard.action, guard.outcome) == ("notify", "applied")
    assert (guard.details["candidates"], guard.details["cap"]) == ("3", "2")
    (row,) = outcome.report.extra["experiments"]
    assert (row["deleted"], row["skipped_by_guard"]) == (0, 3)
    assert outcome.exit_code == 0
    (text,) = cards(app)
    assert "Cleanup stopped: 3 runs matched, cap is 2" in text


# -- catch-up ------------------------------------------------------------------------------


def test_catch_up_governs_only_runs_that_finished_in_its_window():
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    recent = gateway.add_run(experiment_id, start_time=hours_ago(2), end_time=hours_ago(1))
    old = gateway.add_run(experiment_id, start_time=hours_ago(49), end_time=hours_ago(48))
    running = gateway.add_run(experiment_id, status="RUNNING", start_time=hours_ago(1))

    outcome = memory_app(gateway, required_tags="owner", catchup_hours="24").sweep()

    assert gateway.get_run(recent).tags[T.COMPLIANCE] == T.NONCOMPLIANT
    assert T.COMPLIANCE not in gateway.get_run(old).tags
    assert T.COMPLIANCE not in gateway.get_run(running).tags
    assert {r.run_id for r in outcome.report.records} == {recent}


def test_catch_up_alerts_a_missed_failure_once_marked_at_the_apps_clock():
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    failed = failed_run(gateway, experiment_id, 1, name="rf-07")
    app = memory_app(gateway)

    first = app.sweep()

    assert [(r.action, r.run_id) for r in first.report.records] == [
        ("notify", failed),
        ("set-run-tags", failed),
    ]
    assert gateway.get_run(failed).tags[T.FAILURE_NOTIFIED_AT] == NOW.isoformat()
    second = app.sweep()
    assert [r.action for r in second.report.records] == []
    assert second.delivery is None  # nothing to say: no card
    (text,) = cards(app)
    assert f"Run failed: rf-07 in {EXPERIMENT}" in text


def test_a_dry_run_sweep_neither_alerts_nor_marks():
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    failed = failed_run(gateway, experiment_id, 1)

    outcome = memory_app(gateway, dry_run="true").sweep()

    assert [r.action for r in outcome.report.records] == []
    assert T.FAILURE_NOTIFIED_AT not in gateway.get_run(failed).tags


# -- events --------------------------------------------------------------------------------


class _Undeliverable:
    def post(self, card: object) -> Delivery:
        return Delivery(False, 503, 3, "HTTP 503")


def test_an_event_alert_is_marked_only_once_delivered():
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    failed = failed_run(gateway, experiment_id, 0.1)
    event = run_event(failed, experiment_id, EXPERIMENT)
    app = memory_app(gateway)

    down = app.with_channel(Channel(_Undeliverable(), "teams")).handle_events(event)
    assert not down.delivered
    assert T.FAILURE_NOTIFIED_AT not in gateway.get_run(failed).tags

    delivered = app.handle_events(event)
    assert delivered.delivered
    assert gateway.get_run(failed).tags[T.FAILURE_NOTIFIED_AT] == NOW.isoformat()
    replay = app.handle_events(event)
    assert [(r.action, r.outcome) for r in replay.report.records] == [("skip", "skipped")]
    assert len(cards(app)) == 1


def test_malformed_events_are_rejected_and_the_valid_ones_handled():
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    run_id = gateway.add_run(experiment_id, start_time=hours_ago(1), end_time=hours_ago(0.5))
    bad = run_event("x", experiment_id, EXPERIMENT)
    bad["id"] = "evt-bad"
    bad["data"].pop("runId")
    text = json.dumps([bad, run_event(run_id, experiment_id, EXPERIMENT)])

    outcome = memory_app(gateway, required_tags="owner").handle_events(text)

    assert [(e.event_id, e.problem) for e in outcome.rejected] == [
        ("evt-bad", "data.runId is missing")
    ]
    assert outcome.report.extra["rejected_events"] == [
        {"event_id": "evt-bad", "problem": "data.runId is missing"}
    ]
    assert [r.run_id for r in outcome.report.records] == [run_id]
    assert outcome.exit_code == EXIT_INVALID
    assert outcome.redelivery is None


# -- restore -------------------------------------------------------------------------------


def test_restore_on_a_server_that_cannot_says_so_and_exits_1():
    gateway = InMemoryGateway(capabilities=Capabilities(restore=False), clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    deleted_at = hours_ago(2).isoformat()
    run_id = failed_run(
        gateway,
        experiment_id,
        100,
        deleted=True,
        tags={T.DELETED_REASON: "failed run past grace period", T.DELETED_AT: deleted_at},
    )

    outcome = memory_app(gateway).restore(24)

    assert outcome.unsupported
    assert outcome.exit_code == EXIT_FAILED
    assert gateway.get_run(run_id).deleted
    assert outcome.delivery is None  # restore reports on the command line only


# -- notifications never gate governance ---------------------------------------------------


def test_an_unresolved_key_vault_webhook_is_logged_on_each_invocation_and_governance_runs(
    caplog,
):
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    old = failed_run(gateway, experiment_id, 100)
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/teams-webhook/)"
    app = memory_app(gateway, cleanup_statuses="FAILED", teams_webhook_url=reference)
    assert app.settings.teams_webhook_url is None  # unusable: treated as unset

    with caplog.at_level("ERROR", logger="shared.app.application"):
        first = app.sweep()
        app.sweep()
    errors = [r.getMessage() for r in caplog.records if r.name == "shared.app.application"]
    assert len(errors) == 2
    assert all("GOVERNANCE_TEAMS_WEBHOOK_URL" in e and "Key Vault" in e for e in errors)
    assert first.exit_code == 0
    assert gateway.get_run(old).deleted
