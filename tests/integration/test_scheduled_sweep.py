"""`scheduled_sweep` and `mlgov sweep`/`mlgov restore` end to end against the real server.

The timer runs with an App built for the test (`use_app`: the test server's gateway, a
channel keeping cards in memory); the CLI reads the environment, as it does by contract.
Nothing is patched.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest

from shared import tags as T
from shared.bootstrap import App, build_app, use_app
from shared.cli import main
from shared.notify.sinks import Channel, MemoryCardSink
from tests.estate_support import Collected
from tests.receiver import card_text
from tests.support import make_run, settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(app_env):
    """The process environment of the app: the test server, one experiment in scope."""
    app_env.setenv("GOVERNANCE_CLEANUP_STATUSES", "FAILED")
    app_env.setenv("GOVERNANCE_SWEEP_SCHEDULE", "0 */30 * * * *")
    return app_env


def deleted(client, run_id):
    return client.get_run(run_id).info.lifecycle_stage == "deleted"


def host(uri: str, experiment_name: str, **env: str) -> App:
    """The Functions host's App for one test: `uri`, one experiment in scope, cleanup of
    failed runs, cards kept in memory (`app.channel.sink.messages`)."""
    the_settings = settings(uri, experiments=experiment_name, cleanup_statuses="FAILED", **env)
    return build_app(the_settings, channel=Channel(MemoryCardSink(), "memory"))


def run_timer(app: App, caplog, *, past_due: bool = False) -> list[str]:
    """One `scheduled_sweep` invocation with `app`; the function's log lines."""
    from functions.scheduled_sweep import scheduled_sweep

    caplog.clear()
    with use_app(app), caplog.at_level(logging.INFO, logger="functions.scheduled_sweep"):
        scheduled_sweep.build().get_user_function()(TimerRequest(past_due=past_due), Collected())
    return [r.getMessage() for r in caplog.records if r.name == "functions.scheduled_sweep"]


@pytest.mark.parametrize("past_due", [False, True])
def test_timer_runs_the_sweep(mlflow_server, client, experiment, caplog, past_due):
    exp_id, name = experiment
    old = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    young = make_run(client, exp_id, status="FAILED", ended_hours_ago=1)
    app = host(mlflow_server.uri, name)

    lines = run_timer(app, caplog, past_due=past_due)

    assert deleted(client, old)
    assert not deleted(client, young)
    assert lines[-1].startswith("scheduled_sweep: sweep: ")
    # The old run deleted; the young one's missed failure notice sent, then the run marked.
    assert "3 applied" in lines[-1]
    assert any(f"notify run {young} " in line for line in lines)
    assert "governance.failure_notified_at" in client.get_run(young).data.tags
    assert any("past due" in line for line in lines) is past_due
    (message,) = app.channel.sink.messages  # one card for the whole sweep
    assert "Cleanup: 1 run deleted" in card_text(message)


def test_timer_in_dry_run_logs_each_planned_action_and_changes_nothing(
    mlflow_server, client, experiment, caplog
):
    exp_id, name = experiment
    old = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)

    lines = run_timer(host(mlflow_server.uri, name, dry_run="true"), caplog)

    assert not deleted(client, old)
    assert any(
        line.startswith(f"planned cleanup-failed-runs delete-run run {old} ") for line in lines
    )


def test_sweep_alerts_a_missed_failure_once_and_never_in_dry_run(
    mlflow_server, client, experiment, caplog
):
    exp_id, name = experiment
    failed = make_run(client, exp_id, status="KILLED", ended_hours_ago=1)

    def notices(app: App) -> int:
        return sum(f"notify run {failed} " in line for line in run_timer(app, caplog))

    assert notices(host(mlflow_server.uri, name, dry_run="true")) == 0
    live = host(mlflow_server.uri, name)
    assert notices(live) == 1
    assert notices(live) == 0  # marked after the first delivery: no repeat


def test_timer_fails_when_the_server_is_down(experiment, caplog):
    from shared.errors import TrackingUnavailable
    from tests.conftest import free_port

    dead = host(f"http://127.0.0.1:{free_port()}", experiment[1])
    with pytest.raises(TrackingUnavailable):
        run_timer(dead, caplog)


def test_the_timer_builds_its_app_from_the_environment_on_first_use(
    app_env, client, experiment, caplog
):
    """Without an injected App, the host builds one from the app settings, once."""
    from functions.scheduled_sweep import scheduled_sweep
    from shared.bootstrap import host_app

    old = make_run(client, experiment[0], status="FAILED", ended_hours_ago=100)
    app_env.setenv("GOVERNANCE_CLEANUP_STATUSES", "FAILED")

    scheduled_sweep.build().get_user_function()(TimerRequest(past_due=False), Collected())

    assert deleted(client, old)
    assert host_app().settings.experiments == (experiment[1],)
    assert host_app() is host_app()


def test_function_app_indexes_the_timer_on_the_schedule_setting():
    # A fresh interpreter, as the host imports the app: cheap, and no MLflow at import time.
    script = (
        "import inspect, json, sys\n"
        "import function_app\n"
        "assert 'mlflow' not in sys.modules, 'mlflow imported at import time'\n"
        "fns = {f.get_function_name(): {**f.get_bindings_dict(), 'params': list(inspect"
        ".signature(f.get_user_function()).parameters)} for f in function_app.app"
        ".get_functions()}\n"
        "print(json.dumps(fns, default=str))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    functions = json.loads(out.splitlines()[-1])
    timers = {"scheduled_sweep": "SWEEP", "scheduled_summary": "SUMMARY"}
    for name, setting in timers.items():
        bindings = functions[name]["bindings"]
        (binding,) = [b for b in bindings if b["type"] == "timerTrigger"]
        assert binding["schedule"] == f"%GOVERNANCE_{setting}_SCHEDULE%"
        assert binding["useMonitor"] is True
        assert binding["runOnStartup"] is False
        # The host passes each binding by its name: the parameters are exactly those names.
        assert sorted(functions[name]["params"]) == sorted(b["name"] for b in bindings)


def test_cli_sweep_json_then_restore(env, client, experiment, capsys):
    exp_id, name = experiment
    old = [make_run(client, exp_id, status="FAILED", ended_hours_ago=100) for _ in range(2)]

    assert main(["sweep", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    deletions = [d for d in report["decisions"] if d["action"] == "delete-run"]
    assert {d["run_id"] for d in deletions} == set(old)
    assert all(d["policy"] == "cleanup-failed-runs" for d in deletions)
    assert all(d["outcome"] == "applied" for d in deletions)
    (row,) = report["experiments"]
    assert row["experiment"] == name
    assert row["deleted"] == 2
    assert row["examined"] >= 2
    assert all(T.DELETED_REASON in client.get_run(r).data.tags for r in old)

    assert main(["restore", "--since", "1", "--json"]) == 0
    restored = json.loads(capsys.readouterr().out)
    assert {d["run_id"] for d in restored["decisions"]} == set(old)
    assert restored["restore"]["restored"] == 2
    assert not any(deleted(client, r) for r in old)


def test_cli_sweep_table_shows_per_experiment_counts_and_the_guard(env, client, experiment, capsys):
    exp_id, name = experiment
    for _ in range(3):
        make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    env.setenv("GOVERNANCE_CLEANUP_MAX_RUNS", "2")

    assert main(["sweep"]) == 0
    out = capsys.readouterr().out
    assert "cleanup-guard" not in out  # the topic is data; the table shows the reason
    assert "3 runs qualify for cleanup, more than GOVERNANCE_CLEANUP_MAX_RUNS=2" in out
    header = next(line for line in out.splitlines() if line.startswith("EXPERIMENT"))
    assert header.split() == [
        "EXPERIMENT",
        "EXAMINED",
        "DELETED",
        "PROTECTED",
        "SKIPPED",
        "BY",
        "GUARD",
        "TAGGED",
        "PROMOTED",
        "FAILED",
    ]
    row = next(line for line in out.splitlines() if line.startswith(name))
    assert row.split()[1:] == ["3", "0", "0", "3", "0", "0", "0"]


def test_cli_restore_rejects_a_bad_window(env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["restore", "--since", "-3"])
    assert exit_info.value.code == 2
    assert "must be more than 0 and at most 87600 hours" in capsys.readouterr().err
