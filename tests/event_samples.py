"""Run events in the documented shapes (tests/data), pointed at runs that really exist."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func

DATA = Path(__file__).parent / "data"
EVENT_GRID = json.loads((DATA / "run-completed.eventgrid.json").read_text(encoding="utf-8"))[0]
CLOUD_EVENT = json.loads(
    (DATA / "run-status-changed.cloudevents.json").read_text(encoding="utf-8")
)[0]
PREFIX = "Microsoft.MachineLearningServices."


def run_event(
    run_id: str,
    experiment_id: str = "1",
    experiment_name: str = "exp",
    *,
    schema: str = "eventgrid",
    kind: str = "RunCompleted",
    status: str | None = None,
) -> dict[str, Any]:
    """A copy of the documented sample for `run_id`, in `schema` ("eventgrid"/"cloudevents")."""
    event = copy.deepcopy(EVENT_GRID if schema == "eventgrid" else CLOUD_EVENT)
    event["id"] = str(uuid.uuid4())
    event["subject"] = f"experiments/{experiment_id}/runs/{run_id}"
    event["eventType" if schema == "eventgrid" else "type"] = PREFIX + kind
    data = event["data"]
    data.update(experimentId=experiment_id, experimentName=experiment_name, runId=run_id)
    data.pop("runStatus", None)
    if status is not None:
        data["runStatus"] = status
    return event


def event_grid_event(event: dict[str, Any]) -> func.EventGridEvent:
    """The object the Functions host hands `on_run_event` for an Event Grid schema event."""
    return func.EventGridEvent(
        id=event["id"],
        data=event["data"],
        topic=event["topic"],
        subject=event["subject"],
        event_type=event["eventType"],
        event_time=datetime(2026, 11, 26, 8, 15, tzinfo=UTC),
        data_version=event["dataVersion"],
    )


def cloud_event(event: dict[str, Any]) -> func.CloudEvent:
    """The object the Functions host hands `on_run_event` for a CloudEvents 1.0 event."""
    return func.CloudEvent(
        id=event["id"],
        source=event["source"],
        type=event["type"],
        specversion=event["specversion"],
        time=datetime(2026, 11, 26, 9, 2, tzinfo=UTC),
        subject=event["subject"],
        data=event["data"],
    )


def on_run_event_function() -> Callable[[Any], None]:
    """`on_run_event` as the host calls it (imported late: the app reads its settings then)."""
    from functions.run_events import on_run_event

    function: Callable[[Any], None] = on_run_event.build().get_user_function()
    return function
