"""One deployment governing three workspaces, each a real `mlflow server` on loopback.

The settings list three ARM ids; the gateway factory maps each member's id to its server
(what workspace resolution does in Azure). Events and queue messages go through the Functions
triggers as the host calls them, with azure-functions' own objects; nothing is patched.
"""

from __future__ import annotations

import json
import logging
import os
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
from shared.bootstrap import use_estate
from shared.errors import TrackingUnavailable
from shared.estate import Member
from shared.notify.sinks import Channel, MemoryCardSink
from shared.tracking.mlflow_gateway import MlflowGateway
from tests.conftest import _start_server, _wait_healthy, free_port, stop_server
from tests.estate_support import Collected
from tests.event_samples import event_grid_event, on_run_event_function, run_event
from tests.fault_proxy import AfterPassing, fault_proxy, reset
from tests.receiver import card_text
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
    a port nobody listens on; a workspace's name as a key: the URI to use for it instead)."""
    experiment = workspaces["_name"]  # type: ignore[index]
    uris = {ws.name: ws.uri for key, ws in workspaces.items() if key != "_name"}
    for name in NAMES:
        if name in env:
            uris[name] = env.pop(name)
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


# -- a member whose server goes away halfway ---------------------------------------------------


def old_failed(ws: Workspace, count: int) -> list[str]:
    return [
        make_run(ws.client, ws.experiment_id, status="FAILED", ended_hours_ago=100, name=f"t-{i}")
        for i in range(count)
    ]


def applied_deletions(decisions: list[dict[str, object]], ws: Workspace) -> set[str]:
    """The runs of `ws` the report says were deleted (experiment ids repeat across servers;
    run ids do not)."""
    return {
        str(d["run_id"])
        for d in decisions
        if d["action"] == "delete-run" and d["outcome"] == "applied" and in_workspace(ws, d)
    }


def in_workspace(ws: Workspace, decision: dict[str, object]) -> bool:
    if decision["experiment_id"] != ws.experiment_id:
        return False
    try:
        return ws.client.get_run(str(decision["run_id"])).info.experiment_id == ws.experiment_id
    except Exception:  # noqa: BLE001 (no such run on this server)
        return False


def test_a_member_interrupted_halfway_reports_what_it_deleted_in_the_estate(workspaces):
    test_ws = workspaces["mlw-test"]
    trials = old_failed(test_ws, 5)
    others = old_failed_runs(workspaces)

    with fault_proxy(test_ws.uri, AfterPassing("/runs/delete", 2), reset) as (proxied, hits):
        app = estate_app(workspaces, **{"mlw-test": proxied})
        swept = app.sweep()

    assert hits, "the server never went away"
    gone = {run_id for run_id in [*trials, others["mlw-test"]] if deleted(test_ws, run_id)}
    assert len(gone) == 2
    (failed,) = swept.failed
    assert failed.member.name == "mlw-test"
    assert failed.interrupted
    assert "tracking server unavailable" in str(failed.error)
    report = swept.report.to_dict()
    entry = next(w for w in report["workspaces"] if w["name"] == "mlw-test")
    assert (entry["swept"], entry["interrupted"]) == (False, True)
    assert entry["counts"]["applied"] == 2
    # Exactly what the server deleted is in the estate's report, beside the others' sweeps.
    assert applied_deletions(report["decisions"], test_ws) == gone
    (row,) = [r for r in report["experiments"] if r["workspace"] == "mlw-test"]
    assert row["deleted"] == 2
    for name in ("mlw-dev", "mlw-prod"):
        assert deleted(workspaces[name], others[name])
        done = next(w for w in report["workspaces"] if w["name"] == name)
        assert (done["swept"], done["interrupted"], done["error"]) == (True, False, None)
    assert swept.exit_code == 1
    # ...and announced on the member's own card, which names its workspace.
    (card,) = [m for m in app.channel.sink.messages if "Workspace mlw-test" in card_text(m)]
    text = card_text(card)
    for run_id in gone:
        assert test_ws.client.get_run(run_id).info.run_name in text


# -- the CLI over the estate ---------------------------------------------------------------------


@pytest.fixture
def estate_env(monkeypatch, workspaces) -> Iterator[dict[str, str]]:
    """The environment `mlgov` reads: the three workspaces listed, no tracking URI and no
    Azure identity; each member's URI is its server's, as Azure's resolution would answer
    (`use_tracking_uris`). Yields the name -> URI map, which a test may point elsewhere."""
    from shared.bootstrap import reset_host_app, use_tracking_uris

    for key in list(os.environ):
        if key.startswith(("GOVERNANCE_", "AZURE_", "MLFLOW_TRACKING_URI")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GOVERNANCE_WORKSPACES", ",".join(arm_id(n) for n in NAMES))
    monkeypatch.setenv("GOVERNANCE_EXPERIMENTS", str(workspaces["_name"]))
    monkeypatch.setenv("GOVERNANCE_CLEANUP_STATUSES", "FAILED")
    uris = {ws.name: ws.uri for ws in members(workspaces)}
    reset_host_app()
    with use_tracking_uris(lambda workspace: uris[workspace.name]):
        yield uris
    reset_host_app()


def test_cli_sweep_sweeps_every_workspace_of_the_estate(workspaces, estate_env, capsys):
    from shared.cli import main

    runs = old_failed_runs(workspaces)

    code = main(["sweep", "--json"])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    assert all(deleted(ws, runs[ws.name]) for ws in members(workspaces))
    assert [(w["name"], w["id"], w["swept"]) for w in report["workspaces"]] == [
        (n, arm_id(n), True) for n in NAMES
    ]
    assert [w["counts"]["applied"] for w in report["workspaces"]] == [1, 1, 1]
    assert sorted(r["workspace"] for r in report["experiments"]) == sorted(NAMES)
    for ws in members(workspaces):
        assert applied_deletions(report["decisions"], ws) == {runs[ws.name]}
    # One card per workspace, each saying which (kept in the report: no webhook).
    named = [n for c in report["cards"] for n in NAMES if f"Workspace {n}" in card_text(c)]
    assert sorted(named) == sorted(NAMES)


def test_cli_sweep_of_one_workspace_touches_no_other(workspaces, estate_env, capsys):
    from shared.cli import main

    runs = old_failed_runs(workspaces)

    assert main(["sweep", "--workspace", "mlw-test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert {ws.name: deleted(ws, runs[ws.name]) for ws in members(workspaces)} == {
        "mlw-dev": False,
        "mlw-test": True,
        "mlw-prod": False,
    }
    assert applied_deletions(report["decisions"], workspaces["mlw-test"]) == {runs["mlw-test"]}
    assert main(["sweep", "--workspace", arm_id("mlw-prod").upper(), "--json"]) == 0
    capsys.readouterr()
    assert deleted(workspaces["mlw-prod"], runs["mlw-prod"])
    assert not deleted(workspaces["mlw-dev"], runs["mlw-dev"])
    assert main(["sweep", "--workspace", "mlw-stranger"]) == 2
    assert "not in the estate (members: mlw-dev, mlw-test, mlw-prod)" in capsys.readouterr().err


def test_cli_sweep_reports_a_member_interrupted_halfway(workspaces, estate_env, capsys):
    from shared.cli import main

    test_ws = workspaces["mlw-test"]
    trials = old_failed(test_ws, 4)
    others = old_failed_runs(workspaces)

    with fault_proxy(test_ws.uri, AfterPassing("/runs/delete", 2), reset) as (proxied, _):
        estate_env["mlw-test"] = proxied
        code = main(["sweep", "--json"])
    captured = capsys.readouterr()

    assert code == 1
    report = json.loads(captured.out)
    gone = {run_id for run_id in [*trials, others["mlw-test"]] if deleted(test_ws, run_id)}
    assert len(gone) == 2
    entry = next(w for w in report["workspaces"] if w["name"] == "mlw-test")
    assert (entry["swept"], entry["interrupted"], entry["counts"]["applied"]) == (False, True, 2)
    assert applied_deletions(report["decisions"], test_ws) == gone
    assert "workspace mlw-test: interrupted after" in captured.err
    (card,) = [c for c in report["cards"] if "Workspace mlw-test" in card_text(c)]
    assert all(test_ws.client.get_run(r).info.run_name in card_text(card) for r in gone)
    assert deleted(workspaces["mlw-dev"], others["mlw-dev"])
    assert deleted(workspaces["mlw-prod"], others["mlw-prod"])


def test_cli_sweep_of_one_workspace_interrupted_prints_what_it_did(workspaces, estate_env, capsys):
    from shared.cli import main

    test_ws = workspaces["mlw-test"]
    trials = old_failed(test_ws, 4)

    with fault_proxy(test_ws.uri, AfterPassing("/runs/delete", 1), reset) as (proxied, _):
        estate_env["mlw-test"] = proxied
        code = main(["sweep", "--workspace", "mlw-test", "--json"])
    captured = capsys.readouterr()

    assert code == 1
    assert "mlgov: tracking server unavailable" in captured.err
    report = json.loads(captured.out)
    (gone,) = [run_id for run_id in trials if deleted(test_ws, run_id)]
    assert applied_deletions(report["decisions"], test_ws) == {gone}
    assert "tracking server unavailable" in report["interrupted"]


def test_cli_check_prints_the_estate(workspaces, estate_env, capsys):
    from shared.cli import main

    assert main(["check"]) == 0
    text = capsys.readouterr().out
    assert "Estate (3 workspaces):" in text
    for name in NAMES:
        (line,) = [line for line in text.splitlines() if line.strip().startswith(f"{name} ")]
        assert arm_id(name) in line
        assert "listed in GOVERNANCE_WORKSPACES" in line

    assert main(["check", "--json"]) == 0
    estate = json.loads(capsys.readouterr().out)["estate"]
    assert [(m["name"], m["arm_id"], m["source"]) for m in estate["members"]] == [
        (n, arm_id(n), "list") for n in NAMES
    ]
    assert (estate["scope"], estate["discovered"]) == (None, False)


def event_file(tmp_path: Path, events: list[dict[str, object]]) -> str:
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events), encoding="utf-8")
    return str(path)


def raw_event(ws: Workspace, run_id: str, topic: str | None = None) -> dict[str, object]:
    event = run_event(
        run_id, ws.experiment_id, str(ws.client.get_experiment(ws.experiment_id).name)
    )
    event["topic"] = topic or arm_id(ws.name)
    return event


def tagging_runs(workspaces, monkeypatch) -> dict[str, str]:
    """Required tag `team` with a default; one untagged run in each workspace."""
    monkeypatch.setenv("GOVERNANCE_REQUIRED_TAGS", "team")
    monkeypatch.setenv("GOVERNANCE_TAG_DEFAULTS", '{"team": "core"}')
    return {ws.name: make_run(ws.client, ws.experiment_id) for ws in members(workspaces)}


def test_cli_handle_event_routes_each_event_to_its_workspace(
    workspaces, estate_env, monkeypatch, tmp_path, capsys
):
    from shared.cli import main

    runs = tagging_runs(workspaces, monkeypatch)
    dev, prod = workspaces["mlw-dev"], workspaces["mlw-prod"]
    events = [raw_event(prod, runs["mlw-prod"]), raw_event(dev, runs["mlw-dev"])]

    code = main(["handle-event", event_file(tmp_path, events), "--json"])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    tagged = {
        ws.name: ws.client.get_run(runs[ws.name]).data.tags.get("team")
        for ws in members(workspaces)
    }
    assert tagged == {"mlw-dev": "core", "mlw-test": None, "mlw-prod": "core"}
    # prod's decisions first: workspaces in the order the input names them.
    tag_runs = [d["run_id"] for d in report["decisions"] if d["action"] == "set-run-tags"]
    assert tag_runs[0] == runs["mlw-prod"]
    assert set(tag_runs) == {runs["mlw-prod"], runs["mlw-dev"]}


def test_cli_handle_event_drops_an_event_outside_the_estate_and_exits_2(
    workspaces, estate_env, monkeypatch, tmp_path, capsys
):
    from shared.cli import main

    runs = tagging_runs(workspaces, monkeypatch)
    dev, test_ws = workspaces["mlw-dev"], workspaces["mlw-test"]
    stranger = raw_event(test_ws, runs["mlw-test"], topic=arm_id("mlw-stranger"))
    events = [stranger, raw_event(dev, runs["mlw-dev"])]

    code = main(["handle-event", event_file(tmp_path, events)])
    err = capsys.readouterr().err

    assert code == 2
    assert f"event {stranger['id']} names workspace" in err
    assert "mlw-stranger" in err
    assert "not in the estate: dropped" in err
    # The event for dev is handled; the stray one changed nothing anywhere.
    assert dev.client.get_run(runs["mlw-dev"]).data.tags.get("team") == "core"
    for ws in members(workspaces)[1:]:
        assert "team" not in ws.client.get_run(runs[ws.name]).data.tags
