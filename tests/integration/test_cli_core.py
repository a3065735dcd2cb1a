"""`mlgov check` and `mlgov sweep` end to end against the real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli import main
from tests.support import make_run

pytestmark = pytest.mark.integration


@pytest.fixture
def env(app_env):
    """The process environment the CLI reads: the test server and one experiment in scope."""
    app_env.setenv("GOVERNANCE_REQUIRED_TAGS", "owner,dataset_version")
    app_env.setenv("GOVERNANCE_TAG_DEFAULTS", '{"owner": "{user}"}')
    app_env.setenv("GOVERNANCE_CLEANUP_STATUSES", "")
    return app_env


def sweep_json(capsys, *flags: str) -> tuple[int, dict]:
    code = main(["sweep", "--json", *flags])
    return code, json.loads(capsys.readouterr().out)


def test_sweep_applies_require_tags(env, client, experiment, capsys):
    experiment_id, name = experiment
    good = make_run(client, experiment_id, tags={"dataset_version": "v1"})
    bad = make_run(client, experiment_id, tags={"mlflow.user": ""})
    running = make_run(client, experiment_id, status="RUNNING")

    code, report = sweep_json(capsys)

    assert code == 0
    decisions = {d["run_id"]: d for d in report["decisions"]}
    assert set(decisions) == {good, bad}
    assert decisions[good]["outcome"] == "applied"
    assert decisions[good]["policy"] == "require-tags"
    assert decisions[good]["experiment"] == name
    assert {"policy", "run_id", "experiment", "action", "outcome", "reason"} <= set(decisions[good])
    tags = client.get_run(good).data.tags
    assert tags["owner"] == "tester"
    assert tags["governance.compliance"] == "compliant"
    assert "governance.missing_tags" not in tags
    bad_tags = client.get_run(bad).data.tags
    assert bad_tags["governance.compliance"] == "noncompliant"
    assert bad_tags["governance.missing_tags"] == "owner,dataset_version"
    assert "governance.compliance" not in client.get_run(running).data.tags

    # A second sweep changes nothing: every decision is a skip.
    code, again = sweep_json(capsys)
    assert code == 0
    assert {d["outcome"] for d in again["decisions"]} == {"skipped"}

    # The run becomes compliant once the tag is added: the missing list goes away.
    client.set_tag(bad, "owner", "ana")
    client.set_tag(bad, "dataset_version", "v2")
    sweep_json(capsys)
    fixed = client.get_run(bad).data.tags
    assert fixed["governance.compliance"] == "compliant"
    assert "governance.missing_tags" not in fixed


def test_dry_run_reports_the_same_decisions_and_changes_nothing(env, client, experiment, capsys):
    experiment_id, _ = experiment
    run_id = make_run(client, experiment_id)
    before = client.get_run(run_id).data.tags

    code, planned = sweep_json(capsys, "--dry-run")
    assert code == 0
    assert planned["dry_run"] is True
    assert client.get_run(run_id).data.tags == before
    (decision,) = planned["decisions"]
    assert decision["outcome"] == "planned"

    code, applied = sweep_json(capsys)
    (live,) = applied["decisions"]
    assert live["outcome"] == "applied"
    for key in ("policy", "run_id", "action", "reason", "details"):
        assert live[key] == decision[key]


def test_dry_run_setting_is_honoured(env, client, experiment, capsys):
    experiment_id, _ = experiment
    run_id = make_run(client, experiment_id)
    env.setenv("GOVERNANCE_DRY_RUN", "true")
    _, report = sweep_json(capsys)
    assert [d["outcome"] for d in report["decisions"]] == ["planned"]
    assert "governance.compliance" not in client.get_run(run_id).data.tags


def test_table_output_is_readable(env, client, experiment, capsys):
    experiment_id, _ = experiment
    make_run(client, experiment_id, name="rf-depth-20")
    assert main(["sweep"]) == 0
    out = capsys.readouterr().out
    assert "rf-depth-20" in out
    assert "set-run-tags" in out
    assert out.strip().splitlines()[-1].startswith("sweep: 1 decisions: 1 applied")


def test_invalid_setting_exits_2_naming_it(env, capsys):
    env.setenv("GOVERNANCE_PROMOTION_METRIC", "auc_roc")
    env.setenv("GOVERNANCE_PROMOTION_THRESHOLD", "high")
    assert main(["sweep"]) == 2
    err = capsys.readouterr().err
    assert "GOVERNANCE_PROMOTION_THRESHOLD: not a number: 'high'" in err


def test_server_down_exits_1(env, capsys):
    from tests.conftest import free_port

    env.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    assert main(["sweep", "--json"]) == 1
    assert "tracking server unavailable" in capsys.readouterr().err


def test_every_experiment_answering_5xx_exits_1(env, mlflow_server, client, experiment, capsys):
    """The experiments list but no run search answers: the server is down, the sweep fails."""
    from tests.fault_proxy import fail_all_run_searches, fault_proxy

    make_run(client, experiment[0])
    with fault_proxy(mlflow_server.uri, fail_all_run_searches) as (uri, hits):
        env.setenv("MLFLOW_TRACKING_URI", uri)
        assert main(["sweep", "--json"]) == 1
    assert hits
    assert "every experiment in scope failed (1)" in capsys.readouterr().err


def test_check_prints_effective_policy_and_masks_the_webhook(env, capsys):
    secret = "https://prod.example.invalid/workflows/run?api-version=1&sig=TOPSECRETSIG"
    env.setenv("GOVERNANCE_TEAMS_WEBHOOK_URL", secret)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "GOVERNANCE_REQUIRED_TAGS" in out
    assert "owner,dataset_version" in out
    assert "run policies enabled" in out
    assert "require-tags" in out
    assert "(set, masked)" in out
    assert "TOPSECRETSIG" not in out
    assert main(["check", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["teams_webhook_url"] == "(set, masked)"
    assert "TOPSECRETSIG" not in json.dumps(described)


def test_check_names_the_embedded_store(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert f"sqlite:///{tmp_path}/mlgov.db" in out
    assert "embedded local store" in out


EVENT_FILE = Path(__file__).parents[1] / "data" / "run-completed.eventgrid.json"


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "--dry-run"],
        ["sweep"],
        ["restore", "--dry-run"],
        ["summary", "--dry-run"],
        ["handle-event", "--dry-run", str(EVENT_FILE)],
    ],
)
def test_no_embedded_store_is_created_by_a_verb(monkeypatch, tmp_path, capsys, argv):
    """Without MLFLOW_TRACKING_URI and no ./mlgov.db, a verb refuses instead of creating one."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"no embedded MLflow store at {tmp_path / 'mlgov.db'}" in err
    assert "set MLFLOW_TRACKING_URI or run where mlgov.db is" in err
    assert list(tmp_path.iterdir()) == []


def test_check_does_not_create_the_embedded_store(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_sweep_on_the_embedded_store(monkeypatch, tmp_path, capsys):
    """With no MLFLOW_TRACKING_URI the CLI uses ./mlgov.db (needs the full mlflow package)."""
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVERNANCE_REQUIRED_TAGS", "owner")
    local = MlflowClient(f"sqlite:///{tmp_path}/mlgov.db")
    experiment_id = local.create_experiment("local", artifact_location=(tmp_path / "a").as_uri())
    run_id = make_run(local, experiment_id)
    code, report = sweep_json(capsys)
    assert code == 0
    assert [d["run_id"] for d in report["decisions"]] == [run_id]
    assert local.get_run(run_id).data.tags["governance.missing_tags"] == "owner"


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "--catchup-hours", "nan"],
        ["sweep", "--catchup-hours", "-5"],
        ["summary", "--window-hours", "inf"],
        ["restore", "--since", "1e12"],
    ],
)
def test_bad_hours_arguments_exit_2_before_anything_runs(env, argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "hours" in capsys.readouterr().err


def test_check_hides_credentials_in_the_tracking_uri(env, capsys):
    env.setenv("MLFLOW_TRACKING_URI", "https://alice:s3cret@mlflow.example.invalid/")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "https://mlflow.example.invalid/" in out
    assert "s3cret" not in out
