"""Run events in the documented shapes (tests/data), pointed at runs that really exist."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

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
