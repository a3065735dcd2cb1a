"""One deployment governing three workspaces, each a real `mlflow server` on loopback.

The settings list three ARM ids; the gateway factory maps each member's id to its server
(what workspace resolution does in Azure). Events and queue messages go through the Functions
triggers as the host calls them, with azure-functions' own objects; nothing is patched.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessageOutConverter
from azure.functions.timer import TimerRequest
from mlflow import MlflowClient

from shared.app.estate import EstateApp
from shared.errors import TrackingUnavailable
from shared.estate import Member
from shared.estate_host import use_estate
from shared.notify.sinks import Channel, MemoryCardSink
from shared.tracking.mlflow_gateway import MlflowGateway
from tests.conftest import _start_server, _wait_healthy, free_port, stop_server
from tests.estate_support import Collected
from tests.event_samples import event_grid_event, on_run_event_function, run_event
from tests.support import make_run, settings

pytestmark = pytest.mark.integration
SUB = "11111111-2222-3333-4444-555555555555"
NAMES = ("mlw-dev", "mlw-test", "mlw-prod")
EXPERIMENT = "estate-churn"


def arm_id(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/rg-ml"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{name}"
    )


@dataclass
class Workspace:
    name: str
    uri: str
    client: MlflowClient
    experiment_id: str


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Three MLflow servers, one per workspace, started for this module."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    uris: dict[str, str] = {}
    try:
        for name in NAMES:
            root = tmp_path_factory.mktemp(f"server-{name}")
            port = free_port()
            started.append((_start_server(root, port), root))
            uris[name] = f"http://127.0.0.1:{port}"
        for (process, root), uri in zip(started, uris.values(), strict=True):
            _wait_healthy(uri, process, root / "server.log")
        yield uris
    finally:
        for process, root in started:
            stop_server(process, root)


@pytest.fixture
def workspaces(servers: dict[str, str]) -> dict[str, Workspace]:
    """Each workspace's server with a fresh experiment of the same name (ids differ)."""
    import uuid

    name = f"{EXPERIMENT}-{uuid.uuid4().hex[:8]}"
    found = {}
    for ws, uri in servers.items():
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        found[ws] = Workspace(ws, uri, client, client.create_experiment(name))
    found["_name"] = name  # type: ignore[assignment]
    return found


def estate_app(workspaces: dict[str, Workspace], *, down: str | None = None, **env: str):
    """The estate of the three workspaces: each member's gateway on its own server (`down`:
    a port nobody listens on)."""
    experiment = workspaces["_name"]  # type: ignore[index]
    uris = {ws.name: ws.uri for key, ws in workspaces.items() if key != "_name"}
    if down is not None:
        uris[down] = f"http://127.0.0.1:{free_port()}"

    def factory(member: Member) -> MlflowGateway:
        return MlflowGateway(uris[member.name])

    the_settings = settings(
        workspaces=",".join(arm_id(n) for n in NAMES),
        experiments=str(experiment),
        cleanup_statuses="FAILED",
        **env,
    )
    return EstateApp(the_settings, factory, Channel(MemoryCardSink(), "memory"))


def members(workspaces: dict[str, Workspace]) -> list[Workspace]:
    return [workspaces[n] for n in NAMES]


def event_on(ws: Workspace, run_id: str, topic: str | None = None) -> func.EventGridEvent:
    event = run_event(
        run_id, ws.experiment_id, str(ws.client.get_experiment(ws.experiment_id).name)
    )
    event["topic"] = topic or arm_id(ws.name)
    return event_grid_event(event)


def tag_env() -> dict[str, str]:
    return {"required_tags": "team", "tag_defaults": '{"team": "core"}'}


def test_events_for_each_workspace_reach_its_server_and_only_it(workspaces):
    app = estate_app(workspaces, **tag_env())
    runs = {ws.name: make_run(ws.client, ws.experiment_id) for ws in members(workspaces)}
    on_run_event = on_run_event_function()

    with use_estate(app):
        for ws in members(workspaces)[:2]:  # dev and test get an event; prod none
            on_run_event(event_on(ws, runs[ws.name]))

    tagged = {
        ws.name: ws.client.get_run(runs[ws.name]).data.tags.get("team")
        for ws in members(workspaces)
    }
    assert tagged == {"mlw-dev": "core", "mlw-test": "core", "mlw-prod": None}


def test_an_event_for_the_wrong_workspace_does_not_touch_the_run_elsewhere(workspaces):
    """dev's run id sent with prod's topic: prod's server has no such run; dev is untouched."""
    app = estate_app(workspaces, **tag_env())
    dev = workspaces["mlw-dev"]
    run_id = make_run(dev.client, dev.experiment_id)

    with use_estate(app):
        on_run_event_function()(event_on(dev, run_id, topic=arm_id("mlw-prod")))

    assert "team" not in dev.client.get_run(run_id).data.tags


def test_an_event_naming_an_unknown_workspace_changes_nothing_anywhere(workspaces, caplog):
    app = estate_app(workspaces, **tag_env())
    runs = {ws.name: make_run(ws.client, ws.experiment_id) for ws in members(workspaces)}
    before = {ws.name: ws.client.get_run(runs[ws.name]).data.tags for ws in members(workspaces)}

    with use_estate(app), caplog.at_level(logging.WARNING):
        for ws in members(workspaces):
            on_run_event_function()(event_on(ws, runs[ws.name], topic=arm_id("mlw-stranger")))

    after = {ws.name: ws.client.get_run(runs[ws.name]).data.tags for ws in members(workspaces)}
    assert after == before
    dropped = [r for r in caplog.records if "not in the estate" in r.getMessage()]
    assert len(dropped) == 3
    assert app.channel.sink.messages == []


def queue_messages(app: EstateApp) -> list[str]:
    """What the timer puts on the queue, as the host's queue converter encodes it."""
    from functions.scheduled_sweep import scheduled_sweep

    out = Collected()
    with use_estate(app):
        scheduled_sweep.build().get_user_function()(TimerRequest(past_due=False), out)
    datum = QueueMessageOutConverter.encode(out.get(), expected_type=list)
    assert datum.type == "json"
    return list(json.loads(datum.value))


def sweep_message(app: EstateApp, body: str) -> None:
    from functions.sweep_queue import sweep_workspace

    with use_estate(app):
        sweep_workspace.build().get_user_function()(func.QueueMessage(id="m1", body=body))


def old_failed_runs(workspaces) -> dict[str, str]:
    return {
        ws.name: make_run(ws.client, ws.experiment_id, status="FAILED", ended_hours_ago=100)
        for ws in members(workspaces)
    }


def deleted(ws: Workspace, run_id: str) -> bool:
    return ws.client.get_run(run_id).info.lifecycle_stage == "deleted"


def test_the_timer_fans_out_and_each_message_sweeps_its_workspace(workspaces):
    app = estate_app(workspaces)
    runs = old_failed_runs(workspaces)

    bodies = queue_messages(app)

    assert [json.loads(b)["workspace"] for b in bodies] == [arm_id(n) for n in NAMES]
    assert not any(deleted(ws, runs[ws.name]) for ws in members(workspaces))  # only queued
    for body, ws in zip(bodies, members(workspaces), strict=True):
        sweep_message(app, body)
        assert deleted(ws, runs[ws.name])
    # Each workspace's sweep is its own: one card each, naming its workspace.
    assert len(app.channel.sink.messages) == 3


def test_a_workspace_whose_server_is_down_fails_its_message_while_the_others_complete(
    workspaces,
):
    app = estate_app(workspaces, down="mlw-test")
    runs = old_failed_runs(workspaces)
    bodies = queue_messages(app)

    outcomes: dict[str, str] = {}
    for body, name in zip(bodies, NAMES, strict=True):
        try:
            sweep_message(app, body)
            outcomes[name] = "done"
        except TrackingUnavailable:  # the queue makes the message visible again, later
            outcomes[name] = "failed"

    assert outcomes == {"mlw-dev": "done", "mlw-test": "failed", "mlw-prod": "done"}
    assert deleted(workspaces["mlw-dev"], runs["mlw-dev"])
    assert deleted(workspaces["mlw-prod"], runs["mlw-prod"])
    assert not deleted(workspaces["mlw-test"], runs["mlw-test"])


@pytest.mark.parametrize(
    "body", [json.dumps({"workspace": arm_id("mlw-stranger")}), "not json", "{}"]
)
def test_a_message_outside_the_estate_is_dropped_and_changes_nothing(workspaces, body, caplog):
    app = estate_app(workspaces)
    runs = old_failed_runs(workspaces)

    with caplog.at_level(logging.WARNING):
        sweep_message(app, body)  # does not raise: never retried

    assert not any(deleted(ws, runs[ws.name]) for ws in members(workspaces))
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_the_in_process_sweep_covers_the_estate_and_reports_a_down_member(workspaces):
    app = estate_app(workspaces, down="mlw-prod")
    runs = old_failed_runs(workspaces)

    swept = app.sweep()

    assert swept.exit_code == 1
    assert [s.member.name for s in swept.failed] == ["mlw-prod"]
    assert deleted(workspaces["mlw-dev"], runs["mlw-dev"])
    assert deleted(workspaces["mlw-test"], runs["mlw-test"])


def test_the_estate_summary_adds_up(workspaces):
    app = estate_app(workspaces)
    for count, ws in enumerate(members(workspaces), start=1):
        for _ in range(count):
            make_run(ws.client, ws.experiment_id)
        make_run(ws.client, ws.experiment_id, status="FAILED")

    outcome = app.summary()

    rows = {w.name: w for w in outcome.summary.workspaces}
    assert [rows[n].totals["Runs finished"] for n in NAMES] == [1, 2, 3]
    assert [rows[n].totals["Runs failed"] for n in NAMES] == [1, 1, 1]
    for label, total in outcome.summary.totals.items():
        assert total == sum(w.totals[label] for w in outcome.summary.workspaces)
    assert outcome.summary.totals["Runs finished"] == 6
    (message,) = app.channel.sink.messages
    assert all(f"workspaces/{n}" in json.dumps(message) for n in NAMES)  # per-workspace links


def test_cli_sweep_refuses_a_workspace_outside_the_estate(app_env, capsys):
    from shared.cli import main

    app_env.setenv("AZURE_ML_WORKSPACE_ID", arm_id("mlw-dev"))

    assert main(["sweep", "--workspace", "mlw-stranger"]) == 2
    assert "not in the estate" in capsys.readouterr().err
    assert main(["sweep", "--workspace", "mlw-dev", "--json"]) == 0
