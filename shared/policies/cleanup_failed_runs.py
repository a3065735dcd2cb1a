"""`cleanup-failed-runs`: which runs the sweep may soft-delete, and which it must spare.

Pure decisions: the clock comes from the context, lookups (model versions, children) from
`CleanupFacts`. The sweep-wide cap is applied by the use case, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from shared import tags as T
from shared.engine.actions import Action, DeleteRun, Skip, Target
from shared.model import Run, normalise_status
from shared.policies.base import RunContext
from shared.settings import Policy, env_name
from shared.tracking.gateway import RunQuery

NAME = "cleanup-failed-runs"
MAX_RUNS_SETTING = "GOVERNANCE_CLEANUP_MAX_RUNS"


@dataclass(frozen=True, slots=True)
class CleanupFacts:
    """What the decision needs beyond the run: read by the use case before deciding."""

    has_model_versions: bool = False
    # Children that would outlive their parent, each as "name (id): why it stays".
    blocking_children: tuple[str, ...] = ()
    child_count: int = 0


def enabled(policy: Policy) -> bool:
    return bool(policy.cleanup_statuses)


def cutoff(policy: Policy, now: datetime) -> datetime:
    """Runs that finished before this moment are past the grace period."""
    return now - timedelta(hours=policy.cleanup_after_hours)


def candidate_query(experiment_id: str, policy: Policy, now: datetime) -> RunQuery:
    return RunQuery(
        experiment_id=experiment_id,
        statuses=policy.cleanup_statuses,
        finished_before=cutoff(policy, now),
    )


def spared_by_tag(run: Run, policy: Policy) -> str | None:
    """Why a run's own tags keep it (protect tag, or restored by `mlgov restore`), else None."""
    if run.tags.get(policy.protect_tag, "").strip().lower() == "true":
        return f"protected by {policy.protect_tag}=true"
    restored = run.tags.get(T.RESTORED_AT)
    if restored:
        return f"restored by mlgov restore at {restored} (remove {T.RESTORED_AT} to allow cleanup)"
    return None


def _tag_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def restored_by_someone(run: Run, policy: Policy, now: datetime) -> str | None:
    """Why an active run that still carries this tool's deletion mark stays: someone restored
    it (MLflow's `restore_run`, the UI) without `mlgov restore`, so its owner wants it back.

    Honoured for one grace period from the deletion mark; after that it is a candidate again
    (the deletion rewrites the mark). A deletion that failed after tagging and could not take
    its tags back looks the same, so it is retried only once that grace period has passed.
    """
    marked = _tag_time(run.tags.get(T.DELETED_AT))
    if run.deleted or marked is None or run.tags.get(T.RESTORED_AT):
        return None
    grace = timedelta(hours=policy.cleanup_after_hours)
    if now - marked >= grace:
        return None
    return (
        f"restored by someone after mlgov deleted it at {run.tags[T.DELETED_AT]}: left alone "
        f"for the {policy.cleanup_after_hours:g} h grace period from then"
    )


def not_candidate(run: Run, policy: Policy, now: datetime) -> str | None:
    """Why a run is outside the cleanup filter (status, age), or None when it matches it."""
    status = normalise_status(run.status)
    if status not in policy.cleanup_statuses:
        listed = ",".join(sorted(policy.cleanup_statuses)) or "none"
        return f"status {status} is not in {env_name('cleanup_statuses')} ({listed})"
    finished = run.finished_at
    if finished is None:
        return "run has neither an end nor a start time"
    if finished >= cutoff(policy, now):
        grace = policy.cleanup_after_hours
        return f"ended {_hours(now - finished)} h ago, within the {grace:g} h grace period"
    return None


def still_deletable(
    run: Run, *, policy: Policy, status: str, now: datetime | None = None
) -> str | None:
    """Why a run decided for deletion must stay after all, judged on the run re-read just
    before deleting it (None: delete it). The `DeleteRun` handler asks this rule; `now` is
    the moment the sweep decided."""
    spared = spared_by_tag(run, policy) or (
        restored_by_someone(run, policy, now) if now is not None else None
    )
    if spared is not None:
        return f"{spared} since the sweep decided"
    if normalise_status(run.status) != status:
        return f"status changed to {run.status} since the sweep decided"
    return None


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f}"


def evaluate(run: Run, context: RunContext, facts: CleanupFacts) -> list[Action]:
    """Delete the run, or say why not. Every "never delete" rule of cleanup lives here."""
    policy = context.policy
    target = Target.of(run, context.experiment.name)
    why_not = (
        ("run is already deleted" if run.deleted else None)
        or not_candidate(run, policy, context.now)
        or spared_by_tag(run, policy)
        or restored_by_someone(run, policy, context.now)
    )
    if why_not is None and facts.has_model_versions:
        why_not = "produced a registered model version"
    if why_not is None and facts.blocking_children:
        shown = "; ".join(facts.blocking_children[:3])
        more = len(facts.blocking_children) - 3
        why_not = f"parent of runs that stay: {shown}" + (f" (+{more} more)" if more > 0 else "")
    if why_not is not None:
        return [Skip(policy=NAME, target=target, reason=why_not)]

    assert run.finished_at is not None  # checked by not_candidate
    status = normalise_status(run.status)
    age = context.now - run.finished_at
    hours = age.total_seconds() / 3600
    reason = (
        f"{NAME}: status {status}, ended {hours:.1f} h ago "
        f"(grace period {policy.cleanup_after_hours:g} h)"
    )
    return [
        DeleteRun(
            policy=NAME,
            target=target,
            reason=f"{status} run ended {hours:.1f} h ago (grace {policy.cleanup_after_hours:g} h)",
            status=status,
            age_hours=hours,
            set_tags={
                T.DELETED_REASON: reason,
                T.DELETED_AT: context.now.astimezone(UTC).isoformat(timespec="seconds"),
            },
            recheck=partial(still_deletable, policy=policy, status=status, now=context.now),
            is_parent=facts.child_count > 0,
        )
    ]
