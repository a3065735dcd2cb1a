"""The event objects the Functions host hands a trigger, back in their delivery shape, so that
one parser (`shared.events`) validates both schemas."""

from __future__ import annotations

from datetime import datetime

import azure.functions as func


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def wire(event: func.EventGridEvent | func.CloudEvent) -> dict[str, object]:
    """The decoded JSON of the event as Event Grid delivered it (Event Grid or CloudEvents)."""
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
