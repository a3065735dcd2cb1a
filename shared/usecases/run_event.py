"""Handle Azure ML run events: re-read the run, apply the run policies, alert on failure.

Events are hints. The run is read again and judged as it is now: gone, still going or out of
scope means skipped, not an error. Only `TrackingUnavailable` propagates (retry later); a run
that cannot be read for another reason is a `read-run` failed record, which `on_run_event`
turns into a redelivery (`raise_for_redelivery`) and the CLI into exit 1.

The experiment's name comes from the event when the event names the run's own experiment
(a request saved: a promotion takes at most 8 tracking requests, a no-op event 1 or 2).

A failed run's notice is decided by `shared.policies.alert_failed_runs` (shared with the
sweep's catch-up). It does not mark the run: `shared.usecases.notifications` tags it with
`governance.failure_notified_at` only once the card carrying the notice was delivered, so a
failed delivery is tried again by a redelivered event instead of being lost.

When the server goes away halfway through a batch, `TrackingUnavailable` carries the report of
what was done before it (`shared.engine.report.carry`), so a promotion already made is still
announced by this invocation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from shared.engine.actions import EventRef, Skip, Target, Unable
from shared.engine.executor import Executor
from shared.engine.report import Record, Report, carry
from shared.errors import RunNotFound, TrackingError, TrackingUnavailable
from shared.events import IgnoredEvent, RunEvent
from shared.model import Experiment, Run
from shared.policies import alert_failed_runs as alert
from shared.settings import Settings
from shared.tracking.gateway import TrackingGateway
from shared.usecases.govern import govern_run

log = logging.getLogger(__name__)

POLICY = alert.NAME
READ_RUN = "read-run"
# Refusals that a new deployment's role assignment cures within minutes: worth a redelivery.
# Any other permanent refusal would only make Event Grid retry a poison event for a day.
_REDELIVER_CODES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED", "UNAUTHORIZED"})
# MLflow's message when the server answered 401/403 without an error code.
_HTTP_AUTH = re.compile(r"\b(401|403)\b")


def access_refused(exc: TrackingError) -> bool:
    """Whether the server refused this identity (as while its role assignment propagates)."""
    return exc.code in _REDELIVER_CODES or bool(_HTTP_AUTH.search(str(exc)))


def _target(event: RunEvent | IgnoredEvent, experiment: str, run: Run | None) -> Target:
    # Decisions about the event itself name what the event said (no experiment id or user).
    return Target(
        run_id=run.run_id if run else event.run_id or "",
        experiment_id="",
        experiment_name=experiment or (getattr(event, "experiment_name", None) or ""),
        run_name=run.run_name if run else "",
    )


def _skip(
    event: RunEvent | IgnoredEvent, reason: str, *, experiment: str = "", run: Run | None = None
) -> Record:
    """The event needs nothing (no policy ran)."""
    log.info("event %s for run %s: %s", event.event_id, event.run_id, reason)
    ref = EventRef(event.event_id or "", event.event_type)
    skip = Skip(policy=POLICY, target=_target(event, experiment, run), reason=reason, event=ref)
    return Record(skip, "skipped", reason)


def _unable(
    event: RunEvent | IgnoredEvent,
    reason: str,
    *,
    step: str = READ_RUN,
    run: Run | None = None,
    exc: TrackingError | None = None,
) -> Record:
    """What the event is about could not be read (`step` names what)."""
    log.info("event %s for run %s: %s", event.event_id, event.run_id, reason)
    unable = Unable(
        policy=POLICY,
        target=_target(event, "", run),
        reason=reason,
        step=step,
        event=EventRef(event.event_id or "", event.event_type),
        error_code=exc.code if exc is not None and step == READ_RUN else "",
        access_refused=exc is not None and access_refused(exc),
    )
    return Record(unable, "failed", reason)


def _experiment_of(event: RunEvent, run: Run, gateway: TrackingGateway) -> Experiment | None:
    """The run's experiment: as the event names it when the event's experiment id is the
    run's own (Azure ML's events carry both), else read. The run itself is always re-read;
    the experiment's name is all that is taken from the event, which saves a request."""
    if event.experiment_name and event.experiment_id == run.experiment_id:
        return Experiment(experiment_id=run.experiment_id, name=event.experiment_name)
    return gateway.get_experiment(run.experiment_id)


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
    if isinstance(event, IgnoredEvent):
        return [_skip(event, f"ignored: {event.reason}")]
    try:
        run = gateway.get_run(event.run_id)
    except RunNotFound as exc:
        return [_skip(event, exc.why)]
    except TrackingError as exc:
        return [_unable(event, f"cannot read the run: {exc}", exc=exc)]
    if run.deleted:
        return [_skip(event, "run was deleted", run=run)]
    try:
        experiment = _experiment_of(event, run, gateway)
    except TrackingError as exc:
        reason = f"cannot read experiment {run.experiment_id}: {exc}"
        return [_unable(event, reason, step="read-experiment", run=run)]
    if experiment is None:
        return [_skip(event, "experiment no longer exists", run=run)]
    if not settings.in_scope(experiment.name):
        reason = f"experiment {experiment.name} is outside GOVERNANCE_EXPERIMENTS"
        return [_skip(event, reason, experiment=experiment.name, run=run)]
    if not run.is_terminal:
        reason = f"run is {run.status}, not finished yet (the sweep will catch up)"
        return [_skip(event, reason, experiment=experiment.name, run=run)]

    records = govern_run(run, experiment, settings, executor, now)
    facts = alert.read_facts(
        run,
        gateway,
        trigger="event",
        marks_recorded=not executor.dry_run,
        in_batch=announced is not None and run.run_id in announced,
    )
    for action in alert.evaluate(run, experiment, facts):
        records.append(executor.apply_one(action))
        if announced is not None and not isinstance(action, Skip):
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
    executor = Executor(gateway, dry_run=settings.dry_run, now=now)
    announced: set[str] = set()
    try:
        for event in events:
            report.extend(
                handle_event(event, gateway, settings, executor, now, announced=announced)
            )
    except TrackingUnavailable as exc:
        carry(exc, report, executor.journal)
        raise
    return report


def raise_for_redelivery(report: Report) -> None:
    """Raise when a run could not be read because access was refused (401/403, as while a
    new deployment's role assignment propagates): Event Grid then redelivers the event, where
    dropping it would lose the run's governance for good. Other refusals are recorded only.
    """
    unread = [
        r
        for r in report.records
        if isinstance(r.decision, Unable) and r.decision.access_refused and r.outcome == "failed"
    ]
    if unread:
        raise TrackingError("; ".join(f"run {r.run_id}: {r.reason}" for r in unread))
