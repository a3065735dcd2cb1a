from __future__ import annotations

import pytest

from shared.errors import SettingsError
from shared.settings import load_settings


def test_defaults_match_the_brief():
    settings = load_settings({})
    policy = settings.default_policy
    assert settings.tracking_uri is None
    assert settings.is_embedded
    assert settings.effective_tracking_uri().startswith("sqlite:///")
    assert settings.dry_run is False
    assert settings.experiments == ("*",)
    assert settings.cleanup_max_runs == 100
    assert settings.teams_webhook_url is None
    assert settings.summary_window_hours == 24
    assert settings.sweep_schedule == "0 */30 * * * *"
    assert settings.summary_schedule == "0 0 8 * * 1-5"
    assert policy.cleanup_statuses == frozenset({"FAILED"})
    assert policy.cleanup_after_hours == 72
    assert policy.protect_tag == "governance.keep"
    assert policy.required_tags == ()
    assert policy.tag_defaults == {}
    assert policy.promotion_metric is None
    assert not policy.promotion_enabled
    assert policy.promotion_goal == "maximize"
    assert policy.promotion_model_name == "{experiment_name}"
    assert policy.promotion_artifact_path == "model"
    assert policy.promotion_alias == "champion"


def test_values_are_parsed():
    settings = load_settings(
        {
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
            "GOVERNANCE_DRY_RUN": "TRUE",
            "GOVERNANCE_EXPERIMENTS": "churn-*, fraud",
            "GOVERNANCE_CLEANUP_STATUSES": "failed,Killed",
            "GOVERNANCE_REQUIRED_TAGS": "owner, dataset_version",
            "GOVERNANCE_TAG_DEFAULTS": '{"owner": "{user}"}',
            "GOVERNANCE_PROMOTION_METRIC": "rmse",
            "GOVERNANCE_PROMOTION_THRESHOLD": "0.5",
            "GOVERNANCE_PROMOTION_GOAL": "Minimize",
        }
    )
    policy = settings.default_policy
    assert settings.dry_run is True
    assert settings.experiments == ("churn-*", "fraud")
    assert settings.in_scope("churn-2026")
    assert settings.in_scope("fraud")
    assert not settings.in_scope("fraud-2")
    assert policy.cleanup_statuses == frozenset({"FAILED", "KILLED"})
    assert policy.required_tags == ("owner", "dataset_version")
    assert policy.tag_defaults == {"owner": "{user}"}
    assert policy.promotion_threshold == 0.5
    assert policy.promotion_goal == "minimize"


def test_empty_cleanup_statuses_turns_cleanup_off():
    settings = load_settings({"GOVERNANCE_CLEANUP_STATUSES": ""})
    assert settings.default_policy.cleanup_statuses == frozenset()


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("GOVERNANCE_PROMOTION_THRESHOLD", "high", "not a number: 'high'"),
        ("GOVERNANCE_PROMOTION_THRESHOLD", "nan", "not a finite number"),
        ("GOVERNANCE_DRY_RUN", "maybe", "expected true or false"),
        ("GOVERNANCE_CLEANUP_AFTER_HOURS", "-1", "greater than or equal to 0"),
        ("GOVERNANCE_CLEANUP_AFTER_HOURS", "three days", "not a number"),
        ("GOVERNANCE_CLEANUP_MAX_RUNS", "1.5", "not a whole number"),
        ("GOVERNANCE_CLEANUP_MAX_RUNS", "-3", "at least 0"),
        ("GOVERNANCE_CLEANUP_STATUSES", "FAILED,BROKEN", "unknown run status BROKEN"),
        ("GOVERNANCE_TAG_DEFAULTS", "{owner: x}", "not valid JSON"),
        ("GOVERNANCE_TAG_DEFAULTS", '["owner"]', "expected a JSON object"),
        ("GOVERNANCE_TAG_DEFAULTS", '{"owner": "{usr}"}', "bad template"),
        ("GOVERNANCE_PROMOTION_GOAL", "up", "must be 'maximize' or 'minimize'"),
        ("GOVERNANCE_PROMOTION_MODEL_NAME", "{team}-model", "bad template"),
        ("GOVERNANCE_SUMMARY_WINDOW_HOURS", "0", "at least"),
        ("GOVERNANCE_SWEEP_SCHEDULE", "*/30 * * * *", "NCRONTAB needs 6 fields"),
        ("GOVERNANCE_SUMMARY_SCHEDULE", "daily", "NCRONTAB needs 6 fields"),
        ("GOVERNANCE_TEAMS_WEBHOOK_URL", "http://example.invalid/hook", "must be an https://"),
    ],
)
def test_each_bad_value_names_its_setting(setting, value, expected):
    env = {setting: value}
    if setting.startswith("GOVERNANCE_PROMOTION_") and setting != "GOVERNANCE_PROMOTION_METRIC":
        env.setdefault("GOVERNANCE_PROMOTION_METRIC", "auc_roc")
        env.setdefault("GOVERNANCE_PROMOTION_THRESHOLD", "0.8")
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")
    assert expected in str(caught.value)


def test_threshold_is_required_with_a_metric():
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_PROMOTION_METRIC": "auc_roc"})
    assert caught.value.setting == "GOVERNANCE_PROMOTION_THRESHOLD"
    assert "required when GOVERNANCE_PROMOTION_METRIC is set" in str(caught.value)


def test_webhook_value_never_appears_in_errors_or_repr():
    secret = "https://prod.example.invalid/workflows/abc?sig=SECRETSIGNATURE123"
    settings = load_settings({"GOVERNANCE_TEAMS_WEBHOOK_URL": secret})
    assert settings.teams_webhook_url is not None
    assert settings.teams_webhook_url.get_secret_value() == secret
    assert "SECRETSIGNATURE123" not in repr(settings)
    assert "SECRETSIGNATURE123" not in str(settings.model_dump())
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_TEAMS_WEBHOOK_URL": "http://x.invalid/?sig=SECRETSIG"})
    assert "SECRETSIG" not in str(caught.value)


def test_policy_file_overrides_per_experiment(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        """
overrides:
  - experiments: "churn-*"
    promotion_metric: auc_roc
    promotion_threshold: 0.85
  - experiments: ["churn-nightly", "sandbox"]
    cleanup_after_hours: 12
    required_tags: []
""",
        encoding="utf-8",
    )
    settings = load_settings(
        {"GOVERNANCE_POLICY_FILE": str(path), "GOVERNANCE_REQUIRED_TAGS": "owner"}
    )
    churn = settings.policy_for("churn-daily")
    assert churn.promotion_metric == "auc_roc"
    assert churn.promotion_threshold == 0.85
    assert churn.required_tags == ("owner",)
    nightly = settings.policy_for("churn-nightly")
    assert nightly.promotion_metric == "auc_roc"
    assert nightly.cleanup_after_hours == 12
    assert nightly.required_tags == ()
    other = settings.policy_for("fraud")
    assert other == settings.default_policy


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("overrides:\n  - experiments: x\n    promotion_metrc: auc\n", "promotion_metrc"),
        ("overrides:\n  - promotion_metric: auc\n    promotion_threshold: 1\n", "experiments"),
        ("overrides:\n  - experiments: x\n    promotion_metric: auc\n", "THRESHOLD"),
        ("overrides:\n  - experiments: x\n    cleanup_after_hours: soon\n", "not a number"),
        ("overrides:\n  - experiments: x\n    cleanup_max_runs: 5\n", "unknown policy key"),
        ("rules: []\n", "top level"),
        ("overrides: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_policy_file_is_rejected_naming_the_setting(tmp_path, document, expected):
    path = tmp_path / "policy.yaml"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_POLICY_FILE": str(path)})
    assert "GOVERNANCE_POLICY_FILE" in str(caught.value)
    assert expected in str(caught.value)


def test_missing_policy_file_names_the_setting(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_POLICY_FILE": str(tmp_path / "nope.yaml")})
    assert caught.value.setting == "GOVERNANCE_POLICY_FILE"
    assert "cannot read" in str(caught.value)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("GOVERNANCE_PROMOTION_ALIAS", "v1", "not a valid MLflow alias"),
        ("GOVERNANCE_PROMOTION_ALIAS", "latest", "not a valid MLflow alias"),
        ("GOVERNANCE_PROMOTION_ALIAS", "Champion!", "not a valid MLflow alias"),
        ("GOVERNANCE_CLEANUP_AFTER_HOURS", "1e9", "at most 87600 hours"),
        ("GOVERNANCE_CATCHUP_HOURS", "1e9", "at most 87600 hours"),
        ("GOVERNANCE_SUMMARY_WINDOW_HOURS", "inf", "not a finite number"),
        ("MLFLOW_TRACKING_URI", "foo://somewhere", "unsupported scheme 'foo'"),
        ("GOVERNANCE_TEAMS_WEBHOOK_URL", "https://[::1/hook?sig=SECRET", "not a valid URL"),
        ("GOVERNANCE_TEAMS_WEBHOOK_URL", "https:///path?sig=SECRET", "no host name"),
    ],
)
def test_values_that_would_fail_later_are_refused_up_front(setting, value, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings({setting: value})
    assert caught.value.setting == setting
    assert expected in str(caught.value)
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize("alias", ["champion", "prod-2026", "best_model"])
def test_valid_aliases_are_kept(alias):
    assert load_settings({"GOVERNANCE_PROMOTION_ALIAS": alias}).default_policy.promotion_alias == (
        alias
    )


@pytest.mark.parametrize(
    "uri",
    [
        "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/r"
        "/providers/Microsoft.MachineLearningServices/workspaces/w",
        "http://127.0.0.1:5000",
        "sqlite:////tmp/x.db",
        "databricks",
        "/srv/mlruns",
    ],
)
def test_supported_tracking_uris_are_kept(uri):
    assert load_settings({"MLFLOW_TRACKING_URI": uri}).tracking_uri == uri


def test_a_given_mapping_is_read_alone(monkeypatch):
    """The process environment must not leak into settings built from a mapping."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://leak.invalid:1")
    monkeypatch.setenv("GOVERNANCE_DRY_RUN", "true")
    settings = load_settings({})
    assert settings.tracking_uri is None
    assert settings.dry_run is False
    from_environment = load_settings()
    assert from_environment.tracking_uri == "http://leak.invalid:1"
    assert from_environment.dry_run is True


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "https://alice:s3cret@mlflow.example.invalid:8443/x",
            "https://mlflow.example.invalid:8443/x",
        ),
        ("http://token@127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_display_uri_drops_credentials(uri, shown):
    from shared.settings import display_uri

    assert display_uri(uri) == shown
