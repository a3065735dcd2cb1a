"""Apply the run-level policies to one finished run (shared by events and the sweep)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

from shared.engine.actions import Action, SetRunTags, Target, Unable
from shared.engine.executor import Executor
from shared.engine.report import Record
from shared.errors import TrackingError
from shared.model import Experiment, Run
from shared.policies import RUN_POLICIES
from shared.policies.base import RunContext
from shared.settings import Settings

log = logging.getLogger(__name__)


def policy_failed(policy: str, run: Run, experiment: Experiment, exc: TrackingError) -> Record:
    """A policy could not decide about the run: the server refused a lookup it needs."""
    reason = f"could not decide: {exc}"
    target = Target.of(run, experiment.name)
    return Record(
        Unable(policy=policy, target=target, reason=reason, step="evaluate"), "failed", reason
    )


def govern_run(
    run: Run,
    experiment: Experiment,
    settings: Settings,
    executor: Executor,
    now: datetime,
    *,
    defer: Callable[[Action], bool] | None = None,
) -> list[Record]:
    """Evaluate and apply each enabled run policy in order.

    Each policy sees the run as the previous ones left it (tags applied, or planned in
    dry-run), so promotion judges the compliance that require-tags has just decided.
    `defer` may take an action instead of applying it now (returns True): the sweep keeps
    promotions back to apply only the best per registered model.

    A permanent `TrackingError` while a policy reads its facts or decides (a 403, a value no
    filter can hold) becomes a `failed` record for that policy; the records of what earlier
    policies applied are kept and the next policy still runs. `TrackingUnavailable` is not
    caught: the invocation fails and is retried, and every action is idempotent.
    """
    context = RunContext(
        now=now, experiment=experiment, policy=settings.policy_for(experiment.name)
    )
    records: list[Record] = []
    current = run
    for policy in RUN_POLICIES:
        if not policy.enabled(context.policy):
            continue
        try:
            actions = policy.decide(current, context, executor.gateway)
        except TrackingError as exc:
            log.warning("%s on run %s could not decide: %s", policy.name, current.run_id, exc)
            records.append(policy_failed(policy.name, current, experiment, exc))
            continue
        for action in actions:
            if defer is not None and defer(action):
                continue
            record = executor.apply_one(action)
            records.append(record)
            if isinstance(action, SetRunTags) and record.done:
                tags = {k: v for k, v in current.tags.items() if k not in action.delete_tags}
                tags.update(action.set_tags)
                current = dataclasses.replace(current, tags=tags)
    return records
