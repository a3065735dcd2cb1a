"""Apply the run-level policies to one finished run (shared by events and the sweep)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

from shared.engine.actions import Action, RegisterModelVersion, SetRunTags, Target, Unable
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
    dry-run), so promotion judges the compliance that require-tags has just decided. Tags
    a later policy may carry are held: a promotion writes them in its own last request;
    otherwise they are applied once the last policy has decided, in their place in the
    records either way. Should a later policy fail to decide, they are applied all the same.
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
    enabled = [p for p in RUN_POLICIES if p.enabled(context.policy)]
    records: list[Record] = []
    current = run
    # Tags decided by one policy and held for a later one's request (a promotion writes them
    # with `governance.promoted_to`: one request, not two); its slot in `records` is kept.
    held: tuple[SetRunTags, int] | None = None
    for index, policy in enumerate(enabled):
        try:
            actions = policy.decide(current, context, executor.gateway)
        except TrackingError as exc:
            log.warning("%s on run %s could not decide: %s", policy.name, current.run_id, exc)
            records.append(policy_failed(policy.name, current, experiment, exc))
            continue
        for action in actions:
            if defer is not None and defer(action):
                continue
            if isinstance(action, RegisterModelVersion) and held is not None:
                tags, slot = held
                held = None
                merged = dataclasses.replace(
                    action, with_tags=tags.set_tags, with_deletes=tags.delete_tags
                )
                record = executor.apply_one(merged)
                # The handler wrote the tags on every path but a failure: then on their own.
                done = record.outcome != "failed"
                records[slot] = (
                    Record(tags, "applied", tags.reason) if done else executor.apply_one(tags)
                )
                records.append(record)
                continue
            if (
                isinstance(action, SetRunTags)
                and held is None
                and not executor.dry_run
                and index + 1 < len(enabled)
            ):
                held = (action, len(records))
                records.append(Record(action, "planned", action.reason))  # the slot
                current = _with_tags(current, action)
                continue
            record = executor.apply_one(action)
            records.append(record)
            if isinstance(action, SetRunTags) and record.done:
                current = _with_tags(current, action)
    if held is not None:
        tags, slot = held
        records[slot] = executor.apply_one(tags)
    return records


def _with_tags(run: Run, action: SetRunTags) -> Run:
    """The run as it is once `action` is applied."""
    tags = {k: v for k, v in run.tags.items() if k not in action.delete_tags}
    tags.update(action.set_tags)
    return dataclasses.replace(run, tags=tags)
