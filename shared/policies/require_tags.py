"""`require-tags`: fill tag defaults, then mark each finished run compliant or noncompliant."""

from __future__ import annotations

from shared import tags as T
from shared.engine.actions import Action, SetRunTags, Skip, Target
from shared.model import Run
from shared.policies.base import RunContext
from shared.settings import Policy, expand_template
from shared.tracking.gateway import TrackingReader

NAME = "require-tags"


def _present(run: Run, key: str) -> bool:
    return bool(run.tags.get(key, "").strip())


def evaluate(run: Run, context: RunContext) -> list[Action]:
    policy = context.policy
    target = Target.of(run, context.experiment.name)
    if not run.is_terminal:
        return [Skip(policy=NAME, target=target, reason=f"run is {run.status}, not finished")]

    fill: dict[str, str] = {}
    for key, template in policy.tag_defaults.items():
        if _present(run, key):
            continue
        value = expand_template(
            template,
            user=run.user,
            experiment_name=context.experiment.name,
            run_name=run.run_name,
        ).strip()
        if value:  # `{user}` on a run without `mlflow.user` expands to nothing: still missing
            fill[key] = value

    desired = dict(fill)
    delete: tuple[str, ...] = ()
    missing = [k for k in policy.required_tags if not (_present(run, k) or k in fill)]
    if policy.required_tags:
        if missing:
            desired[T.COMPLIANCE] = T.NONCOMPLIANT
            desired[T.MISSING_TAGS] = ",".join(missing)
        else:
            desired[T.COMPLIANCE] = T.COMPLIANT
            if T.MISSING_TAGS in run.tags:
                delete = (T.MISSING_TAGS,)

    changes = {k: v for k, v in desired.items() if run.tags.get(k) != v}
    if not changes and not delete:
        state = "noncompliant" if missing else "compliant" if policy.required_tags else "tagged"
        return [Skip(policy=NAME, target=target, reason=f"already {state}")]

    # Announced (violations card) only when the run becomes noncompliant or lacks other keys
    # than before; a run already marked is skipped above, so it is not announced each sweep.
    announce = changes.get(T.COMPLIANCE) == T.NONCOMPLIANT or T.MISSING_TAGS in changes
    parts = []
    if fill:
        parts.append("filled " + ", ".join(sorted(fill)))
    if missing:
        parts.append("missing " + ", ".join(missing))
    elif policy.required_tags:
        parts.append("all required tags present")
    return [
        SetRunTags(
            policy=NAME,
            target=target,
            reason="; ".join(parts),
            set_tags=changes,
            delete_tags=delete,
            violation=tuple(missing) if announce else (),
        )
    ]


class RequireTags:
    name = NAME

    def enabled(self, policy: Policy) -> bool:
        return bool(policy.required_tags or policy.tag_defaults)

    def facts(self, run: Run, context: RunContext, reader: TrackingReader) -> None:
        return None

    def evaluate(self, run: Run, context: RunContext, facts: None) -> list[Action]:
        return evaluate(run, context)
