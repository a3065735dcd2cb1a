"""The engine: every action type has its handler in the one table, the executor reads dry-run
and records typed results, and the `--json` view of each action keeps its exact strings."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared import tags as T
from shared.engine import actions
from shared.engine.actions import (
    Action,
    DeleteRun,
    EventRef,
    GuardNotice,
    Notice,
    RegisterModelVersion,
    RestoreRun,
    RunFailedNotice,
    SetRunTags,
    Skip,
    Target,
    Unable,
)
from shared.engine.executor import Executor
from shared.engine.handlers.table import HANDLERS, STAGED
from shared.engine.results import Registered, RestoreUnsupported
from shared.errors import CapabilityUnsupported, TrackingError
from shared.model import Experiment, Run
from shared.policies.base import RunContext
from shared.policies.cleanup_failed_runs import CleanupFacts, evaluate
from shared.settings import build_policy
from tests.support import NOW

TARGET = Target("r1", "7", "churn", run_name="rf-01", user="ana")
# Recorded as they are decided, never applied: no handler.
RECORDED_ONLY = (Skip, Unable, Notice)


def _concrete(cls: type[Action]) -> set[type[Action]]:
    """Every action type the engine defines (slotted dataclasses replace their first class
    object, so only the one the module holds counts)."""
    found = set()
    for sub in cls.__subclasses__():
        if getattr(actions, sub.__name__, None) is sub:
            found.add(sub)
        found |= _concrete(sub)
    return found


def test_every_action_type_has_its_handler_in_the_table() -> None:
    applicable = {c for c in _concrete(Action) if c not in RECORDED_ONLY}
    assert applicable == set(HANDLERS), "an action type without a handler (or a stale entry)"


def test_a_staged_action_type_also_has_its_handler_for_one_action_alone() -> None:
    # `apply_one`, and a stage tried again after a 429, apply the action by its handler.
    assert set(STAGED) == {DeleteRun}
    assert set(STAGED) <= set(HANDLERS)


def test_recorded_only_actions_never_reach_a_handler_and_dry_run_plans() -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the executor called gateway.{name}")

    live = Executor(Untouchable(), dry_run=False)  # type: ignore[arg-type]
    dry = Executor(Untouchable(), dry_run=True)  # type: ignore[arg-type]
    skip = Skip(policy="p", target=TARGET, reason="nothing to do")
    unable = Unable(policy="p", target=TARGET, reason="could not read", step="read-run")
    tags = SetRunTags(policy="p", target=TARGET, reason="fill", set_tags={"a": "1"})

    assert (live.apply_one(skip).outcome, live.apply_one(skip).action) == ("skipped", "skip")
    # A step that could not be taken failed, dry run or not.
    assert (dry.apply_one(unable).outcome, dry.apply_one(unable).action) == ("failed", "read-run")
    planned = dry.apply_one(tags)
    assert (planned.outcome, planned.result, planned.decision) == ("planned", None, tags)


class Gateway:
    """Just the calls the handlers under test make; writes are kept."""

    def __init__(self, run: Run | None = None, restore_error: Exception | None = None) -> None:
        self.run = run
        self.restore_error = restore_error
        self.writes: list[tuple[str, object]] = []

    def get_run(self, run_id: str) -> Run:
        assert self.run is not None
        return self.run

    def set_run_tags(self, run_id: str, tags: object, delete: object = ()) -> None:
        self.writes.append(("set_run_tags", (dict(tags), tuple(delete))))  # type: ignore[call-overload]

    def delete_run(self, run_id: str) -> None:
        self.writes.append(("delete_run", run_id))

    def restore_run(self, run_id: str) -> None:
        if self.restore_error is not None:
            raise self.restore_error
        self.writes.append(("restore_run", run_id))


def _failed_run(**tags: str) -> Run:
    end = NOW - timedelta(hours=100)
    return Run("r1", "7", "FAILED", end - timedelta(minutes=5), end, tags=tags)


def _deletion() -> DeleteRun:
    policy = build_policy({"cleanup_statuses": "FAILED", "cleanup_after_hours": 72})
    context = RunContext(now=NOW, experiment=Experiment("7", "churn"), policy=policy)
    (action,) = evaluate(_failed_run(), context, CleanupFacts())
    assert isinstance(action, DeleteRun)
    return action


def test_delete_asks_the_policys_rule_about_the_fresh_run_restored_meanwhile() -> None:
    # Restored by `mlgov restore` after the sweep decided: the policy spares such a run, so
    # the handler must too (it asks the policy's own rule, not a copy of part of it).
    gateway = Gateway(_failed_run(**{T.RESTORED_AT: "2026-11-26T11:00:00+00:00"}))

    record = Executor(gateway, dry_run=False).apply_one(_deletion())  # type: ignore[arg-type]

    assert record.outcome == "skipped"
    assert record.reason.startswith("restored by mlgov restore at 2026-11-26T11:00:00+00:00")
    assert gateway.writes == []


def test_delete_tags_then_deletes_a_run_unchanged_since_the_decision() -> None:
    gateway = Gateway(_failed_run())

    record = Executor(gateway, dry_run=False).apply_one(_deletion())  # type: ignore[arg-type]

    assert record.outcome == "applied"
    assert [name for name, _ in gateway.writes] == ["set_run_tags", "delete_run"]


def test_a_server_that_cannot_restore_is_a_typed_result() -> None:
    refusing = Gateway(restore_error=CapabilityUnsupported("restore_run is not supported"))
    action = RestoreRun(
        policy="restore",
        target=TARGET,
        reason="deleted by mlgov",
        deleted_at="2026-11-26T10:00:00+00:00",
        set_tags={T.RESTORED_AT: "2026-11-26T12:00:00+00:00"},
        clear_tags=(T.DELETED_REASON, T.DELETED_AT),
    )

    record = Executor(refusing, dry_run=False).apply_one(action)  # type: ignore[arg-type]

    assert record.outcome == "failed"
    assert isinstance(record.result, RestoreUnsupported)
    assert record.details["unsupported"] == "true"


def test_a_refused_handler_call_is_a_failed_record_with_the_actions_details() -> None:
    class Refusing(Gateway):
        def set_run_tags(self, run_id: str, tags: object, delete: object = ()) -> None:
            raise TrackingError("PERMISSION_DENIED: no", "PERMISSION_DENIED")

    action = SetRunTags(policy="p", target=TARGET, reason="fill", set_tags={"a": "1"})
    record = Executor(Refusing(), dry_run=False).apply_one(action)  # type: ignore[arg-type]

    assert (record.outcome, record.reason) == ("failed", "fill; failed: PERMISSION_DENIED: no")
    assert record.details == {"set:a": "1"}


def _promotion() -> RegisterModelVersion:
    return RegisterModelVersion(
        policy="promote-to-registry",
        target=TARGET,
        reason="r",
        model_name="churn",
        alias="champion",
        artifact_path="model",
        metric="auc",
        value=0.1 + 0.2,
        threshold=0.8,
        goal="maximize",
        outranks=lambda reader, current: True,
        previous_version="2",
        previous_value=0.85,
    )


# The `--json` strings of each typed action (and result): the report's contract.
JSON_DETAILS = [
    (
        RunFailedNotice(
            policy="run-event",
            target=TARGET,
            reason="run ended FAILED",
            status="FAILED",
            duration_s=1799.6,
            run_url=None,
        ),
        None,
        {
            "topic": "run-failed",
            "status": "FAILED",
            "run_name": "rf-01",
            "owner": "ana",
            "duration_s": "1800",
            "run_url": "",
        },
    ),
    (
        GuardNotice(
            policy="cleanup-failed-runs",
            target=Target("", "", "a, b"),
            reason="too many",
            candidates=8,
            cap=5,
            setting="GOVERNANCE_CLEANUP_MAX_RUNS",
            examples=("a/x (12345678)", "b/y (87654321)"),
            per_experiment=(("a", 5), ("b", 3)),
        ),
        None,
        {
            "topic": "cleanup-guard",
            "candidates": "8",
            "cap": "5",
            "setting": "GOVERNANCE_CLEANUP_MAX_RUNS",
            "examples": "a/x (12345678), b/y (87654321)",
            "experiments": "a=5, b=3",
        },
    ),
    (
        _promotion(),
        Registered(version="3", alias_set_as="tag", source="runs:/r1/model"),
        {
            "model_name": "churn",
            "alias": "champion",
            "metric": "auc",
            "value": "0.30000000000000004",
            "threshold": "0.8",
            "goal": "maximize",
            "artifact_path": "model",
            "previous_version": "2",
            "previous_value": "0.85",
            "version": "3",
            "alias_set_as": "tag",
            "source": "runs:/r1/model",
        },
    ),
    (
        Unable(
            policy="run-event",
            target=TARGET,
            reason="cannot read",
            step="read-run",
            event=EventRef("e1", "Microsoft.MachineLearningServices.RunCompleted"),
            error_code="PERMISSION_DENIED",
        ),
        None,
        {
            "event_id": "e1",
            "event_type": "Microsoft.MachineLearningServices.RunCompleted",
            "error_code": "PERMISSION_DENIED",
        },
    ),
]


@pytest.mark.parametrize(
    ("action", "result", "expected"), JSON_DETAILS, ids=lambda v: type(v).__name__
)
def test_the_json_view_keeps_every_detail_as_the_same_string(
    action: Action, result: Registered | None, expected: dict[str, str]
) -> None:
    from shared.engine.report import Record

    record = Record(action, "applied", action.reason, result)
    dumped = json.loads(json.dumps(record.to_dict()))
    assert list(dumped["details"].items()) == list(expected.items())
    assert dumped["action"] == action.kind


def test_deletion_details_round_the_age_only_in_the_report() -> None:
    action = _deletion()
    assert action.age_hours == 100.0
    assert action.json_details() == {
        "status": "FAILED",
        "age_hours": "100.0",
        f"set:{T.DELETED_REASON}": action.set_tags[T.DELETED_REASON],
        f"set:{T.DELETED_AT}": "2026-11-26T12:00:00+00:00",
    }
