"""The estate: which workspaces one deployment governs, where each came from, which events and
queue messages it accepts, and how `mlgov check` shows it (offline, or with a discovery)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import check
from shared.estate import Estate, Member, NotInEstate, Workspace
from shared.settings import load_settings
from shared.settings.workspaces import in_tracking_uri

SUB = "00000000-0000-4000-8000-000000000001"
OTHER_SUB = "00000000-0000-4000-8000-0000000000ff"
PROVIDER = "providers/Microsoft.MachineLearningServices/workspaces"
ROOT = Path(__file__).resolve().parents[2]


def arm(name: str, group: str = "rg-ml", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/{PROVIDER}/{name}"


def azureml_uri(arm_id: str) -> str:
    return f"azureml://westeurope.api.azureml.ms/mlflow/v1.0{arm_id}"


THREE = ",".join([arm("mlw-a"), arm("mlw-b", "rg-2"), arm("mlw-c", sub=OTHER_SUB)])


class Lister:
    """A discovery standing in for azure-ai-ml's: records each scope it is asked for."""

    def __init__(self, *answers: list[Workspace]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, scope: str) -> list[Workspace]:
        self.asked.append(scope)
        return self.answers.pop(0)


# --- One workspace, as before ----------------------------------------------------------------


def test_no_settings_is_one_default_member_on_the_embedded_store():
    settings = load_settings({})
    estate = Estate.from_settings(settings)
    [member] = estate
    assert member.workspace is None
    assert (member.name, member.source, member.arm_id) == ("default", "single", None)
    assert member.tracking_uri == settings.effective_tracking_uri()
    assert estate.default is member
    assert estate.workspaces == ()


def test_a_plain_tracking_uri_is_the_default_member_named_without_its_credentials():
    estate = Estate.from_settings(
        load_settings({"MLFLOW_TRACKING_URI": "https://alice:s3cret@mlflow.example.invalid/"})
    )
    [member] = estate
    assert member.id == "https://mlflow.example.invalid/"
    assert "s3cret" not in json.dumps(estate.describe())
    # Nothing to compare an event's workspace with: every event is its own, as before.
    assert estate.find(arm("mlw-anything")) is member
    assert estate.find(None) is member
    assert estate.select("default") is member
    with pytest.raises(NotInEstate, match="not in the estate"):
        estate.select("mlw-a")


def test_an_azureml_uri_names_its_workspace():
    uri = azureml_uri(arm("mlw-team"))
    [member] = Estate.from_settings(load_settings({"MLFLOW_TRACKING_URI": uri}))
    assert member.workspace == Workspace(SUB, "rg-ml", "mlw-team")
    assert (member.source, member.tracking_uri) == ("single", uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5000",
        "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/r"
        f"/{PROVIDER}/w",
        f"azureml://host/mlflow/v1.0{arm('mlw-a')}/jobs/x",
        None,
    ],
)
def test_other_uris_name_no_workspace(uri):
    assert in_tracking_uri(uri) is None


def test_coordinates_alone_are_one_member_whose_uri_is_resolved():
    settings = load_settings(
        {
            "AZURE_SUBSCRIPTION_ID": SUB,
            "AZURE_ML_WORKSPACE_RESOURCE_GROUP": "rg-ml",
            "AZURE_ML_WORKSPACE_NAME": "mlw-team",
        }
    )
    [member] = Estate.from_settings(settings)
    assert member.arm_id == arm("mlw-team")
    assert (member.source, member.tracking_uri) == ("single", None)


# --- Many workspaces -------------------------------------------------------------------------


def test_listed_workspaces_are_members_in_order():
    estate = Estate.from_settings(load_settings({"GOVERNANCE_WORKSPACES": THREE}))
    assert [m.name for m in estate] == ["mlw-a", "mlw-b", "mlw-c"]
    assert {m.source for m in estate} == {"list"}
    assert all(m.tracking_uri is None for m in estate)
    assert estate.default is None
    assert not estate.discovered


def test_the_deployed_shape_keeps_the_list_order_and_the_first_ones_uri():
    uri = azureml_uri(arm("mlw-b", "rg-2").lower())
    settings = load_settings(
        {
            "MLFLOW_TRACKING_URI": uri,
            "AZURE_ML_WORKSPACE_ID": arm("mlw-b", "rg-2"),
            "GOVERNANCE_WORKSPACES": THREE,
        }
    )
    estate = Estate.from_settings(settings)
    assert [(m.name, m.source, m.tracking_uri) for m in estate] == [
        ("mlw-a", "list", None),
        ("mlw-b", "list", uri),
        ("mlw-c", "list", None),
    ]


def test_a_single_workspace_not_listed_comes_first():
    settings = load_settings(
        {"AZURE_ML_WORKSPACE_ID": arm("mlw-z"), "GOVERNANCE_WORKSPACES": arm("mlw-a")}
    )
    estate = Estate.from_settings(settings)
    assert [(m.name, m.source) for m in estate] == [("mlw-z", "single"), ("mlw-a", "list")]


# --- Routing: events and queue messages ------------------------------------------------------


@pytest.fixture
def three() -> Estate:
    return Estate.from_settings(load_settings({"GOVERNANCE_WORKSPACES": THREE}))


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        (arm("mlw-b", "rg-2"), "mlw-b"),
        (arm("mlw-b", "rg-2").lower(), "mlw-b"),
        (arm("MLW-C", sub=OTHER_SUB).upper(), "mlw-c"),
        (arm("mlw-a").replace("resourceGroups", "resourcegroups") + "/", "mlw-a"),
        (f"  {arm('mlw-a')} ", "mlw-a"),
    ],
)
def test_an_event_reaches_the_member_its_topic_names(three, topic, name):
    member = three.find(topic)
    assert member is not None
    assert member.name == name


@pytest.mark.parametrize(
    "topic",
    [
        arm("mlw-d"),
        arm("mlw-a", "rg-other"),
        arm("mlw-a", sub=OTHER_SUB),
        arm("mlw-a") + "/jobs/run-1",
        arm("mlw-a").replace("workspaces", "registries"),
        "mlw-a",
        "",
        None,
    ],
)
def test_an_outsider_is_not_in_the_estate(three, topic):
    assert three.find(topic) is None


def test_a_workspace_of_the_scope_is_governed_before_discovery_lists_it():
    settings = load_settings(
        {
            "GOVERNANCE_WORKSPACES": arm("mlw-c", sub=OTHER_SUB),
            "GOVERNANCE_WORKSPACE_SCOPE": f"/subscriptions/{SUB}/resourceGroups/rg-ml",
        }
    )
    estate = Estate.from_settings(settings)
    assert [m.name for m in estate] == ["mlw-c"]
    new = estate.find(arm("mlw-new").upper())
    assert new == Member(Workspace(SUB, "rg-ml", "mlw-new"), "scope")
    assert estate.find(arm("mlw-new", "rg-2")) is None
    assert estate.find(arm("mlw-c", sub=OTHER_SUB)) is estate.members[0]


def test_select_takes_a_name_or_an_arm_id(three):
    assert three.select("MLW-B").name == "mlw-b"
    assert three.select(arm("mlw-c", sub=OTHER_SUB).lower()).name == "mlw-c"
    with pytest.raises(NotInEstate, match=r"'mlw-x' is not in the estate \(members: mlw-a, mlw-b"):
        three.select("mlw-x")
    with pytest.raises(NotInEstate, match="not in the estate"):
        three.select(arm("mlw-x"))


def test_a_name_shared_by_two_workspaces_needs_the_arm_id():
    twins = f"{arm('mlw-a')},{arm('mlw-a', 'rg-2')}"
    estate = Estate.from_settings(load_settings({"GOVERNANCE_WORKSPACES": twins}))
    with pytest.raises(NotInEstate, match="names 2 workspaces: give the ARM id"):
        estate.select("mlw-a")
    assert estate.select(arm("mlw-a", "rg-2")).workspace == Workspace(SUB, "rg-2", "mlw-a")


def test_an_estate_holds_each_workspace_once():
    one = Workspace(SUB, "rg", "mlw-a")
    with pytest.raises(ValueError, match="once"):
        Estate((Member(one, "list"), Member(Workspace(SUB, "RG", "MLW-A"), "scope")))


# --- Discovery -------------------------------------------------------------------------------

SCOPED = {
    "GOVERNANCE_WORKSPACES": arm("mlw-a"),
    "GOVERNANCE_WORKSPACE_SCOPE": f"/subscriptions/{SUB}",
}


def test_discovery_adds_the_scopes_workspaces_after_the_listed_ones():
    lister = Lister(
        [
            Workspace(SUB, "rg-ml", "MLW-A"),  # listed already: kept once, as listed
            Workspace(SUB, "rg-2", "mlw-d"),
            Workspace(OTHER_SUB, "rg-2", "mlw-stray"),  # outside the scope: never admitted
            Workspace(SUB, "rg-3", "mlw-e"),
        ]
    )
    estate = Estate.from_settings(load_settings(SCOPED), discover=lister)
    assert lister.asked == [f"/subscriptions/{SUB}"]
    assert [(m.name, m.source) for m in estate] == [
        ("mlw-a", "list"),
        ("mlw-d", "scope"),
        ("mlw-e", "scope"),
    ]
    assert estate.discovered
    assert estate.find(arm("mlw-stray", "rg-2", OTHER_SUB)) is None


def test_discovery_is_read_again_each_time_the_estate_is_built():
    settings = load_settings(SCOPED)
    lister = Lister([], [Workspace(SUB, "rg-2", "mlw-new")])
    before = Estate.from_settings(settings, discover=lister)
    after = Estate.from_settings(settings, discover=lister)
    assert [m.name for m in before] == ["mlw-a"]
    assert [m.name for m in after] == ["mlw-a", "mlw-new"]
    assert len(lister.asked) == 2


def test_a_scope_alone_with_nothing_found_is_an_empty_estate():
    settings = load_settings({"GOVERNANCE_WORKSPACE_SCOPE": f"/subscriptions/{SUB}"})
    assert len(Estate.from_settings(settings, discover=Lister([]))) == 0
    assert len(Estate.from_settings(settings)) == 0


def test_a_failing_discovery_is_the_callers_to_handle():
    def broken(scope: str) -> list[Workspace]:
        raise ConnectionError(scope)

    with pytest.raises(ConnectionError):
        Estate.from_settings(load_settings(SCOPED), discover=broken)


def test_azure_ai_mls_lister_fits_the_discovery(monkeypatch):
    """The composition root's adapter: `list_workspaces` through the SDK's own client, against
    a transport answering the documented Workspaces - List payload."""
    from shared.azure.workspace import WorkspaceRef, list_workspaces
    from tests.azure_support import SUBSCRIPTION, FakeAzure, StaticCredential, workspace_body

    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    listing = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ml/{PROVIDER}"
    answer = {"value": [workspace_body("rg-ml", "mlw-one"), workspace_body("rg-ml", "mlw-two")]}
    fake = FakeAzure().on("GET", listing, (200, answer))

    def discover(scope: str) -> list[WorkspaceRef]:
        found = list_workspaces(StaticCredential(), scope, transport=fake.transport())
        return [info.ref for info in found]

    settings = load_settings(
        {"GOVERNANCE_WORKSPACE_SCOPE": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ml"}
    )
    estate = Estate.from_settings(settings, discover=discover)
    assert [m.arm_id for m in estate] == [
        arm("mlw-one", sub=SUBSCRIPTION),
        arm("mlw-two", sub=SUBSCRIPTION),
    ]


# --- mlgov check -----------------------------------------------------------------------------


def test_check_shows_each_member_and_where_it_came_from():
    settings = load_settings(
        {"AZURE_ML_WORKSPACE_ID": arm("mlw-z"), "GOVERNANCE_WORKSPACES": THREE}
    )
    text = check.render(settings)
    assert "Estate (4 workspaces):" in text
    assert f"  {'mlw-z':<36} {arm('mlw-z')}  (the single workspace" in text
    assert f"  {'mlw-b':<36} {arm('mlw-b', 'rg-2')}  (listed in GOVERNANCE_WORKSPACES)" in text
    described = check.describe(settings)
    assert [(m["name"], m["source"]) for m in described["estate"]["members"]] == [
        ("mlw-z", "single"),
        ("mlw-a", "list"),
        ("mlw-b", "list"),
        ("mlw-c", "list"),
    ]
    assert described["estate"]["scope"] is None
    assert described["workspaces"] == THREE.split(",")
    assert described["workspace_scope"] is None
    assert "policy" not in described["estate"]["members"][0]


def test_check_shows_an_unread_scope_offline():
    settings = load_settings(SCOPED)
    text = check.render(settings)
    assert f"/subscriptions/{SUB}  (discovered at each sweep; not read by check)" in text
    described = check.describe(settings)["estate"]
    assert (described["scope"], described["discovered"]) == (f"/subscriptions/{SUB}", False)
    assert [m["name"] for m in described["members"]] == ["mlw-a"]


def test_check_reads_the_scope_when_handed_a_discovery(monkeypatch, capsys):
    for name, value in SCOPED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    lister = Lister([Workspace(SUB, "rg-2", "mlw-d")])
    args = __import__("argparse").Namespace(json=True)
    assert check.run(args, discover=lister) == 0
    estate = json.loads(capsys.readouterr().out)["estate"]
    assert estate["discovered"] is True
    assert [(m["name"], m["source"]) for m in estate["members"]] == [
        ("mlw-a", "list"),
        ("mlw-d", "scope"),
    ]


POLICY = """
overrides:
  - experiments: "churn-*"
    promotion_metric: auc_roc
    promotion_threshold: 0.85
  - workspaces: "mlw-a"
    cleanup_after_hours: 168
  - workspaces: "mlw-b"
    experiments: "churn-*"
    promotion_threshold: 0.5
  - workspaces: "mlw-typo"
    required_tags: [owner]
"""


def test_check_shows_each_workspaces_own_policy(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    settings = load_settings({"GOVERNANCE_WORKSPACES": THREE, "GOVERNANCE_POLICY_FILE": str(path)})
    text = check.render(settings)
    assert "Policy for workspace mlw-a:\n  GOVERNANCE_CLEANUP_AFTER_HOURS       168\n" in text
    assert "Policy for workspace mlw-b:\n  GOVERNANCE_PROMOTION_THRESHOLD       0.5  (exp" in text
    assert "Policy for workspace mlw-c" not in text
    assert "Note: overrides[3] names workspaces mlw-typo: none in the estate" in text
    described = check.describe(settings)
    members = {m["name"]: m for m in described["estate"]["members"]}
    assert members["mlw-a"]["policy"]["cleanup_after_hours"] == 168
    assert members["mlw-b"]["policy"]["cleanup_after_hours"] == 72
    assert [members[n]["overrides"] for n in ("mlw-a", "mlw-b", "mlw-c")] == [[1], [2], []]
    assert described["estate"]["unmatched_overrides"] == [3]
    assert described["overrides"][0] == {
        "experiments": ["churn-*"],
        "promotion_metric": "auc_roc",
        "promotion_threshold": 0.85,
    }
    assert described["overrides"][1] == {
        "experiments": ["*"],
        "workspaces": ["mlw-a"],
        "cleanup_after_hours": 168,
    }


def test_the_estate_needs_no_sdk_to_import():
    code = (
        "import sys, shared.estate, shared.cli.check;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'mlflow', 'azureml')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
