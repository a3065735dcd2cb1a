"""`on_run_event`: Azure ML run events from Event Grid (either schema) -> `shared.usecases`.

Poison events are logged and dropped (raising would make Event Grid redeliver them for a
day); a tracking server that is down raises, so the platform redelivers the event.
"""

from __future__ import annotations

import logging
from datetime import datetime

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _wire(event: func.EventGridEvent | func.CloudEvent) -> dict[str, object]:
    """The event back in its delivery shape, so one parser validates both schemas."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": _iso(event.time),
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": _iso(event.event_time),
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


@bp.event_grid_trigger(arg_name="event")
def on_run_event(event: func.EventGridEvent) -> None:
    # The library passes a func.CloudEvent instead when the body has `specversion`.
    from shared.bootstrap import get_channel, get_gateway, utcnow
    from shared.engine.report import log_decisions
    from shared.errors import InvalidEvent
    from shared.events import parse_event
    from shared.settings import get_settings
    from shared.usecases.notifications import notify
    from shared.usecases.run_event import handle_events, raise_for_redelivery

    try:
        parsed = parse_event(_wire(event))
    except InvalidEvent as exc:
        log.error("on_run_event %s dropped (malformed, not retried): %s", event.id, exc.problem)
        return
    report = handle_events([parsed], get_gateway(), get_settings(), utcnow())
    log_decisions(report, log)
    notify(report, get_channel(), get_gateway())
    log.info("on_run_event %s: %s", event.id, report.summary_line())
    # A run unreadable for now (401/403 while a new deployment's role propagates): redelivered.
    raise_for_redelivery(report)
