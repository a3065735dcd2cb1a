"""Governance notices reach Teams as ONE card per invocation; Teams failing changes nothing.

`mlgov sweep` and `mlgov handle-event` against the real MLflow server, posting to a local
HTTPS receiver standing in for the Workflows webhook.
"""

from __future__ import annotations

import json

import pytest

from shared import tags as T
from shared.cli import main
from tests.event_samples import run_event
from tests.receiver import (  # noqa: F401 (fixtures)
    PATH,
    SIG,
    app_env_fixture,
    card_text,
    receiver_fixture,
    tls_files_fixture,
)
from tests.support import make_run

pytestmark = pytest.mark.integration


def deleted(client, run_id: str) -> bool:
    return client.get_run(run_id).info.lifecycle_stage == "deleted"


@pytest.fixture
def webhook(app_env, receiver):
    """Teams answering 202, with the webhook and required tags set for the app."""
    receiver.server.expect_request(PATH, method="POST").respond_with_data("", status=202)
    app_env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", receiver.url)
    app_env.setenv("GOVERNANCE_REQUIRED_TAGS", "owner")
    return receiver


def test_a_sweep_posts_one_batched_card(webhook, client, experiment, capsys):
    experiment_id, name = experiment
    old = make_run(client, experiment_id, status="FAILED", ended_hours_ago=100, name="old-fail")
    untagged = make_run(client, experiment_id, ended_hours_ago=1, name="no-owner")

    assert main(["sweep", "--json"]) == 0

    (card,) = webhook.cards()
    text = card_text(card)
    assert text.startswith("mlgov sweep: 2 notices")
    assert "1 run missing required tags" in text
    assert f"in {name}: missing owner" in text
    assert "Cleanup: 1 run deleted" in text
    assert "mlgov restore --since 24" in text
    assert f"/#/experiments/{experiment_id}/runs/{old}" in text
    report = json.loads(capsys.readouterr().out)
    (note,) = report["notifications"]
    assert (note["ok"], note["posted"], note["notices"]) == ("true", "true", "2")
    assert deleted(client, old)
    assert client.get_run(untagged).data.tags[T.COMPLIANCE] == T.NONCOMPLIANT


def test_a_sweep_with_nothing_to_say_posts_nothing(webhook, client, experiment, capsys):
    make_run(client, experiment[0], tags={"owner": "ana"}, ended_hours_ago=1)

    assert main(["sweep", "--json"]) == 0

    assert webhook.server.log == []
    assert json.loads(capsys.readouterr().out)["notifications"] == []


def test_teams_down_leaves_the_sweep_applied_and_the_exit_code_alone(
    app_env, receiver, client, experiment, capsys
):
    # Always 500; Retry-After: 0 makes the notifier's retries immediate.
    receiver.server.expect_request(PATH).respond_with_data(
        "unavailable", status=500, headers={"Retry-After": "0"}
    )
    app_env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", receiver.url)
    old = make_run(client, experiment[0], status="FAILED", ended_hours_ago=100)

    assert main(["sweep", "--json"]) == 0

    out = capsys.readouterr()
    report = json.loads(out.out)
    assert deleted(client, old)
    assert T.DELETED_AT in client.get_run(old).data.tags
    deletion = next(d for d in report["decisions"] if d["action"] == "delete-run")
    assert deletion["outcome"] == "applied"
    (note,) = report["notifications"]
    assert (note["ok"], note["posted"], note["status"]) == ("false", "false", "500")
    assert "gave up after 4 attempts" in note["error"]
    assert len(receiver.server.log) == 4
    assert "governance unaffected" in out.err
    assert SIG not in out.out + out.err


def test_a_promotion_event_posts_the_promotion_card(webhook, client, experiment, tmp_path, capsys):
    experiment_id, name = experiment
    run_id = make_run(
        client,
        experiment_id,
        metrics={"auc": 0.91},
        tags={"owner": "ana"},
        model=True,
        name="rf-7",
    )
    events = tmp_path / "events.json"
    events.write_text(json.dumps([run_event(run_id, experiment_id, name)]))

    assert main(["handle-event", str(events), "--json"]) == 0

    (card,) = webhook.cards()
    text = card_text(card)
    assert f"Model promoted: {name} v1" in text
    assert "auc: 0.91 (threshold ≥ 0.5)" in text
    assert "Previous champion: none: first version to be promoted" in text
    assert card["actions"][0]["url"].endswith(f"/#/experiments/{experiment_id}/runs/{run_id}")
    assert client.get_run(run_id).data.tags[T.PROMOTED_TO] == f"{name}:1"
    capsys.readouterr()


def test_a_failure_event_posts_the_failure_card(webhook, client, experiment, tmp_path, capsys):
    experiment_id, name = experiment
    run_id = make_run(
        client, experiment_id, status="FAILED", tags={"owner": "bob"}, name="xgb-crash"
    )
    event = run_event(
        run_id, experiment_id, name, schema="cloudevents", kind="RunStatusChanged", status="Failed"
    )
    events = tmp_path / "events.json"
    events.write_text(json.dumps(event))

    assert main(["handle-event", str(events)]) == 0

    (card,) = webhook.cards()
    text = card_text(card)
    assert f"Run failed: xgb-crash in {name}" in text
    assert "Owner: tester" in text
    assert "Duration: 30 min" in text
    assert "Teams message" not in capsys.readouterr().out  # posted, so not printed


def test_dry_run_sweep_posts_its_card_marked_dry_run_and_deletes_nothing(
    webhook, client, experiment, capsys
):
    run_id = make_run(client, experiment[0], status="FAILED", ended_hours_ago=100)

    assert main(["sweep", "--dry-run"]) == 0

    (card,) = webhook.cards()
    text = card_text(card)
    assert "DRY RUN" in text
    assert "would be deleted" in text
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    out = capsys.readouterr().out
    assert "Teams message" not in out  # posted, so not printed
    assert out.strip().splitlines()[-1].startswith("sweep: ")


def test_card_out_keeps_a_dry_run_card_local(webhook, client, experiment, tmp_path, capsys):
    make_run(client, experiment[0], status="FAILED", ended_hours_ago=100)
    out_file = tmp_path / "card.json"

    assert main(["sweep", "--dry-run", "--card-out", str(out_file)]) == 0

    assert webhook.server.log == []
    message = json.loads(out_file.read_text(encoding="utf-8"))
    assert "would be deleted" in card_text(message)
    capsys.readouterr()
