"""`mlgov demo` end to end on its embedded store: what it prints is what the store holds."""

from __future__ import annotations

import json

from mlflow import MlflowClient
from mlflow.entities import ViewType

from shared.cli import main


def test_demo_governs_the_study_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "mlgov-demo"
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    (experiment,) = client.search_experiments(filter_string="name = 'customer-churn'")

    runs = {
        r.info.run_name: r
        for r in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    }
    # Cleanup: the old failed and killed runs are gone (softly), the protected and the recent
    # failed runs stay.
    assert runs["random-forest-07"].info.lifecycle_stage == "deleted"
    assert runs["logistic-regression-09"].info.lifecycle_stage == "deleted"
    assert "governance.deleted_reason" in runs["random-forest-07"].data.tags
    assert runs["gradient-boosting-08"].info.lifecycle_stage == "active"
    assert runs["random-forest-10"].info.lifecycle_stage == "active"
    # Tags: the run without a dataset version is marked, the others are compliant.
    untagged = runs["random-forest-04"].data.tags
    assert untagged["governance.compliance"] == "noncompliant"
    assert untagged["governance.missing_tags"] == "dataset_version"
    assert runs["random-forest-03"].data.tags["governance.compliance"] == "compliant"
    assert runs["random-forest-03"].data.tags["owner"] == "ben"
    # Promotion: the sweep's best compliant run became v1, the event's better run v2 (champion).
    model = "customer-churn-classifier"
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{model}'")}
    assert set(versions) == {"1", "2"}
    assert versions["1"].run_id == runs["random-forest-03"].info.run_id
    assert versions["2"].run_id == runs["gradient-boosting-11"].info.run_id
    assert str(client.get_model_version_by_alias(model, "champion").version) == "2"
    assert runs["gradient-boosting-11"].data.tags["governance.promoted_to"] == f"{model}:2"
    # The failure event alerted once; the replay did not alert again.
    assert "governance.failure_notified_at" in runs["random-forest-12"].data.tags
    assert "handle-event: 5 decisions: 0 applied, 0 planned, 5 skipped, 0 failed" in out

    # Each step's Teams message is on disk, in the webhook's envelope.
    for name in ("sweep", "events", "summary"):
        message = json.loads((folder / "cards" / f"{name}.json").read_text(encoding="utf-8"))
        assert message["type"] == "message"
        (attachment,) = message["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert attachment["content"]["version"] == "1.4"
    events = (folder / "cards" / "events.json").read_text(encoding="utf-8")
    assert "customer-churn-classifier v2" in events
    assert "random-forest-12" in events
    assert "Models promoted: 2" in out

    # MLflow's global tracking URI (which it exports) does not outlive the demo.
    import os

    assert "MLFLOW_TRACKING_URI" not in os.environ

    # The settings file lets a user re-run policies on the same store.
    assert "GOVERNANCE_PROMOTION_METRIC='auc_roc'" in (folder / "demo.env").read_text()


def test_demo_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert "was not made by `mlgov demo`" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"
