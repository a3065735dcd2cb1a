"""The summary against the real MLflow server, `mlgov summary` and `scheduled_summary` end to end.

Runs are spread over and outside the window; deletions, restores and promotions are marked
with the tags this tool writes, so the summary must find them in MLflow alone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.functions.timer import TimerRequest

from shared import tags as T
from shared.cli import main
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.summary import summarize
from tests.receiver import (  # noqa: F401 (fixtures)
    SIG,
    app_env_fixture,
    card_text,
    our_log,
    receiver_fixture,
    tls_files_fixture,
)
from tests.support import make_run, settings

pytestmark = pytest.mark.integration


def iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(timespec="seconds")


def seed(client, experiment_id: str) -> dict[str, str]:
    """One run per case; the comments say how each must be counted in a 24 h window."""
    run = {
        # ended in the window
        "low": make_run(
            client, experiment_id, metrics={"auc": 0.80}, ended_hours_ago=1, name="low"
        ),
        "promoted": make_run(
            client,
            experiment_id,
            metrics={"auc": 0.90},
            tags={T.PROMOTED_TO: "churn-model:3", T.COMPLIANCE: T.COMPLIANT},
            ended_hours_ago=2,
            name="promoted",
        ),
        "noncompliant": make_run(
            client,
            experiment_id,
            tags={T.COMPLIANCE: T.NONCOMPLIANT, T.MISSING_TAGS: "owner"},
            ended_hours_ago=3,
        ),
        "failed": make_run(client, experiment_id, status="FAILED", ended_hours_ago=4),
        "killed": make_run(client, experiment_id, status="KILLED", ended_hours_ago=5),
        "running": make_run(client, experiment_id, status="RUNNING", ended_hours_ago=None),
        # deleted by a person (no governance tags), ended in the window: still a failed run
        "user-deleted": make_run(client, experiment_id, status="FAILED", ended_hours_ago=2),
        # outside the window (the best metric of all: must not be the best run)
        "old": make_run(client, experiment_id, metrics={"auc": 0.99}, ended_hours_ago=30),
        # governance actions on old runs
        "deleted": make_run(client, experiment_id, status="FAILED", ended_hours_ago=100),
        "deleted-long-ago": make_run(client, experiment_id, status="FAILED", ended_hours_ago=200),
        "restored": make_run(client, experiment_id, status="FAILED", ended_hours_ago=100),
        "stuck": make_run(client, experiment_id, status="FAILED", ended_hours_ago=100),
    }
    for key, deleted_hours_ago in (("deleted", 2), ("deleted-long-ago", 48), ("stuck", 1)):
        client.set_tag(run[key], T.DELETED_REASON, "cleanup-failed-runs: status FAILED")
        client.set_tag(run[key], T.DELETED_AT, iso(deleted_hours_ago))
    client.set_tag(run["restored"], T.RESTORED_AT, iso(3))
    for key in ("deleted", "deleted-long-ago", "user-deleted"):
        client.delete_run(run[key])
    return run


@pytest.mark.parametrize(("goal", "best"), [("maximize", "promoted"), ("minimize", "low")])
def test_summary_counts_the_window_from_mlflow_alone(mlflow_server, client, experiment, goal, best):
    experiment_id, name = experiment
    seed(client, experiment_id)
    the_settings = settings(
        mlflow_server.uri,
        experiments=name,
        promotion_metric="auc",
        promotion_threshold="0.5",
        promotion_goal=goal,
    )

    result = summarize(MlflowGateway(mlflow_server.uri), the_settings, datetime.now(UTC))

    (row,) = result.summary.experiments
    counts = {
        "finished": 3,
        "failed": 2,
        "killed": 1,
        "deleted": 1,
        "restored": 1,
        "promotions": 1,
        "noncompliant": 1,
        "failed_actions": 1,
    }
    assert {k: getattr(row, k) for k in counts} == counts
    assert row.best_run_name == best
    assert row.best_run_url is not None
    assert row.best_run_url.startswith(f"{mlflow_server.uri}/#/experiments/{experiment_id}/runs/")
    assert list(result.summary.totals.values()) == list(counts.values())
    (promotion,) = result.summary.promotions
    assert (promotion.model_name, promotion.version, promotion.value) == ("churn-model", "3", 0.90)
    (failure,) = result.summary.failed_actions
    assert failure.action == "delete-run"
    assert "still active" in failure.reason
    assert result.report.exit_code == 0
    assert result.summary.source == mlflow_server.uri.removeprefix("http://")


def test_summary_of_a_quiet_window_and_a_narrow_window(mlflow_server, client, experiment):
    experiment_id, name = experiment
    make_run(client, experiment_id, ended_hours_ago=5)
    the_settings = settings(mlflow_server.uri, experiments=name)
    gateway = MlflowGateway(mlflow_server.uri)

    narrow = summarize(gateway, the_settings, datetime.now(UTC), window_hours=2)
    wide = summarize(gateway, the_settings, datetime.now(UTC), window_hours=6)

    assert narrow.summary.experiments[0].activity == 0
    assert wide.summary.experiments[0].finished == 1
    assert narrow.summary.metric is None


def test_cli_summary_posts_one_card_showing_the_window(
    app_env, client, experiment, receiver, capsys
):
    experiment_id, name = experiment
    seed(client, experiment_id)
    receiver.server.expect_request(
        "/workflows/9f8e7d/triggers/manual/paths/invoke"
    ).respond_with_data("", status=202)
    app_env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", receiver.url)

    assert main(["summary", "--json"]) == 0

    out = capsys.readouterr()
    (card,) = receiver.cards()
    text = card_text(card)
    assert card["version"] == "1.4"
    for fact in (
        "Runs finished: 3",
        "Runs failed: 2",
        "Runs killed: 1",
        "Runs deleted by governance: 1",
        "Runs restored: 1",
        "Models promoted: 1",
        "Noncompliant runs: 1",
        "Failed actions: 1",
    ):
        assert fact in text
    assert name in text
    assert "best auc 0.9" in text
    assert "churn-model v3" in text
    report = json.loads(out.out)
    (note,) = report["notifications"]
    assert (note["ok"], note["posted"], note["status"]) == ("true", "true", "202")
    assert "cards" not in report
    assert report["summary"]["totals"]["Runs finished"] == 3
    assert SIG not in out.out + out.err
    assert "9f8e7d" not in out.out + out.err


def test_cli_summary_dry_run_posts_nothing_and_keeps_the_card_in_the_json(
    app_env, client, experiment, receiver, capsys
):
    make_run(client, experiment[0], ended_hours_ago=1)
    app_env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", receiver.url)

    assert main(["summary", "--dry-run", "--json", "--window-hours", "3"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert receiver.server.log == []
    (message,) = report["cards"]
    assert "Runs finished: 1" in card_text(message)
    assert report["notifications"][0]["posted"] == "false"
    assert report["summary"]["window_hours"] == 3


def test_cli_summary_without_webhook_prints_or_writes_the_message(
    app_env, experiment, tmp_path, capsys
):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "not posted: GOVERNANCE_TEAMS_WEBHOOK_URL is not set" in out
    message, _ = json.JSONDecoder().raw_decode(out, out.index("\n{") + 1)
    assert message["attachments"][0]["content"]["type"] == "AdaptiveCard"

    target = tmp_path / "card.json"
    assert main(["summary", "--json", "--card-out", str(target)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "cards" not in report
    assert json.loads(target.read_text())["type"] == "message"


def test_teams_failing_leaves_the_exit_code_and_records_the_failed_delivery(
    app_env, client, experiment, receiver, capsys
):
    make_run(client, experiment[0], ended_hours_ago=1)
    # Retry-After: 0 keeps the retries immediate; the notifier still makes every attempt.
    receiver.server.expect_request(
        "/workflows/9f8e7d/triggers/manual/paths/invoke"
    ).respond_with_data("boom", status=500, headers={"Retry-After": "0"})
    app_env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", receiver.url)

    assert main(["summary", "--json"]) == 0

    out = capsys.readouterr()
    (note,) = json.loads(out.out)["notifications"]
    assert (note["ok"], note["status"], note["attempts"]) == ("false", "500", "4")
    assert "HTTP 500" in note["error"]
    assert "governance unaffected" in out.err
    assert SIG not in out.out + out.err
    assert len(receiver.server.log) == 4


def test_scheduled_summary_posts_the_card(app_env, client, experiment, receiver, caplog):
    from functions.summary import scheduled_summary

    make_run(client, experiment[0], status="FAILED", ended_hours_ago=1)
    receiver.server.expect_request(
        "/workflows/9f8e7d/triggers/manual/paths/invoke"
    ).respond_with_data("", status=202)
    app_env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", receiver.url)
    app_env.setenv("GOVERNANCE_SUMMARY_SCHEDULE", "0 0 8 * * 1-5")

    with caplog.at_level("INFO", logger="functions.summary"):
        scheduled_summary.build().get_user_function()(TimerRequest(past_due=False))

    (card,) = receiver.cards()
    assert "Runs failed: 1" in card_text(card)
    line = next(r.getMessage() for r in caplog.records if r.name == "functions.summary")
    assert line.startswith("scheduled_summary: ")
    assert line.endswith("card posted")
    assert SIG not in our_log(caplog)


def test_scheduled_summary_without_webhook_logs_the_card(app_env, experiment, caplog):
    from functions.summary import scheduled_summary

    with caplog.at_level("INFO"):
        scheduled_summary.build().get_user_function()(TimerRequest(past_due=True))

    messages = [r.getMessage() for r in caplog.records]
    assert any("scheduled_summary is past due" in m for m in messages)
    assert any(
        m.startswith("Teams card not posted (GOVERNANCE_TEAMS_WEBHOOK_URL is not set)")
        for m in messages
    )
    # It does not claim a post that never happened.
    (line,) = [m for m in messages if m.startswith("scheduled_summary: ")]
    assert line.endswith("card only log (GOVERNANCE_TEAMS_WEBHOOK_URL is not set)")


def test_one_experiment_answering_5xx_is_reported_and_the_others_summarised(mlflow_server, client):
    import uuid

    from shared.errors import TrackingUnavailable
    from tests.fault_proxy import fail_all_run_searches, fail_run_search_of, fault_proxy

    prefix = f"sum-{uuid.uuid4().hex[:8]}"
    good = client.create_experiment(f"{prefix}-good")
    bad = client.create_experiment(f"{prefix}-bad")
    make_run(client, good, ended_hours_ago=1)
    make_run(client, bad, ended_hours_ago=1)
    now = datetime.now(UTC)

    with fault_proxy(mlflow_server.uri, fail_run_search_of(bad)) as (uri, hits):
        result = summarize(MlflowGateway(uri), settings(uri, experiments=f"{prefix}-*"), now)

    assert hits
    assert result.summary.totals["Runs finished"] == 1
    (failed,) = [r for r in result.report.records if r.outcome == "failed"]
    assert failed.experiment == f"{prefix}-bad"
    assert "unavailable" in failed.reason

    # Every experiment failing means the server is down: the summary raises.
    with (
        fault_proxy(mlflow_server.uri, fail_all_run_searches) as (uri, _),
        pytest.raises(TrackingUnavailable),
    ):
        summarize(MlflowGateway(uri), settings(uri, experiments=f"{prefix}-*"), now)
