"""The estate's settings (`GOVERNANCE_WORKSPACES`, `GOVERNANCE_WORKSPACE_SCOPE`), the rules that
tie them to `MLFLOW_TRACKING_URI`, and per-workspace entries of the policy file."""

from __future__ import annotations

import pytest

from shared.errors import SettingsError
from shared.settings import Policy, Scope, Workspace, load_settings

SUB = "00000000-0000-4000-8000-000000000001"
OTHER_SUB = "00000000-0000-4000-8000-0000000000ff"
PROVIDER = "providers/Microsoft.MachineLearningServices/workspaces"


def arm(name: str, group: str = "rg-ml", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/{PROVIDER}/{name}"


def azureml_uri(arm_id: str) -> str:
    return f"azureml://westeurope.api.azureml.ms/mlflow/v1.0{arm_id}"


# --- GOVERNANCE_WORKSPACES -------------------------------------------------------------------


def test_the_listed_workspaces_are_parsed_in_order():
    settings = load_settings({"GOVERNANCE_WORKSPACES": f" {arm('mlw-b')} ,{arm('mlw-a', 'rg-2')}"})
    assert settings.workspaces == (arm("mlw-b"), arm("mlw-a", "rg-2"))
    assert [w.name for w in settings.listed_workspaces] == ["mlw-b", "mlw-a"]
    assert settings.listed_workspaces[1].resource_group == "rg-2"


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_list_is_the_single_workspace_as_before(value):
    # The infrastructure writes an empty value when it deploys for one workspace.
    settings = load_settings({"GOVERNANCE_WORKSPACES": value})
    assert settings.workspaces == ()
    assert settings.listed_workspaces == ()


@pytest.mark.parametrize(
    "value",
    [
        f"{arm('mlw-a')},{arm('mlw-a').upper()}",
        f"{arm('mlw-a')},{arm('MLW-A').replace('resourceGroups', 'resourcegroups')}",
        f"{arm('mlw-a')}/,{arm('mlw-a')}",
    ],
)
def test_a_workspace_listed_twice_in_any_case_is_refused(value):
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_WORKSPACES": value})
    assert caught.value.setting == "GOVERNANCE_WORKSPACES"
    assert "item 2 of 2 repeats item 1" in caught.value.problem
    assert "list each workspace once" in caught.value.problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{arm('mlw-a')},{arm('mlw-b').replace(SUB, 'prod')}", "item 2 of 2: not a GUID"),
        (f"{arm('w')}", "item 1 of 1: not a workspace name"),
        (f"{arm('mlw-a', 'rg.')}", "not a resource group name"),
        (f"{arm('mlw-a')},/subscriptions/{SUB}", "item 2 of 2: not a workspace ARM id"),
        (f"{arm('mlw-a')}/jobs/j", "not a workspace ARM id"),
        ("mlw-a", "not a workspace ARM id"),
        (",,", "the list has no items"),
    ],
)
def test_each_listed_id_is_checked_like_the_single_one(value, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_WORKSPACES": value})
    assert caught.value.setting == "GOVERNANCE_WORKSPACES"
    assert expected in caught.value.problem


# --- GOVERNANCE_WORKSPACE_SCOPE --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"/subscriptions/{SUB}", Scope(SUB)),
        (f"/subscriptions/{SUB}/", Scope(SUB)),
        (f"/subscriptions/{SUB}/resourceGroups/rg-ml", Scope(SUB, "rg-ml")),
        (f"/SUBSCRIPTIONS/{SUB}/resourcegroups/RG-ML/", Scope(SUB, "rg-ml")),
    ],
)
def test_a_scope_is_a_subscription_or_a_resource_group(value, expected):
    settings = load_settings({"GOVERNANCE_WORKSPACE_SCOPE": value})
    assert settings.workspace_scope == value.strip()
    assert settings.scope == expected
    assert settings.scope != Scope(OTHER_SUB, expected.resource_group)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/subscriptions/prod", "not a GUID"),
        (f"/subscriptions/{SUB}/resourceGroups/rg.", "not a resource group name"),
        (arm("mlw-a"), "not a discovery scope"),
        (SUB, "not a discovery scope"),
        (f"/subscriptions/{SUB}/resourceGroups/", "not a discovery scope"),
    ],
)
def test_a_bad_scope_names_the_setting(value, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings({"GOVERNANCE_WORKSPACE_SCOPE": value})
    assert caught.value.setting == "GOVERNANCE_WORKSPACE_SCOPE"
    assert expected in caught.value.problem


def test_a_scope_holds_the_workspaces_of_its_subscription_or_group():
    group = Scope(SUB, "RG-ml")
    assert group.contains(Workspace(SUB.upper(), "rg-ML", "mlw-a"))
    assert not group.contains(Workspace(SUB, "rg-other", "mlw-a"))
    assert not group.contains(Workspace(OTHER_SUB, "rg-ml", "mlw-a"))
    whole = Scope(SUB)
    assert whole.contains(Workspace(SUB, "anything", "mlw-a"))
    assert not whole.contains(Workspace(OTHER_SUB, "anything", "mlw-a"))
    assert whole.arm_id == f"/subscriptions/{SUB}"
    assert group.arm_id == f"/subscriptions/{SUB}/resourceGroups/RG-ml"


# --- MLFLOW_TRACKING_URI next to an estate ---------------------------------------------------


def test_a_plain_tracking_uri_next_to_many_workspaces_must_say_whose_it_is():
    for extra in (
        {"GOVERNANCE_WORKSPACES": f"{arm('mlw-a')},{arm('mlw-b')}"},
        {"GOVERNANCE_WORKSPACE_SCOPE": f"/subscriptions/{SUB}"},
    ):
        with pytest.raises(SettingsError) as caught:
            load_settings({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", **extra})
        assert caught.value.setting == "MLFLOW_TRACKING_URI"
        assert "AZURE_ML_WORKSPACE_ID" in caught.value.problem
        assert next(iter(extra)) in caught.value.problem


def test_a_tracking_uri_is_accepted_once_its_workspace_is_named():
    listed = {"GOVERNANCE_WORKSPACES": f"{arm('mlw-a')},{arm('mlw-b')}"}
    named = load_settings(
        {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "AZURE_ML_WORKSPACE_ID": arm("mlw-a")}
        | listed
    )
    assert named.tracking_uri == "http://127.0.0.1:5000"
    # An azureml:// URI names its workspace itself.
    pointed = load_settings({"MLFLOW_TRACKING_URI": azureml_uri(arm("mlw-b"))} | listed)
    assert pointed.workspaces == (arm("mlw-a"), arm("mlw-b"))


def test_a_tracking_uri_of_another_workspace_than_the_coordinates_is_refused():
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "MLFLOW_TRACKING_URI": azureml_uri(arm("mlw-other")),
                "AZURE_SUBSCRIPTION_ID": SUB,
                "AZURE_ML_WORKSPACE_RESOURCE_GROUP": "rg-ml",
                "AZURE_ML_WORKSPACE_NAME": "mlw-team",
            }
        )
    assert caught.value.setting == "MLFLOW_TRACKING_URI"
    assert "mlw-other" in caught.value.problem
    assert "mlw-team" in caught.value.problem


def test_the_deployed_shape_loads():
    # What infra/main.bicep writes for three workspaces: the URI and coordinates of the first
    # (as Azure spells them, in another case), and the estate with the first one first.
    settings = load_settings(
        {
            "MLFLOW_TRACKING_URI": azureml_uri(arm("mlw-team").lower()),
            "AZURE_SUBSCRIPTION_ID": SUB,
            "AZURE_ML_WORKSPACE_RESOURCE_GROUP": "rg-ml",
            "AZURE_ML_WORKSPACE_NAME": "mlw-team",
            "GOVERNANCE_WORKSPACES": ",".join(
                [arm("mlw-team"), arm("mlw-b", "rg-2"), arm("mlw-c", sub=OTHER_SUB)]
            ),
        }
    )
    assert settings.workspace == Workspace(SUB, "rg-ml", "mlw-team")
    assert len(settings.listed_workspaces) == 3


# --- Workspace values ------------------------------------------------------------------------


def test_workspaces_compare_case_insensitively_and_keep_their_spelling():
    given = Workspace.from_arm_id(
        arm("MLW-Team", "RG-ML").replace("resourceGroups", "resourcegroups")
    )
    assert given == Workspace(SUB, "rg-ml", "mlw-team")
    assert hash(given) == hash(Workspace(SUB.upper(), "rg-ml", "mlw-team"))
    assert len({given, Workspace(SUB, "rg-ml", "mlw-team")}) == 1
    assert given.name == "MLW-Team"
    assert given.arm_id == arm("MLW-Team", "RG-ML")
    assert given != Workspace(SUB, "rg-ml", "mlw-other")
    with pytest.raises(ValueError, match="not a GUID"):
        Workspace.from_arm_id(arm("mlw-a").replace(SUB, "x"))


def test_workspace_globs_match_the_name_or_the_arm_id():
    workspace = Workspace(SUB, "rg-prod", "mlw-Prod-eu")
    assert workspace.matches("mlw-prod-*")
    assert workspace.matches("MLW-PROD-EU")
    assert not workspace.matches("mlw-dev-*")
    assert not workspace.matches("rg-prod")  # a name glob is never the group
    assert workspace.matches(f"/subscriptions/{SUB}/resourceGroups/rg-prod/*")
    assert workspace.matches(arm("mlw-prod-eu", "rg-prod").upper())
    assert not workspace.matches(f"/subscriptions/{SUB}/resourceGroups/rg-dev/*")


# --- The policy file, per workspace ----------------------------------------------------------

PROD = Workspace(SUB, "rg-prod", "mlw-prod")
DEV = Workspace(SUB, "rg-dev", "mlw-dev")


def _with_policy(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings({"GOVERNANCE_POLICY_FILE": str(path), "GOVERNANCE_REQUIRED_TAGS": "owner"})


FILE = """
overrides:
  - experiments: "churn-*"
    promotion_metric: auc_roc
    promotion_threshold: 0.85
  - workspaces: "mlw-prod"
    cleanup_after_hours: 168
  - workspaces: ["MLW-DEV", "mlw-test-*"]
    experiments: "churn-*"
    promotion_threshold: 0.5
  - workspaces: "/subscriptions/*/resourceGroups/rg-prod/*"
    experiments: ["churn-nightly"]
    required_tags: []
"""


def test_an_entry_with_only_workspaces_covers_every_experiment_there(tmp_path):
    settings = _with_policy(tmp_path, FILE)
    assert settings.policy_for("fraud", PROD).cleanup_after_hours == 168
    assert settings.policy_for("churn-daily", PROD).cleanup_after_hours == 168
    assert settings.policy_for("fraud", DEV).cleanup_after_hours == 72
    assert settings.policy_for("fraud", DEV) is settings.default_policy


def test_workspace_and_experiment_globs_combine_and_later_entries_win(tmp_path):
    settings = _with_policy(tmp_path, FILE)
    dev = settings.policy_for("churn-daily", DEV)
    assert (dev.promotion_metric, dev.promotion_threshold) == ("auc_roc", 0.5)
    assert (
        settings.policy_for("churn-daily", Workspace(SUB, "rg", "mlw-test-7")).promotion_threshold
        == 0.5
    )
    prod = settings.policy_for("churn-daily", PROD)
    assert (prod.promotion_threshold, prod.required_tags) == (0.85, ("owner",))
    # The ARM-id glob picks the group; the experiment glob narrows it.
    nightly = settings.policy_for("churn-nightly", PROD)
    assert nightly.required_tags == ()
    assert settings.policy_for("churn-nightly", DEV).required_tags == ("owner",)


def test_the_one_argument_call_is_the_policy_of_no_particular_workspace(tmp_path):
    settings = _with_policy(tmp_path, FILE)
    churn = settings.policy_for("churn-daily")
    assert (churn.promotion_threshold, churn.cleanup_after_hours) == (0.85, 72)
    assert settings.policy_for("fraud") is settings.default_policy
    assert settings.policy_for("fraud", None) is settings.policy_for("fraud")


def test_policies_are_cached_per_workspace_and_experiment(tmp_path, monkeypatch):
    settings = _with_policy(tmp_path, FILE)
    validated = []
    original = Policy.model_validate.__func__

    def counting(cls, *args, **kwargs):
        validated.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Policy, "model_validate", classmethod(counting))
    prod = settings.policy_for("churn-daily", PROD)
    same = Workspace(SUB.upper(), "RG-PROD", "MLW-PROD")
    assert settings.policy_for("churn-daily", same) is prod
    assert settings.policy_for("churn-daily", DEV) is not prod
    assert settings.policy_for("churn-daily") is not prod
    assert settings.policy_for("churn-daily") is settings.policy_for("churn-daily")
    assert validated == []


def test_the_workspace_wide_policy_takes_only_entries_for_every_experiment(tmp_path):
    settings = _with_policy(tmp_path, FILE)
    assert settings.distinguishes_workspaces
    assert settings.workspace_policy(PROD).cleanup_after_hours == 168
    assert settings.workspace_policy(PROD).promotion_metric is None
    assert settings.workspace_policy(DEV) is settings.default_policy
    assert settings.workspace_policy(None) is settings.default_policy
    plain = _with_policy(tmp_path, "overrides:\n  - experiments: x\n    cleanup_after_hours: 1\n")
    assert not plain.distinguishes_workspaces


@pytest.mark.parametrize(
    ("entry", "key", "expected"),
    [
        ("workspaces: []", "workspaces", "a glob or a non-empty list"),
        ("workspaces: ''", "workspaces", "a glob or a non-empty list"),
        ("workspaces: [mlw-a, 3]", "workspaces", "a glob or a non-empty list"),
        ("workspaces: mlw-a\n    experiments: []", "experiments", "a glob or a non-empty list"),
        ("cleanup_after_hours: 1", "experiments", "or `workspaces:`"),
        ("workspaces: mlw-a\n    concurrency: 2", "concurrency", "unknown policy key"),
        ("workspaces: mlw-a\n    promotion_metric: auc", "THRESHOLD", "required when"),
    ],
)
def test_a_bad_workspace_entry_names_its_key(tmp_path, entry, key, expected):
    with pytest.raises(SettingsError) as caught:
        _with_policy(tmp_path, f"overrides:\n  - {entry}\n    required_tags: []\n")
    assert caught.value.setting.startswith("GOVERNANCE_")
    assert caught.value.setting.endswith(key)
    assert "overrides[0]" in caught.value.setting
    assert expected in caught.value.problem
