"""Handle Azure ML run events: re-read the run, apply the run policies, alert on failure.

Events are hints. The run is read again and judged as it is now: gone, still going or out of
scope means skipped, not an error. Only `TrackingUnavailable` propagates (retry later); a run
that cannot be read for another reason is a `read-run` failed record, which `on_run_event`
turns into a redelivery (`raise_for_redelivery`) and the CLI into exit 1.

A failed run's notice does not mark the run: `shared.usecases.notifications` tags it with
`governance.failure_notified_at` only once the card carrying the notice was delivered, so a
failed delivery is tried again by a redelivered event instead of being lost.
"""

from __future__ import annotations

import logging
import re
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
READ_RUN = "read-run"
_FAILED = frozenset({"FAILED", "KILLED"})
# Refusals that a new deployment's role assignment cures within minutes: worth a redelivery.
# Any other permanent refusal would only make Event Grid retry a poison event for a day.
_REDELIVER_CODES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED", "UNAUTHORIZED"})
_HTTP_AUTH = re.compile(r"\b(401|403)\b")


def _record(
    event: RunEvent | IgnoredEvent,
    reason: str,
    *,
    failed: bool = False,
    experiment: str = "",
    run: Run | None = None,
    action: str = READ_RUN,
    code: str = "",
) -> Record:
    """A decision about the event itself (no policy ran): skipped, or failed to read
    (`action` names what could not be read)."""
    log.info("event %s for run %s: %s", event.event_id, event.run_id, reason)
    return Record(
        policy=POLICY,
        run_id=run.run_id if run else event.run_id or "",
        experiment=experiment or (getattr(event, "experiment_name", None) or ""),
        action=action if failed else "skip",
        outcome="failed" if failed else "skipped",
        reason=reason,
        details={
            "event_id": event.event_id or "",
            "event_type": event.event_type,
            **({"error_code": code} if code else {}),
        },
        run_name=run.run_name if run else "",
    )


def failure_notice(run: Run, experiment: Experiment, gateway: TrackingGateway) -> Notice:
    """What the failure card needs; duration is empty when the server recorded no start.

    It changes nothing in tracking: the run is marked notified after delivery.
    """
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
    )


def handle_event(
    event: RunEvent | IgnoredEvent,
    gateway: TrackingGateway,
    settings: Settings,
    executor: Executor,
    now: datetime,
    *,
    announced: set[str] | None = None,
) -> list[Record]:
    """Govern the run an event is about; `announced` collects the runs given a failure notice
    by earlier events of the same batch (the tag that stops replays comes only after delivery).
    """
    from shared.usecases.govern import govern_run

    if isinstance(event, IgnoredEvent):
        return [_record(event, f"ignored: {event.reason}")]
    try:
        run = gateway.get_run(event.run_id)
    except RunNotFound as exc:
        return [_record(event, exc.why)]
    except TrackingError as exc:
        return [_record(event, f"cannot read the run: {exc}", failed=True, code=exc.code)]
    if run.deleted:
        return [_record(event, "run was deleted", run=run)]
    try:
        experiment = gateway.get_experiment(run.experiment_id)
    except TrackingError as exc:
        reason = f"cannot read experiment {run.experiment_id}: {exc}"
        return [_record(event, reason, failed=True, run=run, action="read-experiment")]
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
        target = Target.of(run, experiment.name)
        if T.FAILURE_NOTIFIED_AT in run.tags:
            reason = f"failure already notified at {run.tags[T.FAILURE_NOTIFIED_AT]}"
            records.append(executor.apply_one(Skip(policy=POLICY, target=target, reason=reason)))
        elif announced is not None and run.run_id in announced:
            reason = "failure notice already in this batch"
            records.append(executor.apply_one(Skip(policy=POLICY, target=target, reason=reason)))
        else:
            records.append(executor.apply_one(failure_notice(run, experiment, gateway)))
            if announced is not None:
                announced.add(run.run_id)
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
    announced: set[str] = set()
    for event in events:
        report.extend(handle_event(event, gateway, settings, executor, now, announced=announced))
    return report


def raise_for_redelivery(report: Report) -> None:
    """Raise when a run could not be read because access was refused (401/403, as while a
    new deployment's role assignment propagates): Event Grid then redelivers the event, where
    dropping it would lose the run's governance for good. Other refusals are recorded only.
    """
    unread = [
        r
        for r in report.records
        if r.action == READ_RUN
        and r.outcome == "failed"
        and (r.details.get("error_code", "") in _REDELIVER_CODES or _HTTP_AUTH.search(r.reason))
    ]
    if unread:
        raise TrackingError("; ".join(f"run {r.run_id}: {r.reason}" for r in unread))
