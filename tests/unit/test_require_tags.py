from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.engine.actions import SetRunTags, Skip
from shared.model import Experiment, Run
from shared.policies.base import RunContext
from shared.policies.require_tags import evaluate
from shared.settings import build_policy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EXPERIMENT = Experiment(experiment_id="7", name="churn")


def run(status: str = "FINISHED", **tags: str) -> Run:
    return Run(
        run_id="r1",
        experiment_id="7",
        status=status,
        start_time=NOW,
        end_time=NOW,
        tags={"mlflow.user": "ana", "mlflow.runName": "rf-01", **tags},
    )


def context(required: str = "", defaults: dict[str, str] | None = None) -> RunContext:
    policy = build_policy({"required_tags": required, "tag_defaults": defaults or {}})
    return RunContext(now=NOW, experiment=EXPERIMENT, policy=policy)


CASES = [
    # (id, run tags, required, defaults, expected set, expected delete)
    (
        "all present",
        {"owner": "ana", "team": "x"},
        "owner,team",
        {},
        {"governance.compliance": "compliant"},
        (),
    ),
    (
        "one missing",
        {"owner": "ana"},
        "owner,team",
        {},
        {"governance.compliance": "noncompliant", "governance.missing_tags": "team"},
        (),
    ),
    (
        "blank value counts as missing",
        {"owner": "  "},
        "owner",
        {},
        {"governance.compliance": "noncompliant", "governance.missing_tags": "owner"},
        (),
    ),
    (
        "default fills the gap",
        {},
        "owner",
        {"owner": "{user}"},
        {"owner": "ana", "governance.compliance": "compliant"},
        (),
    ),
    (
        "templates expand",
        {},
        "",
        {"origin": "{experiment_name}/{run_name}"},
        {"origin": "churn/rf-01"},
        (),
    ),
    (
        "existing value is never overwritten",
        {"owner": "ben"},
        "owner",
        {"owner": "{user}"},
        {"governance.compliance": "compliant"},
        (),
    ),
    (
        "becomes compliant: stale missing list removed",
        {
            "owner": "ana",
            "governance.compliance": "noncompliant",
            "governance.missing_tags": "owner",
        },
        "owner",
        {},
        {"governance.compliance": "compliant"},
        ("governance.missing_tags",),
    ),
    (
        "missing list updated",
        {
            "governance.compliance": "noncompliant",
            "governance.missing_tags": "owner,team",
            "owner": "ana",
        },
        "owner,team",
        {},
        {"governance.missing_tags": "team"},
        (),
    ),
]


@pytest.mark.parametrize(
    ("tags", "required", "defaults", "expected_set", "expected_delete"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decisions(tags, required, defaults, expected_set, expected_delete):
    actions = evaluate(run(**tags), context(required, defaults))
    assert len(actions) == 1
    action = actions[0]
    assert isinstance(action, SetRunTags)
    assert dict(action.set_tags) == expected_set
    assert action.delete_tags == expected_delete
    assert action.policy == "require-tags"
    assert action.target.run_id == "r1"
    assert action.target.experiment_name == "churn"


def test_user_template_without_user_leaves_the_tag_missing():
    bare = Run(run_id="r2", experiment_id="7", status="FINISHED", start_time=NOW, end_time=NOW)
    (action,) = evaluate(bare, context("owner", {"owner": "{user}"}))
    assert isinstance(action, SetRunTags)
    assert action.set_tags == {
        "governance.compliance": "noncompliant",
        "governance.missing_tags": "owner",
    }


@pytest.mark.parametrize(
    "tags",
    [
        {"owner": "ana", "governance.compliance": "compliant"},
        {"governance.compliance": "noncompliant", "governance.missing_tags": "owner"},
    ],
)
def test_already_in_the_desired_state_is_a_skip(tags):
    (action,) = evaluate(run(**tags), context("owner"))
    assert isinstance(action, Skip)
    assert action.reason.startswith("already ")


def test_unfinished_run_is_skipped():
    (action,) = evaluate(run(status="RUNNING"), context("owner"))
    assert isinstance(action, Skip)
    assert "RUNNING" in action.reason
