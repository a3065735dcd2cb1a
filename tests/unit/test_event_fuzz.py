"""Fuzzing the event parser: any body ends in handled, ignored or rejected events, never a
traceback. Over 10,000 generated bodies per run (structured events, arbitrary JSON, bytes)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import InvalidEvent
from shared.events import HANDLED_TYPES, IgnoredEvent, RunEvent, parse_events

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
MAYBE_STR = st.none() | st.text(max_size=30) | st.integers() | st.just("")
TYPES = st.sampled_from([*HANDLED_TYPES, *(t.lower() for t in HANDLED_TYPES), "Other.Type"])

DATA = st.fixed_dictionaries(
    {},
    optional={
        "runId": MAYBE_STR | st.just("  run-1  "),
        "experimentId": MAYBE_STR,
        "experimentName": MAYBE_STR,
        "runStatus": st.sampled_from(["failed", "Failed", "Running", "Completed", ""]) | MAYBE_STR,
        "runTags": ANY_JSON,
        "runProperties": ANY_JSON,
        "runType": MAYBE_STR,
    },
)
EVENT_GRID = st.fixed_dictionaries(
    {"eventType": TYPES | MAYBE_STR},
    optional={"id": MAYBE_STR, "topic": MAYBE_STR, "subject": MAYBE_STR, "data": DATA | ANY_JSON},
)
CLOUD_EVENT = st.fixed_dictionaries(
    {"specversion": st.just("1.0") | MAYBE_STR},
    optional={"id": MAYBE_STR, "type": TYPES | MAYBE_STR, "source": MAYBE_STR, "data": DATA},
)
EVENT = EVENT_GRID | CLOUD_EVENT | ANY_JSON


def _check(body: str | bytes, items: int | None) -> None:
    refused: InvalidEvent | None = None
    try:
        valid, rejected = parse_events(body)
    except InvalidEvent as exc:  # the whole input refused: it must say why
        refused = exc
    if refused is not None:
        assert refused.problem
        return
    for event in valid:
        assert isinstance(event, RunEvent | IgnoredEvent)
        if isinstance(event, RunEvent):
            assert event.run_id
            assert event.run_id == event.run_id.strip()
    for exc in rejected:
        assert exc.problem
    if items is not None:
        assert len(valid) + len(rejected) == items


FUZZ = settings(max_examples=3500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(EVENT, max_size=4))
def test_any_array_of_event_shaped_bodies(events: list[Any]) -> None:
    _check(json.dumps(events), len(events))


@FUZZ
@given(EVENT)
def test_any_single_body(event: Any) -> None:
    _check(json.dumps(event), 1 if not isinstance(event, list) else len(event))


@FUZZ
@given(st.binary(max_size=200) | st.text(alphabet='[]{}":,\\ a0', max_size=200))
def test_any_bytes(body: bytes | str) -> None:
    _check(body, None)
