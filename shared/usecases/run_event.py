"""Handle Azure ML run events: re-read the run, apply the run policies, alert on failure.

Events are hints. The run is read again and judged as it is now: gone, still going or out of
scope means skipped, not an error. Only `TrackingUnavailable` propagates (retry later).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from shared import tags as T
from shared.engine.actions import Notice, Skip, Target
from shared.engine.executor import Executor
from shared.engine.report import Record, Report
from shared.errors import RunNotFound, TrackingError
from shared.events import IgnoredEvent, RunEvent
from shared.model import Experiment, Run
from shared.settings import Settings
from shared.tracking.gateway import TrackingGateway

log = logging.getLogger(__name__)

POLICY = "run-event"
FAILURE_TOPIC = "run-failed"
_FAILED = frozenset({"FAILED", "KILLED"})


def _record(
    event: RunEvent | IgnoredEvent,
    reason: str,
    *,
    failed: bool = False,
    experiment: str = "",
    run: Run | None = None,
) -> Record:
    """A decision about the event itself (no policy ran): skipped, or failed to read the run."""
    log.info("event %s for run %s: %s", event.event_id, event.run_id, reason)
    return Record(
        policy=POLICY,
        run_id=run.run_id if run else event.run_id or "",
        experiment=experiment or (getattr(event, "experiment_name", None) or ""),
        action="read-run" if failed else "skip",
        outcome="failed" if failed else "skipped",
        reason=reason,
        details={"event_id": event.event_id or "", "event_type": event.event_type},
        run_name=run.run_name if run else "",
    )


def failure_notice(
    run: Run, experiment: Experiment, gateway: TrackingGateway, now: datetime
) -> Notice:
    """What the failure card needs; duration is empty when the server recorded no start."""
    duration = ""
    if run.start_time is not None and run.end_time is not None:
        duration = f"{(run.end_time - run.start_time).total_seconds():.0f}"
    return Notice(
        policy=POLICY,
        target=Target.of(run, experiment.name),
        reason=f"run ended {run.status}",
        topic=FAILURE_TOPIC,
        details={
            "status": run.status,
            "run_name": run.run_name,
            "owner": run.tags.get(T.USER, ""),
            "duration_s": duration,
            "run_url": gateway.run_url(run) or "",
        },
        mark_run={T.FAILURE_NOTIFIED_AT: now.isoformat()},
    )


def handle_event(
    event: RunEvent | IgnoredEvent,
    gateway: TrackingGateway,
    settings: Settings,
    executor: Executor,
    now: datetime,
) -> list[Record]:
    from shared.usecases.govern import govern_run

    if isinstance(event, IgnoredEvent):
        return [_record(event, f"ignored: {event.reason}")]
    try:
        run = gateway.get_run(event.run_id)
    except RunNotFound:
        return [_record(event, "run no longer exists")]
    except TrackingError as exc:
        return [_record(event, f"cannot read the run: {exc}", failed=True)]
    if run.deleted:
        return [_record(event, "run was deleted", run=run)]
    experiment = gateway.get_experiment(run.experiment_id)
    if experiment is None:
        return [_record(event, "experiment no longer exists", run=run)]
    if not settings.in_scope(experiment.name):
        reason = f"experiment {experiment.name} is outside GOVERNANCE_EXPERIMENTS"
        return [_record(event, reason, experiment=experiment.name, run=run)]
    if not run.is_terminal:
        reason = f"run is {run.status}, not finished yet (the sweep will catch up)"
        return [_record(event, reason, experiment=experiment.name, run=run)]

    records = govern_run(run, experiment, settings, executor, now)
    if run.status in _FAILED:
        if T.FAILURE_NOTIFIED_AT in run.tags:
            reason = f"failure already notified at {run.tags[T.FAILURE_NOTIFIED_AT]}"
            target = Target.of(run, experiment.name)
            records.append(executor.apply_one(Skip(policy=POLICY, target=target, reason=reason)))
        else:
            records.append(executor.apply_one(failure_notice(run, experiment, gateway, now)))
    return records


def handle_events(
    events: Iterable[RunEvent | IgnoredEvent],
    gateway: TrackingGateway,
    settings: Settings,
    now: datetime,
) -> Report:
    """Handle events in order, into one report (the CLI passes a whole file)."""
    report = Report(command="handle-event", dry_run=settings.dry_run)
    executor = Executor(gateway, dry_run=settings.dry_run)
    for event in events:
        report.extend(handle_event(event, gateway, settings, executor, now))
    return report
