from __future__ import annotations

import json

import pytest

from shared.errors import InvalidEvent
from shared.events import (
    RUN_COMPLETED,
    RUN_STATUS_CHANGED,
    IgnoredEvent,
    RunEvent,
    parse_event,
    parse_events,
)
from tests.event_samples import CLOUD_EVENT, EVENT_GRID, run_event


def test_documented_event_grid_sample_parses():
    event = parse_event(EVENT_GRID)
    assert event == RunEvent(
        event_id="6f1c2d9e-4b1a-4f0e-9a51-2f3c8d7e1a01",
        event_type=RUN_COMPLETED,
        run_id="sleepy_lamp_x7k2m9p4qz",
        experiment_id="3d2f7c1a-9b8e-4d6f-a1c2-7e5f4b3a2c10",
        experiment_name="customer-churn-experiments",
    )


def test_documented_cloudevents_sample_parses_with_its_status():
    event = parse_event(CLOUD_EVENT)
    assert isinstance(event, RunEvent)
    assert event.event_type == RUN_STATUS_CHANGED
    assert (event.run_id, event.run_status) == ("brave_kite_q2w8e4r6t1", "Failed")


def test_unknown_fields_are_ignored_and_nulls_accepted():
    event = run_event("r1")
    event["newTopLevelField"] = {"x": 1}
    event["data"].update(runType=None, experimentName=None, somethingNew=[1, 2])
    parsed = parse_event(event)
    assert isinstance(parsed, RunEvent)
    assert parsed.experiment_name is None


@pytest.mark.parametrize("status", ["failed", "Failed", "FAILED", "Completed", "Canceled"])
def test_terminal_statuses_in_any_case_are_handled(status):
    parsed = parse_event(run_event("r1", kind="RunStatusChanged", status=status))
    assert isinstance(parsed, RunEvent)


@pytest.mark.parametrize("status", ["Running", "Queued", "CancelRequested", "Finalizing"])
def test_non_terminal_status_is_ignored_with_the_reason(status):
    parsed = parse_event(
        run_event("r1", schema="cloudevents", kind="RunStatusChanged", status=status)
    )
    assert isinstance(parsed, IgnoredEvent)
    assert parsed.reason == f"run status {status} is not terminal"
    assert parsed.run_id == "r1"


def test_status_changed_without_status_is_handled_by_rereading_the_run():
    parsed = parse_event(run_event("r1", kind="RunStatusChanged"))
    assert isinstance(parsed, RunEvent)
    assert parsed.run_status is None


def test_other_event_types_are_ignored_without_needing_run_data():
    event = run_event("r1", kind="ModelRegistered")
    event["data"] = {"modelName": "m", "modelVersion": "1"}
    parsed = parse_event(event)
    assert isinstance(parsed, IgnoredEvent)
    assert "ModelRegistered is not handled" in parsed.reason


def test_event_type_compares_case_insensitively():
    event = run_event("r1")
    event["eventType"] = RUN_COMPLETED.lower()
    parsed = parse_event(event)
    assert isinstance(parsed, RunEvent)
    assert parsed.event_type == RUN_COMPLETED


def _with(mutate):
    event = run_event("r1")
    event["id"] = "evt-1"
    mutate(event)
    return event


MALFORMED = [
    ("no runId", lambda e: e["data"].pop("runId"), "data.runId is missing"),
    ("blank runId", lambda e: e["data"].update(runId="  "), "data.runId is missing"),
    ("runId a number", lambda e: e["data"].update(runId=42), "data.runId: Input should be"),
    ("runTags a string", lambda e: e["data"].update(runTags="x"), "data.runTags: Input should"),
    ("data a string", lambda e: e.update(data="oops"), "data: expected an object, got str"),
    ("data missing", lambda e: e.pop("data"), "data: expected an object, got NoneType"),
    ("type a number", lambda e: e.update(eventType=7), "eventType: Input should be"),
    ("no schema", lambda e: e.pop("eventType"), "neither an Event Grid event"),
]


@pytest.mark.parametrize(
    ("mutate", "problem"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_events_name_the_event_and_the_problem(mutate, problem):
    with pytest.raises(InvalidEvent) as caught:
        parse_event(_with(mutate))
    assert caught.value.event_id == "evt-1"
    assert problem in caught.value.problem
    assert str(caught.value).startswith("event evt-1: ")


def test_not_an_object():
    with pytest.raises(InvalidEvent, match="expected a JSON object, got list"):
        parse_event([1, 2])


def test_parse_events_keeps_valid_events_and_collects_rejected_ones_by_position():
    bad = run_event("r2")
    bad.pop("id")
    bad["data"].pop("runId")
    valid, rejected = parse_events(json.dumps([run_event("r1"), bad, "text"]))
    assert [e.run_id for e in valid] == ["r1"]
    assert [(r.event_id, r.problem) for r in rejected] == [
        ("#1 (no id)", "data.runId is missing"),
        ("#2 (no id)", "expected a JSON object, got str"),
    ]


def test_parse_events_accepts_a_single_object():
    valid, rejected = parse_events(
        json.dumps(run_event("r1", schema="cloudevents", kind="RunCompleted"))
    )
    assert [e.run_id for e in valid] == ["r1"]
    assert rejected == []


def test_input_that_is_not_json_is_rejected_whole():
    with pytest.raises(InvalidEvent, match="input is not JSON"):
        parse_events("{not json")


def test_a_decoded_event_nested_too_deep_is_poison_with_its_id() -> None:
    from shared.events import parse_event

    data: dict[str, object] = {"runId": "r1"}
    node = data
    for _ in range(200):
        node["runTags"] = {"x": {}}
        node = node["runTags"]["x"]  # type: ignore[index]
    event = {
        "id": "e-deep",
        "eventType": "Microsoft.MachineLearningServices.RunCompleted",
        "data": data,
    }
    with pytest.raises(InvalidEvent, match="nested deeper") as caught:
        parse_event(event)
    assert caught.value.event_id == "e-deep"
