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
        ("GOVERNANCE_CLEANUP_AFTER_HOURS", "-1", "must be at least 0"),
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


# --- One declaration per setting -------------------------------------------------------------

GUID = "00000000-0000-4000-8000-000000000001"
WORKSPACE_ID = (
    f"/subscriptions/{GUID}/resourceGroups/rg-ml/providers/"
    "Microsoft.MachineLearningServices/workspaces/mlw-team"
)


def test_every_field_is_declared_once_and_policy_keys_come_from_the_declarations():
    from shared.settings import POLICY_KEYS, SETTINGS, Policy, Settings

    names = [entry.name for entry in SETTINGS]
    assert len(names) == len(set(names))
    assert tuple(e.key for e in SETTINGS if e.per_experiment) == POLICY_KEYS
    assert set(POLICY_KEYS) == set(Policy.model_fields)
    built = {"default_policy", "overrides", "warnings"}
    assert {e.key for e in SETTINGS if not e.per_experiment} == set(Settings.model_fields) - built
    assert "cleanup_max_runs" not in POLICY_KEYS
    assert not any(e.per_experiment for e in SETTINGS if e.group == "Azure")


def test_declared_defaults_are_the_loaded_defaults():
    from shared.settings import SETTINGS

    settings = load_settings({})
    for entry in SETTINGS:
        source = settings.default_policy if entry.per_experiment else settings
        assert getattr(source, entry.key) == entry.resolve(entry.default), entry.name


def test_the_environment_and_a_mapping_take_the_same_path(monkeypatch):
    env = {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "GOVERNANCE_REQUIRED_TAGS": "owner",
        "GOVERNANCE_CONCURRENCY": "8",
        "AZURE_CLIENT_ID": GUID,
    }
    for name in list(__import__("os").environ):
        if name.startswith(("GOVERNANCE_", "MLFLOW_TRACKING_URI", "AZURE_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings() == load_settings(env)


def test_the_azure_settings_are_typed_and_optional():
    settings = load_settings({})
    assert settings.azure_client_id is None
    assert settings.workspace is None
    assert settings.events_topic_endpoint is None
    assert settings.concurrency == 8
    settings = load_settings(
        {
            "AZURE_CLIENT_ID": GUID.upper(),
            "AZURE_SUBSCRIPTION_ID": GUID,
            "AZURE_ML_WORKSPACE_RESOURCE_GROUP": "rg-ml",
            "AZURE_ML_WORKSPACE_NAME": "mlw-team",
            "GOVERNANCE_EVENTS_TOPIC_ENDPOINT": "https://t.westeurope-1.eventgrid.azure.net/api/events",
            "GOVERNANCE_CONCURRENCY": "16",
        }
    )
    assert settings.azure_client_id == GUID.upper()
    assert settings.workspace is not None
    assert settings.workspace.resource_id == WORKSPACE_ID
    assert settings.events_topic_endpoint == "https://t.westeurope-1.eventgrid.azure.net/api/events"
    assert settings.concurrency == 16


def test_a_subscription_alone_names_no_workspace():
    # azd and CI logins export AZURE_SUBSCRIPTION_ID for themselves: not a half-given workspace.
    loaded = load_settings({"AZURE_SUBSCRIPTION_ID": GUID, "MLFLOW_TRACKING_URI": "http://x:5000"})
    assert loaded.workspace is None
    assert loaded.azure_subscription_id is None


@pytest.mark.parametrize(
    "workspace_id",
    [
        WORKSPACE_ID,
        WORKSPACE_ID.replace(
            "Microsoft.MachineLearningServices", "microsoft.machinelearningservices"
        ),
        WORKSPACE_ID.replace("resourceGroups", "resourcegroups") + "/",
    ],
)
def test_a_workspace_arm_id_gives_the_coordinates(workspace_id):
    workspace = load_settings({"AZURE_ML_WORKSPACE_ID": workspace_id}).workspace
    assert workspace is not None
    assert (workspace.subscription_id, workspace.resource_group, workspace.name) == (
        GUID,
        "rg-ml",
        "mlw-team",
    )


@pytest.mark.parametrize(
    ("env", "setting", "expected"),
    [
        (
            {"AZURE_SUBSCRIPTION_ID": GUID, "AZURE_ML_WORKSPACE_RESOURCE_GROUP": "rg"},
            "AZURE_ML_WORKSPACE_NAME",
            "required with",
        ),
        ({"AZURE_ML_WORKSPACE_NAME": "mlw-team"}, "AZURE_SUBSCRIPTION_ID", "required with"),
        (
            {"AZURE_ML_WORKSPACE_ID": WORKSPACE_ID, "AZURE_ML_WORKSPACE_NAME": "mlw-team"},
            "AZURE_ML_WORKSPACE_ID",
            "not both",
        ),
        (
            {"AZURE_ML_WORKSPACE_ID": WORKSPACE_ID.replace("workspaces", "jobs")},
            "AZURE_ML_WORKSPACE_ID",
            "not a workspace ARM id",
        ),
        (
            {"AZURE_ML_WORKSPACE_ID": WORKSPACE_ID.replace(GUID, "sub")},
            "AZURE_ML_WORKSPACE_ID",
            "not a GUID",
        ),
        (
            {"AZURE_ML_WORKSPACE_ID": WORKSPACE_ID + "/x"},
            "AZURE_ML_WORKSPACE_ID",
            "not a workspace ARM id",
        ),
        ({"AZURE_CLIENT_ID": "my-identity"}, "AZURE_CLIENT_ID", "not a GUID"),
        ({"AZURE_SUBSCRIPTION_ID": "prod"}, "AZURE_SUBSCRIPTION_ID", "not a GUID"),
        ({"AZURE_ML_WORKSPACE_NAME": "w"}, "AZURE_ML_WORKSPACE_NAME", "not a workspace name"),
        (
            {"AZURE_ML_WORKSPACE_RESOURCE_GROUP": "rg."},
            "AZURE_ML_WORKSPACE_RESOURCE_GROUP",
            "not a resource group",
        ),
        ({"GOVERNANCE_CONCURRENCY": "0"}, "GOVERNANCE_CONCURRENCY", "at least 1"),
        ({"GOVERNANCE_CONCURRENCY": "two"}, "GOVERNANCE_CONCURRENCY", "not a whole number"),
        (
            {"GOVERNANCE_EVENTS_TOPIC_ENDPOINT": "http://t.eventgrid.azure.net/api/events"},
            "GOVERNANCE_EVENTS_TOPIC_ENDPOINT",
            "https://",
        ),
        (
            {"GOVERNANCE_EVENTS_TOPIC_ENDPOINT": "https://u:p@t.eventgrid.azure.net/"},
            "GOVERNANCE_EVENTS_TOPIC_ENDPOINT",
            "credentials",
        ),
    ],
)
def test_bad_azure_settings_name_the_setting(env, setting, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert caught.value.setting == setting
    assert expected in caught.value.problem


def test_azure_settings_cannot_be_overridden_per_experiment(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("overrides:\n  - experiments: x\n    concurrency: 2\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_POLICY_FILE": str(path)})
    assert caught.value.setting.endswith("concurrency")
    assert "unknown policy key" in caught.value.problem


def _policy_file(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings({"GOVERNANCE_POLICY_FILE": str(path), "GOVERNANCE_REQUIRED_TAGS": "owner"})


def test_each_experiments_policy_is_resolved_once(tmp_path, monkeypatch):
    from shared.settings import Policy

    settings = _policy_file(
        tmp_path, "overrides:\n  - experiments: churn-*\n    cleanup_after_hours: 12\n"
    )
    validated = []
    original = Policy.model_validate.__func__

    def counting(cls, *args, **kwargs):
        validated.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Policy, "model_validate", classmethod(counting))
    first = settings.policy_for("churn-a")
    assert all(settings.policy_for("churn-a") is first for _ in range(100))
    assert first.cleanup_after_hours == 12
    assert first.required_tags == ("owner",)
    assert settings.policy_for("fraud") is settings.default_policy
    assert validated == []  # the overrides were validated when the file was read


def test_the_resolved_policies_are_not_part_of_the_value(tmp_path):
    settings = _policy_file(
        tmp_path, "overrides:\n  - experiments: churn-*\n    cleanup_after_hours: 12\n"
    )
    again = settings.model_copy()
    settings.policy_for("churn-a")
    assert settings == again
    # A copy with other overrides does not reuse the first one's resolved policies.
    bare = settings.model_copy(update={"overrides": ()})
    assert bare.policy_for("churn-a").cleanup_after_hours == 72
    assert settings.policy_for("churn-a").cleanup_after_hours == 12


# --- Rejections asked for by the reliability issue ---------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("GOVERNANCE_SWEEP_SCHEDULE", "a b c d e f", "second field: 'a' is not a number"),
        ("GOVERNANCE_SWEEP_SCHEDULE", "0 60 * * * *", "minute field: 60 is outside 0-59"),
        ("GOVERNANCE_SWEEP_SCHEDULE", "0 0 24 * * *", "hour field: 24 is outside 0-23"),
        ("GOVERNANCE_SWEEP_SCHEDULE", "0 0 0 0 * *", "day field: 0 is outside 1-31"),
        ("GOVERNANCE_SUMMARY_SCHEDULE", "0 0 8 * 13 *", "month field: 13 is outside 1-12"),
        ("GOVERNANCE_SUMMARY_SCHEDULE", "0 0 8 * * 7", "weekday field: 7 is outside 0-6"),
        ("GOVERNANCE_SUMMARY_SCHEDULE", "0 0 8 * * Funday", "not a number or a weekday name"),
        ("GOVERNANCE_SUMMARY_SCHEDULE", "0 */0 * * * *", "step 0"),
        ("GOVERNANCE_SUMMARY_SCHEDULE", "0 0 9-5 * * *", "runs backwards"),
        ("GOVERNANCE_SUMMARY_SCHEDULE", "0 0 8 * * 1-5,", "is not *, a value"),
        ("GOVERNANCE_EXPERIMENTS", ",,,", "the list has no items"),
        ("GOVERNANCE_REQUIRED_TAGS", " , ", "the list has no items"),
        ("GOVERNANCE_CLEANUP_STATUSES", ",", "the list has no items"),
        ("GOVERNANCE_PROMOTION_MODEL_NAME", "{experiment_name:>300000000}", "only plain fields"),
        ("GOVERNANCE_PROMOTION_MODEL_NAME", "{experiment_name!r}", "only plain fields"),
        ("GOVERNANCE_PROMOTION_MODEL_NAME", "{run_name.__class__}", "only plain fields"),
        ("GOVERNANCE_PROMOTION_MODEL_NAME", "{user[0]}", "only plain fields"),
        ("GOVERNANCE_PROMOTION_MODEL_NAME", "{}", "only plain fields"),
        ("GOVERNANCE_TAG_DEFAULTS", '{"team": "{user:^99999999}"}', "only plain fields"),
        ("MLFLOW_TRACKING_URI", "http://[::1", "not a valid URI"),
        ("MLFLOW_TRACKING_URI", "not a uri", "not a URI"),
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:99999", "not a valid URI"),
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:port", "not a valid URI"),
        ("MLFLOW_TRACKING_URI", "https:///mlflow", "needs a host name"),
        ("MLFLOW_TRACKING_URI", "http://user:s3cret@[::1/x", "not a valid URI"),
    ],
)
def test_values_the_reliability_review_found_are_refused(setting, value, expected):
    env = {setting: value}
    if setting.startswith("GOVERNANCE_PROMOTION_"):
        env |= {"GOVERNANCE_PROMOTION_METRIC": "auc", "GOVERNANCE_PROMOTION_THRESHOLD": "0.8"}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert caught.value.setting == setting
    assert expected in caught.value.problem
    assert "s3cret" not in str(caught.value)
    assert len(str(caught.value)) < 500  # a pathological value is not echoed in full


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("GOVERNANCE_SWEEP_SCHEDULE", "0 30 9 * Jan Mon"),
        ("GOVERNANCE_SWEEP_SCHEDULE", "*/15 0,30 9-17/2 1-31 JAN-dec sun-SAT"),
        ("GOVERNANCE_SUMMARY_SCHEDULE", "0 0 8 * * 1-5"),
        ("GOVERNANCE_PROMOTION_MODEL_NAME", "{{team}}-{experiment_name}-{run_name}-{user}"),
        ("MLFLOW_TRACKING_URI", "http://[::1]:5000"),
        ("MLFLOW_TRACKING_URI", "C:/mlruns"),
    ],
)
def test_valid_values_of_the_stricter_rules_are_kept(setting, value):
    env = {setting: value}
    settings = load_settings(env)
    shown = {
        "GOVERNANCE_SWEEP_SCHEDULE": settings.sweep_schedule,
        "GOVERNANCE_SUMMARY_SCHEDULE": settings.summary_schedule,
        "GOVERNANCE_PROMOTION_MODEL_NAME": settings.default_policy.promotion_model_name,
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
    }[setting]
    assert shown == value


@pytest.mark.parametrize(
    "reference",
    [
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/teams-webhook/)",
        "@microsoft.keyvault(VaultName=kv;SecretName=teams-webhook)",
    ],
)
def test_an_unresolved_key_vault_reference_is_reported_not_fatal(reference):
    settings = load_settings({"GOVERNANCE_TEAMS_WEBHOOK_URL": reference, "GOVERNANCE_DRY_RUN": "1"})
    assert settings.teams_webhook_url is None
    assert settings.dry_run is True
    [warning] = settings.warnings
    assert warning.setting == "GOVERNANCE_TEAMS_WEBHOOK_URL"
    assert "unresolved Key Vault reference" in warning.problem
    assert str(warning).startswith("GOVERNANCE_TEAMS_WEBHOOK_URL: ")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n"
                for p, n in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + "overrides: []\n",
            "YAML aliases",
        ),
        ("overrides: " + "[" * 200 + "]" * 200 + "\n", "nested deeper"),
        (b"overrides:\n  - experiments: \xff\xfe\n", "not UTF-8"),
        ("overrides: []\n" + "#" * (1024 * 1024 + 10), "larger than"),
    ],
)
def test_hostile_policy_files_are_refused_naming_the_setting(tmp_path, content, expected):
    path = tmp_path / "policy.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_POLICY_FILE": str(path)})
    assert caught.value.setting == "GOVERNANCE_POLICY_FILE"
    assert expected in caught.value.problem


def test_an_endless_policy_file_is_refused():
    from pathlib import Path

    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_POLICY_FILE": "/dev/zero"})
    assert caught.value.setting == "GOVERNANCE_POLICY_FILE"
    assert "larger than" in caught.value.problem


@pytest.mark.parametrize("globs", ["''", "[]", "['churn-*', ' ']"])
def test_a_policy_file_override_needs_real_globs(tmp_path, globs):
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"overrides:\n  - experiments: {globs}\n    required_tags: []\n", encoding="utf-8"
    )
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_POLICY_FILE": str(path)})
    assert caught.value.setting.endswith("experiments")
