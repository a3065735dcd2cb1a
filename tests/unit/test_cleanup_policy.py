"""`cleanup-failed-runs` as a pure function: candidates, the rails that spare a run, the tags."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared import tags as T
from shared.engine.actions import DeleteRun, Skip
from shared.model import Experiment, Run
from shared.policies.base import RunContext
from shared.policies.cleanup_failed_runs import CleanupFacts, evaluate
from shared.settings import build_policy
from tests.support import NOW

EXPERIMENT = Experiment("1", "churn")


def run(status="FAILED", ended_hours_ago=100.0, started_hours_ago=None, tags=None, deleted=False):
    end = NOW - timedelta(hours=ended_hours_ago) if ended_hours_ago is not None else None
    start = NOW - timedelta(hours=started_hours_ago) if started_hours_ago is not None else end
    return Run("r1", "1", status, start, end, tags=tags or {}, deleted=deleted)


def decide(the_run, facts=None, **policy_values):
    policy = build_policy(
        {"cleanup_statuses": "FAILED", "cleanup_after_hours": 72, **policy_values}
    )
    context = RunContext(now=NOW, experiment=EXPERIMENT, policy=policy)
    (action,) = evaluate(the_run, context, facts or CleanupFacts())
    return action


@pytest.mark.parametrize(
    ("the_run", "statuses", "deleted"),
    [
        (run("FAILED", 100), "FAILED", True),
        (run("FAILED", 73), "FAILED", True),
        (run("FAILED", 71), "FAILED", False),  # inside the grace period
        (run("KILLED", 100), "FAILED", False),  # not listed
        (run("KILLED", 100), "FAILED,KILLED", True),
        (run("FINISHED", 100), "FAILED,KILLED", False),
        (run("FAILED", 100), "failed", True),  # settings compare case-insensitively
        (run("Failed", 100), "FAILED", True),  # Azure ML's spelling of the run status
        (run("FAILED", None, started_hours_ago=100), "FAILED", True),  # no end: its start
        (run("FAILED", None, started_hours_ago=10), "FAILED", False),
        (run("FAILED", 100, deleted=True), "FAILED", False),
    ],
)
def test_candidates_by_status_and_age(the_run, statuses, deleted):
    action = decide(the_run, cleanup_statuses=statuses)
    assert isinstance(action, DeleteRun) is deleted


@pytest.mark.parametrize(
    ("tags", "facts", "reason"),
    [
        ({"governance.keep": "true"}, None, "protected by governance.keep=true"),
        ({"governance.keep": "TRUE"}, None, "protected by governance.keep=true"),
        ({T.RESTORED_AT: "2026-11-25T10:00:00+00:00"}, None, "restored by mlgov restore"),
        ({}, CleanupFacts(has_model_versions=True), "produced a registered model version"),
        (
            {},
            CleanupFacts(blocking_children=("child (abc): status RUNNING",), child_count=2),
            "parent of runs that stay: child (abc): status RUNNING",
        ),
    ],
)
def test_rails_spare_a_run_and_say_why(tags, facts, reason):
    action = decide(run(tags=tags), facts)
    assert isinstance(action, Skip)
    assert action.reason.startswith(reason)


def test_keep_tag_other_than_true_does_not_protect():
    assert isinstance(decide(run(tags={"governance.keep": "no"})), DeleteRun)


def test_custom_protect_tag():
    tagged = run(tags={"do-not-delete": "true"})
    assert isinstance(decide(tagged, protect_tag="do-not-delete"), Skip)
    assert isinstance(decide(tagged), DeleteRun)


def test_deletion_carries_reason_and_time_tags():
    action = decide(run("FAILED", 100), CleanupFacts(child_count=1))
    assert isinstance(action, DeleteRun)
    assert action.set_tags == {
        T.DELETED_REASON: "cleanup-failed-runs: status FAILED, ended 100.0 h ago "
        "(grace period 72 h)",
        T.DELETED_AT: "2026-11-26T12:00:00+00:00",
    }
    assert action.is_parent
    assert action.age_hours == 100.0
    assert action.json_details()["age_hours"] == "100.0"


@pytest.mark.parametrize(
    ("tags", "status", "expected"),
    [
        ({}, "FAILED", None),
        ({}, "Failed", None),  # Azure ML's spelling is the same status
        (
            {"governance.keep": "true"},
            "FAILED",
            "protected by governance.keep=true since the sweep decided",
        ),
        (
            {T.RESTORED_AT: "2026-11-26T11:00:00+00:00"},
            "FAILED",
            "restored by mlgov restore at 2026-11-26T11:00:00+00:00 "
            f"(remove {T.RESTORED_AT} to allow cleanup) since the sweep decided",
        ),
        ({}, "FINISHED", "status changed to FINISHED since the sweep decided"),
    ],
    ids=["unchanged", "azure-spelling", "protected", "restored", "status-changed"],
)
def test_the_deletion_is_rechecked_by_the_policys_own_rule(tags, status, expected):
    """The handler asks `recheck` about the run re-read just before deleting it: every rule
    that spares a run (the restored-at tag too) applies then, not a copy of some of them."""
    action = decide(run("FAILED", 100))
    assert isinstance(action, DeleteRun)
    assert action.recheck(run(status, 100, tags=tags)) == expected


@pytest.mark.parametrize(
    ("marked_hours_ago", "tags", "deleted"),
    [
        (1, {}, False),  # restored by someone an hour after mlgov deleted it: honoured
        (71, {}, False),
        (73, {}, True),  # a grace period after the mark: a candidate again
        (1, {"governance.restored_at": "2026-11-26T11:30:00+00:00"}, False),  # mlgov restore
        (None, {"governance.deleted_at": "not a time"}, True),  # unreadable mark: no claim
    ],
)
def test_a_restore_by_someone_else_is_honoured_for_one_grace_period(
    marked_hours_ago, tags, deleted
):
    all_tags = dict(tags)
    if marked_hours_ago is not None:
        marked = NOW - timedelta(hours=marked_hours_ago)
        all_tags[T.DELETED_AT] = marked.isoformat(timespec="seconds")
    action = decide(run("FAILED", 100, tags=all_tags))
    assert isinstance(action, DeleteRun) is deleted
    if not deleted and T.RESTORED_AT not in all_tags:
        assert "restored by someone" in action.reason
