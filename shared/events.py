"""Inbound Azure ML run events: validation of both delivery schemas into `RunEvent` values.

Event Grid schema (`eventType`) and CloudEvents 1.0 (`specversion`) carry the same `data`.
Unknown fields are ignored (Azure may add some); a malformed event raises `InvalidEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from shared.bounded import BoundedInputError, NotJson, check_depth, loads_json
from shared.errors import InvalidEvent
from shared.model import TERMINAL_STATUSES as TERMINAL
from shared.model import normalise_status

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
HANDLED_TYPES = (RUN_COMPLETED, RUN_STATUS_CHANGED)


class _Camel(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class RunEventData(_Camel):
    """`data` of a run event; every field may be null or missing."""

    experiment_id: str | None = None
    experiment_name: str | None = None
    run_id: str | None = None
    run_type: str | None = None
    run_status: str | None = None
    run_tags: dict[str, Any] | None = None
    run_properties: dict[str, Any] | None = None


class EventGridEnvelope(_Camel):
    id: str | None = None
    topic: str | None = None
    subject: str | None = None
    event_type: str | None = None
    event_time: str | None = None
    data_version: str | None = None
    metadata_version: str | None = None
    data: Any = None


class CloudEventEnvelope(_Camel):
    id: str | None = None
    source: str | None = None
    subject: str | None = None
    type: str | None = None
    time: str | None = None
    specversion: str | None = None
    data: Any = None


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A run event this tool handles: a hint to re-read run `run_id`."""

    event_id: str | None
    event_type: str
    run_id: str
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_status: str | None = None  # as sent (case varies); only on RunStatusChanged


@dataclass(frozen=True, slots=True)
class IgnoredEvent:
    """A valid event this tool does not act on (another type, a run still going)."""

    event_id: str | None
    event_type: str
    reason: str
    run_id: str | None = None


def _problem(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    where = prefix + ".".join(str(part) for part in first["loc"])
    return f"{where or 'event'}: {first['msg']}"


def _label(event_id: str | None, index: int | None) -> str | None:
    if event_id is not None or index is None:
        return event_id
    return f"#{index} (no id)"


def parse_event(raw: object, index: int | None = None) -> RunEvent | IgnoredEvent:
    """Validate one event (a decoded JSON object) in either schema; raises `InvalidEvent`."""
    if not isinstance(raw, dict):
        raise InvalidEvent(_label(None, index), f"expected a JSON object, got {type(raw).__name__}")
    raw_id = raw.get("id")
    event_id = _label(raw_id if isinstance(raw_id, str) else None, index)
    try:
        check_depth(raw)
    except BoundedInputError as exc:
        raise InvalidEvent(event_id, str(exc)) from None

    envelope: EventGridEnvelope | CloudEventEnvelope
    try:
        if "specversion" in raw:
            envelope = CloudEventEnvelope.model_validate(raw)
            event_type = envelope.type
        elif "eventType" in raw:
            envelope = EventGridEnvelope.model_validate(raw)
            event_type = envelope.event_type
        else:
            raise InvalidEvent(
                event_id,
                "neither an Event Grid event (no eventType) nor a CloudEvent (no specversion)",
            )
    except ValidationError as exc:
        raise InvalidEvent(event_id, _problem(exc)) from None
    if not event_type:
        raise InvalidEvent(event_id, "the event type is empty")

    known = {t.lower(): t for t in HANDLED_TYPES}
    canonical = known.get(event_type.lower())
    if canonical is None:
        return IgnoredEvent(event_id, event_type, f"event type {event_type} is not handled")

    if not isinstance(envelope.data, dict):
        raise InvalidEvent(
            event_id, f"data: expected an object, got {type(envelope.data).__name__}"
        )
    try:
        data = RunEventData.model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidEvent(event_id, _problem(exc, "data.")) from None
    if not data.run_id or not data.run_id.strip():
        raise InvalidEvent(event_id, "data.runId is missing")
    run_id = data.run_id.strip()

    status = data.run_status.strip() if data.run_status else None
    # No status at all: the run is re-read anyway, so let its real status decide.
    if canonical == RUN_STATUS_CHANGED and status and normalise_status(status) not in TERMINAL:
        return IgnoredEvent(
            event_id, canonical, f"run status {status} is not terminal", run_id=run_id
        )
    return RunEvent(
        event_id=event_id,
        event_type=canonical,
        run_id=run_id,
        experiment_id=data.experiment_id,
        experiment_name=data.experiment_name,
        run_status=status,
    )


def decode_events(text: str | bytes) -> object:
    """The JSON document of an input of events (one, or an array), within the limits of
    `shared.bounded`; `InvalidEvent` when it is not JSON or breaks a limit."""
    try:
        return loads_json(text)
    except NotJson as exc:
        raise InvalidEvent(None, f"input is {exc}") from None
    except BoundedInputError as exc:
        raise InvalidEvent(None, f"input refused: {exc}") from None


def parse_events(text: str | bytes) -> tuple[list[RunEvent | IgnoredEvent], list[InvalidEvent]]:
    """One event or a JSON array of events; returns the valid ones and the rejected ones.

    Input that is not JSON at all, or breaks a limit of `shared.bounded` (size, nesting
    depth, encoding), raises `InvalidEvent` (there is no event to name).
    """
    document = decode_events(text)
    items = document if isinstance(document, list) else [document]
    single = not isinstance(document, list)
    valid: list[RunEvent | IgnoredEvent] = []
    rejected: list[InvalidEvent] = []
    for index, item in enumerate(items):
        try:
            valid.append(parse_event(item, None if single else index))
        except InvalidEvent as exc:
            rejected.append(exc)
    return valid, rejected
