from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from shared.engine.actions import Skip, Target
from shared.model import Experiment, ModelVersion, Run
from shared.policies.base import RunContext
from shared.policies.promote_to_registry import (
    PromotionFacts,
    RegisterModelVersion,
    beats,
    best_per_model,
    evaluate,
    precheck,
)
from shared.settings import build_policy
from shared.tracking.gateway import ModelSource

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EXPERIMENT = Experiment(experiment_id="7", name="churn")


def run(status: str = "FINISHED", metrics: dict[str, float] | None = None, **tags: str) -> Run:
    return Run(
        run_id="r1",
        experiment_id="7",
        status=status,
        start_time=NOW,
        end_time=NOW,
        tags={"mlflow.user": "ana", "mlflow.runName": "rf-01", **tags},
        metrics={"auc": 0.9} if metrics is None else metrics,
    )


def context(**values: object) -> RunContext:
    policy = build_policy({"promotion_metric": "auc", "promotion_threshold": 0.8, **values})
    return RunContext(now=NOW, experiment=EXPERIMENT, policy=policy)


PRECHECK = [
    ("failed run", run("FAILED"), {}, "run is FAILED: only successful runs are promoted"),
    ("no metric", run(metrics={"loss": 0.1}), {}, "no metric auc"),
    ("NaN metric", run(metrics={"auc": math.nan}), {}, "auc is nan, not a finite number"),
    ("inf metric", run(metrics={"auc": math.inf}), {}, "auc is inf, not a finite number"),
    ("below threshold", run(metrics={"auc": 0.79}), {}, "auc=0.79 is below the threshold 0.8"),
    (
        "minimize: above threshold",
        run(metrics={"auc": 0.9}),
        {"promotion_goal": "minimize"},
        "auc=0.9 is above the threshold 0.8",
    ),
    (
        "noncompliant",
        run(team="x"),
        {"required_tags": "team,owner"},
        "noncompliant (missing owner): not promoted",
    ),
    (
        "already promoted",
        run(**{"governance.promoted_to": "churn:3"}),
        {},
        "already promoted to churn:3",
    ),
    ("at the threshold", run(metrics={"auc": 0.8}), {}, None),
    ("minimize: under", run(metrics={"auc": 0.2}), {"promotion_goal": "minimize"}, None),
    ("compliant", run(owner="ana"), {"required_tags": "owner"}, None),
    (
        "promoted to another model",
        run(**{"governance.promoted_to": "other:1"}),
        {},
        None,
    ),
]


@pytest.mark.parametrize(
    ("the_run", "values", "expected"), [c[1:] for c in PRECHECK], ids=[c[0] for c in PRECHECK]
)
def test_precheck(the_run, values, expected):
    assert precheck(the_run, context(**values)) == expected


def facts(champion_run: str | None = "old", value: float | None = 0.85, **extra) -> PromotionFacts:
    champion = (
        ModelVersion(name="churn", version="2", run_id=champion_run, source="runs:/x/model")
        if champion_run is not None
        else None
    )
    return PromotionFacts(
        model_name="churn",
        champion=champion,
        champion_value=value if champion else None,
        run_versions=extra.get("run_versions", ()),
        run_url="http://mlflow/#/r1",
        model_source=extra.get("model_source", ModelSource("runs:/r1/model")),
    )


def test_first_promotion_registers_with_the_card_details():
    (action,) = evaluate(run(), context(), facts(champion_run=None))
    assert isinstance(action, RegisterModelVersion)
    assert action.reason == "auc=0.9 clears 0.8; first champion"
    assert (action.value, action.threshold, action.previous_value) == (0.9, 0.8, None)
    # The report's strings, made only for `--json`.
    assert action.json_details() == {
        "model_name": "churn",
        "alias": "champion",
        "metric": "auc",
        "value": "0.9",
        "threshold": "0.8",
        "goal": "maximize",
        "artifact_path": "model",
        "run_url": "http://mlflow/#/r1",
    }


def test_beating_the_champion_registers_and_remembers_the_previous_one():
    (action,) = evaluate(run(), context(), facts(value=0.85))
    assert isinstance(action, RegisterModelVersion)
    assert (action.previous_version, action.previous_value) == ("2", 0.85)
    assert action.reason == "auc=0.9 beats champion churn v2 (0.85)"


@pytest.mark.parametrize("champion_value", [0.9, 0.95])
def test_equal_or_worse_than_champion_is_skipped(champion_value):
    (action,) = evaluate(run(), context(), facts(value=champion_value))
    assert isinstance(action, Skip)
    assert action.reason == f"auc=0.9 does not beat champion churn v2 ({champion_value:.4g})"


def test_minimize_goal_needs_a_lower_value():
    ctx = context(promotion_goal="minimize", promotion_threshold=0.5)
    lower = run(metrics={"auc": 0.2})
    assert isinstance(evaluate(lower, ctx, facts(value=0.3))[0], RegisterModelVersion)
    assert isinstance(evaluate(lower, ctx, facts(value=0.1))[0], Skip)


def test_min_improvement_damps_near_identical_challengers():
    ctx = context(promotion_min_improvement=0.01)
    (skip,) = evaluate(run(metrics={"auc": 0.905}), ctx, facts(value=0.9))
    assert isinstance(skip, Skip)
    assert skip.reason.endswith("by at least 0.01")
    # Exactly the margin counts, despite float noise (0.91 - 0.9 != 0.01 in binary).
    (action,) = evaluate(run(metrics={"auc": 0.91}), ctx, facts(value=0.9))
    assert isinstance(action, RegisterModelVersion)


def test_champion_without_a_comparable_metric_is_left_alone():
    (action,) = evaluate(run(), context(), facts(value=None))
    assert isinstance(action, Skip)
    assert "champion churn v2 has no auc to compare with" in action.reason


def test_alias_already_on_this_runs_version_finishes_the_promotion():
    (action,) = evaluate(run(), context(), facts(champion_run="r1", value=0.9))
    assert isinstance(action, RegisterModelVersion)
    assert "finish tagging" in action.reason


def test_existing_version_of_the_run_is_reused():
    mine = ModelVersion(name="churn", version="5", run_id="r1", source="runs:/r1/model")
    (action,) = evaluate(run(), context(), facts(value=0.85, run_versions=(mine,)))
    assert isinstance(action, RegisterModelVersion)
    assert action.reason.endswith("(reusing v5 of this run)")


def test_run_without_a_model_is_skipped_before_any_decision():
    (action,) = evaluate(run(), context(), facts(champion_run=None, model_source=None))
    assert isinstance(action, Skip)
    assert action.reason.startswith("no model at 'model' in this run")


def test_a_run_that_fails_the_precheck_is_skipped_without_facts():
    (action,) = evaluate(run("KILLED"), context(), None)
    assert isinstance(action, Skip)
    assert action.reason == "run is KILLED: only successful runs are promoted"


@pytest.mark.parametrize(
    ("value", "than", "goal", "margin", "expected"),
    [
        (0.9, 0.8, "maximize", 0.0, True),
        (0.8, 0.8, "maximize", 0.0, False),
        (0.7, 0.8, "minimize", 0.0, True),
        (0.8, 0.8, "minimize", 0.0, False),
        (0.805, 0.8, "maximize", 0.01, False),
        (0.81, 0.8, "maximize", 0.01, True),
    ],
)
def test_beats(value, than, goal, margin, expected):
    assert beats(value, than, goal, margin) is expected


def _promotion(run_id: str, value: float, model: str = "churn", goal: str = "maximize"):
    return RegisterModelVersion(
        policy="promote-to-registry",
        target=Target(run_id=run_id, experiment_id="7", experiment_name="churn", run_name=run_id),
        reason="r",
        model_name=model,
        alias="champion",
        artifact_path="model",
        metric="auc",
        value=value,
        threshold=0.8,
        goal=goal,
        outranks=lambda reader, current: True,
    )


class Registry:
    """The read the comparison makes: the run behind a version and its metrics."""

    def __init__(self, metrics: dict[str, dict[str, float]]) -> None:
        self.metrics = metrics

    def get_run(self, run_id: str) -> Run:
        return Run(run_id, "7", "FINISHED", NOW, NOW, metrics=self.metrics.get(run_id, {}))


@pytest.mark.parametrize(
    ("holder_auc", "expected"), [(0.85, True), (0.9, False), (0.95, False), (None, False)]
)
def test_the_handler_rechecks_the_alias_holder_with_the_policys_comparison(holder_auc, expected):
    """`outranks` is what the handler asks right before moving the alias: the policy's
    `beats`, against the metric of the version that holds the alias now."""
    (action,) = evaluate(run(), context(), facts(value=0.85))
    assert isinstance(action, RegisterModelVersion)
    holder = ModelVersion(name="churn", version="4", run_id="rival", source="runs:/rival/model")
    metrics = {"rival": {"auc": holder_auc}} if holder_auc is not None else {}
    assert action.outranks(Registry(metrics), holder) is expected  # type: ignore[arg-type]


def test_best_per_model_keeps_one_promotion_per_registered_model():
    other = Skip(policy="require-tags", target=_promotion("x", 0).target, reason="already")
    actions = [
        _promotion("t1", 0.91),
        other,
        _promotion("t2", 0.93),
        _promotion("t3", 0.92),
        _promotion("solo", 0.85, model="fraud"),
    ]
    result = best_per_model(actions)
    kept = [a.target.run_id for a in result if isinstance(a, RegisterModelVersion)]
    assert kept == ["t2", "solo"]
    assert result[1] is other
    assert result[0].reason == "not the best of this sweep: t2 has auc=0.93 (this run 0.91)"
    assert isinstance(result[3], Skip)


def test_best_per_model_minimize_and_ties_keep_the_first():
    result = best_per_model(
        [
            _promotion("a", 0.2, goal="minimize"),
            _promotion("b", 0.2, goal="minimize"),
            _promotion("c", 0.3, goal="minimize"),
        ]
    )
    assert [type(a).__name__ for a in result] == ["RegisterModelVersion", "Skip", "Skip"]
