"""`promote-to-registry`: register a finished run's model when it beats the current champion.

The rules are pure (`precheck`, `evaluate`, `best_per_model`, `outranks`); the champion facts
are read in `facts`; `RegisterModelVersion` is applied by `shared.engine.handlers.promotion`,
which asks `outranks` again right before moving the alias.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from shared import tags as T
from shared.engine.actions import Action, RegisterModelVersion, Skip, Target
from shared.errors import RunNotFound
from shared.model import SUCCESS_STATUS, ModelVersion, Run
from shared.policies.base import RunContext
from shared.settings import Policy, expand_template
from shared.tracking.gateway import ModelSource, TrackingReader

__all__ = [
    "NAME",
    "PromoteToRegistry",
    "PromotionFacts",
    "RegisterModelVersion",
    "beats",
    "best_per_model",
    "evaluate",
    "outranks",
    "precheck",
    "read_facts",
    "version_metric",
]

NAME = "promote-to-registry"
# Float noise (0.91 - 0.90 = 0.0100000000000000089) must not decide a promotion.
_EPSILON = 1e-12


@dataclass(frozen=True, slots=True)
class PromotionFacts:
    """What the registry says now: the champion and its metric, whether the model exists,
    the run's model; `run_versions`, when a caller knows them, marks a version to reuse."""

    model_name: str
    champion: ModelVersion | None
    champion_value: float | None
    run_versions: tuple[ModelVersion, ...]
    run_url: str | None
    model_source: ModelSource | None = None
    model_exists: bool | None = None


def model_name_for(run: Run, context: RunContext) -> str:
    return expand_template(
        context.policy.promotion_model_name,
        user=run.user,
        experiment_name=context.experiment.name,
        run_name=run.run_name,
    )


def improvement(value: float, than: float, goal: str) -> float:
    return value - than if goal == "maximize" else than - value


def beats(value: float, than: float, goal: str, min_improvement: float = 0.0) -> bool:
    """Strictly better than `than`, and by at least `min_improvement`."""
    gain = improvement(value, than, goal)
    return gain > _EPSILON and gain >= min_improvement - _EPSILON


def clears_threshold(value: float, threshold: float, goal: str) -> bool:
    return value >= threshold if goal == "maximize" else value <= threshold


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def precheck(run: Run, context: RunContext) -> str | None:
    """Why the run cannot be promoted whatever the registry holds; None for a candidate."""
    policy = context.policy
    metric = policy.promotion_metric
    assert metric is not None
    assert policy.promotion_threshold is not None
    if run.status != SUCCESS_STATUS:
        return f"run is {run.status}: only successful runs are promoted"
    promoted = run.tags.get(T.PROMOTED_TO, "")
    if promoted.startswith(model_name_for(run, context) + ":"):
        return f"already promoted to {promoted}"
    missing = [k for k in policy.required_tags if not run.tags.get(k, "").strip()]
    if missing:
        return f"noncompliant (missing {', '.join(missing)}): not promoted"
    if metric not in run.metrics:
        return f"no metric {metric}"
    value = run.metrics[metric]
    if not math.isfinite(value):
        return f"{metric} is {value}, not a finite number"
    if not clears_threshold(value, policy.promotion_threshold, policy.promotion_goal):
        side = "below" if policy.promotion_goal == "maximize" else "above"
        return f"{metric}={_fmt(value)} is {side} the threshold {_fmt(policy.promotion_threshold)}"
    return None


def no_model(artifact_path: str) -> str:
    return (
        f"no model at '{artifact_path}' in this run (neither an MLmodel run artifact nor a "
        "logged model of that name): nothing registered"
    )


def version_metric(gateway: TrackingReader, version: ModelVersion, metric: str) -> float | None:
    """The metric behind `version`: its `governance.metric_value` tag, which this tool wrote
    from its source run's metric when it registered it (no request); else the metric of the
    run behind it (a version registered by hand), read once."""
    if version.tags.get(T.METRIC) == metric:
        try:
            tagged = float(version.tags.get(T.METRIC_VALUE, ""))
        except ValueError:
            tagged = math.nan
        if math.isfinite(tagged):
            return tagged
    if version.run_id:
        try:
            value = gateway.get_run(version.run_id).metrics.get(metric)
        except RunNotFound:
            value = None
        if value is not None and math.isfinite(value):
            return value
    return None


def outranks(
    reader: TrackingReader, current: ModelVersion, *, metric: str, value: float, goal: str
) -> bool:
    """Whether `value` beats `current` (the version the alias points at now) by its metric;
    a version without a comparable metric is never outranked (the alias stays there)."""
    held = version_metric(reader, current, metric)
    return held is not None and beats(value, held, goal)


def read_facts(run: Run, context: RunContext, gateway: TrackingReader) -> PromotionFacts:
    """The champion (one alias lookup, which also says whether the model exists) and the
    run's model. The run's own versions are not looked up: the handler lists them after
    registering anyway (a duplicate registration then gives way to the older version)."""
    policy = context.policy
    assert policy.promotion_metric is not None
    name = model_name_for(run, context)
    found = gateway.find_champion(name, policy.promotion_alias)
    champion = found.version
    champion_value = (
        version_metric(gateway, champion, policy.promotion_metric) if champion else None
    )
    return PromotionFacts(
        model_name=name,
        champion=champion,
        champion_value=champion_value,
        run_versions=(),
        run_url=gateway.run_url(run),
        model_source=gateway.find_model_source(run, policy.promotion_artifact_path),
        model_exists=found.model_exists,
    )


def evaluate(run: Run, context: RunContext, facts: PromotionFacts | None) -> list[Action]:
    policy = context.policy
    target = Target.of(run, context.experiment.name)
    reason = precheck(run, context)
    if reason is not None or facts is None:
        return [Skip(policy=NAME, target=target, reason=reason or "no registry facts")]
    metric, goal = policy.promotion_metric, policy.promotion_goal
    assert metric is not None
    assert policy.promotion_threshold is not None
    value = run.metrics[metric]
    champion = facts.champion
    label = f"{facts.model_name} v{champion.version}" if champion else ""

    if not facts.run_versions and facts.model_source is None:
        # Known before deciding, so a sweep never picks as its best a run it cannot register.
        return [Skip(policy=NAME, target=target, reason=no_model(policy.promotion_artifact_path))]
    if champion is not None and champion.run_id == run.run_id:
        # The alias already points here: an earlier attempt stopped before tagging the run.
        why = f"{label} from this run already carries {policy.promotion_alias}; finish tagging"
    elif champion is not None and facts.champion_value is None:
        return [
            Skip(
                policy=NAME,
                target=target,
                reason=f"champion {label} has no {metric} to compare with (neither on its run "
                f"nor as {T.METRIC_VALUE}): alias left alone",
            )
        ]
    elif champion is not None and facts.champion_value is not None:
        if not beats(value, facts.champion_value, goal, policy.promotion_min_improvement):
            margin = (
                f" by at least {_fmt(policy.promotion_min_improvement)}"
                if policy.promotion_min_improvement
                else ""
            )
            return [
                Skip(
                    policy=NAME,
                    target=target,
                    reason=f"{metric}={_fmt(value)} does not beat champion {label} "
                    f"({_fmt(facts.champion_value)}){margin}",
                )
            ]
        why = f"{metric}={_fmt(value)} beats champion {label} ({_fmt(facts.champion_value)})"
    else:
        why = (
            f"{metric}={_fmt(value)} clears {_fmt(policy.promotion_threshold)}; "
            f"first {policy.promotion_alias}"
        )
    if facts.run_versions:
        why += f" (reusing v{facts.run_versions[0].version} of this run)"
    return [
        RegisterModelVersion(
            policy=NAME,
            target=target,
            reason=why,
            model_name=facts.model_name,
            alias=policy.promotion_alias,
            artifact_path=policy.promotion_artifact_path,
            metric=metric,
            value=value,
            threshold=policy.promotion_threshold,
            goal=goal,
            outranks=partial(outranks, metric=metric, value=value, goal=goal),
            no_model_reason=no_model(policy.promotion_artifact_path),
            previous_version=champion.version if champion else None,
            previous_value=facts.champion_value,
            run_url=facts.run_url,
            source=facts.model_source,
            model_exists=facts.model_exists,
        )
    ]


def best_per_model(actions: Sequence[Action]) -> list[Action]:
    """Of the promotions one sweep decided, keep the best per registered model; skip the rest.

    A hyperparameter search that ends many trials at once then yields one version, not one
    per trial that beat the old champion. Ties keep the first (the sweep walks newest first).
    """
    best: dict[str, RegisterModelVersion] = {}
    for action in actions:
        if not isinstance(action, RegisterModelVersion):
            continue
        current = best.get(action.model_name)
        if current is None or beats(action.value, current.value, current.goal):
            best[action.model_name] = action
    result: list[Action] = []
    for action in actions:
        if isinstance(action, RegisterModelVersion) and best[action.model_name] is not action:
            winner = best[action.model_name]
            result.append(
                Skip(
                    policy=NAME,
                    target=action.target,
                    reason=f"not the best of this sweep: {winner.target.run_name} has "
                    f"{winner.metric}={_fmt(winner.value)} (this run {_fmt(action.value)})",
                )
            )
        else:
            result.append(action)
    return result


class PromoteToRegistry:
    name = NAME

    def enabled(self, policy: Policy) -> bool:
        return policy.promotion_enabled

    def facts(self, run: Run, context: RunContext, reader: TrackingReader) -> PromotionFacts | None:
        # Registry lookups only for candidates: the sweep walks many runs that are not.
        if precheck(run, context) is not None:
            return None
        return read_facts(run, context, reader)

    def evaluate(self, run: Run, context: RunContext, facts: PromotionFacts | None) -> list[Action]:
        return evaluate(run, context, facts)
