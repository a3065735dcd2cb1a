"""Applied decisions out as governance events (CloudEvents on the Event Grid topic named by
GOVERNANCE_EVENTS_TOPIC_ENDPOINT): which records become which event, and the one batch per
invocation, reported in `report.notifications` like a Teams delivery (best effort).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from shared.azure.events_out import (
    EventType,
    GovernanceEvent,
    JSONValue,
    model_subject,
    run_subject,
    workspace_source,
)
from shared.engine.actions import (
    DeleteRun,
    GuardNotice,
    RegisterModelVersion,
    RestoreRun,
    SetRunTags,
)
from shared.engine.report import Record, Report
from shared.engine.results import Registered
from shared.redact import redact_uri

if TYPE_CHECKING:
    from shared.app.azure import AzureServices
    from shared.settings import Settings

log = logging.getLogger(__name__)

# The subject of a guard event: it is about a sweep, not one run.
GUARD_SUBJECT = "governance/cleanup-guard"


def _data(record: Record, report: Report) -> dict[str, JSONValue]:
    # The decision's fields as `--json` shows them (no secrets live there), and the command.
    data = cast(dict[str, JSONValue], record.to_dict())
    data["command"] = report.command
    return data


def event_for(record: Record, report: Report) -> GovernanceEvent | None:
    """The event an applied decision publishes; None for a decision that publishes none."""
    if record.outcome != "applied":
        return None
    decision, result = record.decision, record.result
    target = decision.target
    kind: EventType
    if isinstance(decision, RegisterModelVersion) and isinstance(result, Registered):
        kind, subject = "mlgov.ModelPromoted", model_subject(decision.model_name, result.version)
    elif isinstance(decision, DeleteRun):
        kind, subject = "mlgov.RunDeleted", run_subject(target.experiment_id, target.run_id)
    elif isinstance(decision, RestoreRun):
        kind, subject = "mlgov.RunRestored", run_subject(target.experiment_id, target.run_id)
    elif isinstance(decision, SetRunTags) and decision.violation:
        # `violation` is set exactly when this change marks the run noncompliant (or changes
        # which keys it lacks): the event the violations card announces.
        kind, subject = "mlgov.RunNoncompliant", run_subject(target.experiment_id, target.run_id)
    elif isinstance(decision, GuardNotice):
        kind, subject = "mlgov.CleanupGuardTripped", GUARD_SUBJECT
    else:
        return None
    return GovernanceEvent(kind, subject, _data(record, report), time=report.started_at)


def events_of(report: Report) -> list[GovernanceEvent]:
    return [e for e in (event_for(r, report) for r in report.records) if e is not None]


def source_of(settings: Settings) -> str:
    """The events' `source`: the workspace's ARM id, else the tracking URI (no user info)."""
    from shared.app.azure import workspace_of

    ref = workspace_of(settings)
    uri = redact_uri(settings.effective_tracking_uri())
    return workspace_source(ref.arm_id if ref else None, uri)


def publish(report: Report, settings: Settings, azure: AzureServices | None) -> None:
    """Publish the report's applied decisions as one batch; never raises, never changes a
    record: how it went is one more entry in `report.notifications`."""
    endpoint = settings.events_topic_endpoint
    if not endpoint or azure is None:
        return
    events = events_of(report)
    if not events:
        return
    try:
        publisher = azure.publisher(endpoint, source_of(settings))
        outcome = publisher.publish(events)
        target, ok, error, sent = outcome.target, outcome.ok, outcome.error, outcome.sent
    except Exception as exc:  # a bug or a bad credential setup must not fail governance
        log.exception("governance events: publishing crashed")
        target, ok, error, sent = "event grid topic", False, f"{type(exc).__name__}", 0
    report.notifications.append(_entry(target, ok, error, sent, events))
    if not ok:
        log.warning(
            "%s: governance events to %s failed (governance unaffected): %s",
            report.command,
            target,
            error,
        )


def _entry(
    target: str, ok: bool, error: str | None, sent: int, events: Sequence[GovernanceEvent]
) -> dict[str, str]:
    # The keys of a Teams delivery's entry, so a reader of `notifications` needs no new shape.
    return {
        "channel": f"event grid {target}",
        "posted": str(ok).lower(),
        "ok": str(ok).lower(),
        "status": "",
        "attempts": "1",
        "error": error or "",
        "notices": str(len(events)),
        "about": ", ".join(sorted({e.type for e in events})),
        "bytes": "",
        "sent": str(sent),
    }
