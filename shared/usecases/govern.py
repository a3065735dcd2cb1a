"""Apply the run-level policies to one finished run (shared by events and the sweep)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from shared.engine.actions import Action, SetRunTags
from shared.engine.executor import Executor
from shared.engine.report import Record
from shared.model import Experiment, Run
from shared.policies import RUN_POLICIES
from shared.policies.base import RunContext
from shared.settings import Settings


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
    """
    context = RunContext(
        now=now, experiment=experiment, policy=settings.policy_for(experiment.name)
    )
    records: list[Record] = []
    current = run
    for policy in RUN_POLICIES:
        if not policy.enabled(context.policy):
            continue
        facts = policy.facts(current, context, executor.gateway)
        for action in policy.evaluate(current, context, facts):
            if defer is not None and defer(action):
                continue
            record = executor.apply_one(action)
            records.append(record)
            if isinstance(action, SetRunTags) and record.outcome in ("applied", "planned"):
                tags = {k: v for k, v in current.tags.items() if k not in action.delete_tags}
                tags.update(action.set_tags)
                current = dataclasses.replace(current, tags=tags)
    return records
