"""Cleanup in the sweep and `restore`, against the real MLflow server started by the suite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared import tags as T
from shared.errors import CapabilityUnsupported, TrackingError, TrackingUnavailable
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.restore import restore
from shared.usecases.sweep import sweep
from tests.conftest import free_port
from tests.fault_proxy import fail_all_run_searches, fail_run_search_of, fault_proxy
from tests.support import make_run, settings

pytestmark = pytest.mark.integration


def cleanup_settings(uri, experiments, **env):
    values = {
        "experiments": experiments,
        "cleanup_statuses": "FAILED",
        "cleanup_after_hours": "72",
        "cleanup_max_runs": "100",
        **env,
    }
    return settings(uri, **values)


def run_sweep(uri, experiments, page_size=None, **env):
    gateway = MlflowGateway(uri, page_size=page_size)
    return sweep(gateway, cleanup_settings(uri, experiments, **env), datetime.now(UTC))


def deleted(client, run_id):
    return client.get_run(run_id).info.lifecycle_stage == "deleted"


def decisions(report, action):
    return {r.run_id: r for r in report.records if r.action == action}


def counts_of(report, name):
    (row,) = [row for row in report.extra["experiments"] if row["experiment"] == name]
    return row


def test_deletes_only_old_failed_runs_with_reason_tags(mlflow_server, client, experiment):
    exp_id, name = experiment
    old = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    young = make_run(client, exp_id, status="FAILED", ended_hours_ago=10)
    killed = make_run(client, exp_id, status="KILLED", ended_hours_ago=100)
    finished = make_run(client, exp_id, status="FINISHED", ended_hours_ago=100)
    running = make_run(client, exp_id, status="RUNNING", ended_hours_ago=None)

    report = run_sweep(mlflow_server.uri, name)

    assert deleted(client, old)
    assert not any(deleted(client, r) for r in (young, killed, finished, running))
    tags = client.get_run(old).data.tags
    assert tags[T.DELETED_REASON].startswith("cleanup-failed-runs: status FAILED, ended 100.")
    assert tags[T.DELETED_REASON].endswith("(grace period 72 h)")
    stamped = datetime.fromisoformat(tags[T.DELETED_AT])
    assert stamped.tzinfo is not None
    assert stamped.utcoffset().total_seconds() == 0
    (record,) = decisions(report, "delete-run").values()
    assert record.run_id == old
    assert record.outcome == "applied"
    assert counts_of(report, name)["deleted"] == 1


def test_killed_runs_are_deleted_when_listed(mlflow_server, client, experiment):
    exp_id, name = experiment
    killed = make_run(client, exp_id, status="KILLED", ended_hours_ago=100)
    failed = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    run_sweep(mlflow_server.uri, name, cleanup_statuses="failed,Killed")
    assert deleted(client, killed)
    assert deleted(client, failed)


def test_protected_and_registered_runs_are_never_deleted(mlflow_server, client, experiment):
    exp_id, name = experiment
    protected = make_run(
        client, exp_id, status="FAILED", ended_hours_ago=100, tags={"governance.keep": "true"}
    )
    registered = make_run(client, exp_id, status="FAILED", ended_hours_ago=100, model=True)
    model_name = f"{name}-model"
    client.create_registered_model(model_name)
    client.create_model_version(model_name, f"runs:/{registered}/model", run_id=registered)

    report = run_sweep(mlflow_server.uri, name)

    assert not deleted(client, protected)
    assert not deleted(client, registered)
    skips = decisions(report, "skip")
    assert skips[protected].reason == "protected by governance.keep=true"
    assert skips[registered].reason == "produced a registered model version"
    assert T.DELETED_REASON not in client.get_run(registered).data.tags
    row = counts_of(report, name)
    assert row["protected"] == 2
    assert row["deleted"] == 0


def test_parent_is_deleted_only_with_all_its_children(mlflow_server, client, experiment):
    exp_id, name = experiment
    # A failed search whose trials all failed long ago: everything goes, children first.
    parent = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    trials = [
        make_run(
            client,
            exp_id,
            status="FAILED",
            ended_hours_ago=100,
            tags={"mlflow.parentRunId": parent},
        )
        for _ in range(2)
    ]
    # A failed parent with one trial still running stays, and so does the trial.
    busy_parent = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    done_trial = make_run(
        client,
        exp_id,
        status="FAILED",
        ended_hours_ago=100,
        tags={"mlflow.parentRunId": busy_parent},
    )
    running_trial = make_run(
        client,
        exp_id,
        status="RUNNING",
        ended_hours_ago=None,
        tags={"mlflow.parentRunId": busy_parent},
    )

    report = run_sweep(mlflow_server.uri, name)

    assert deleted(client, parent)
    assert all(deleted(client, t) for t in trials)
    assert not deleted(client, busy_parent)
    assert not deleted(client, running_trial)
    assert deleted(client, done_trial)  # a child alone may go; only parents wait
    reason = decisions(report, "skip")[busy_parent].reason
    assert reason.startswith("parent of runs that stay:")
    assert "status RUNNING" in reason
    order = [r.run_id for r in report.records if r.action == "delete-run"]
    assert order.index(parent) > max(order.index(t) for t in trials)


# Examples are a sample: at most the cap + 1 candidates are kept, and at most 5 are shown.
@pytest.mark.parametrize(("cap", "shown"), [(3, 4), (6, 5)])
def test_guard_deletes_nothing_above_the_cap(mlflow_server, client, experiment, cap, shown):
    exp_id, name = experiment
    runs = [make_run(client, exp_id, status="FAILED", ended_hours_ago=100) for _ in range(8)]

    report = run_sweep(mlflow_server.uri, name, cleanup_max_runs=str(cap))

    assert not any(deleted(client, r) for r in runs)
    (notice,) = [r for r in report.records if r.action == "notify"]
    assert notice.details["topic"] == "cleanup-guard"
    assert notice.details["candidates"] == "8"
    assert notice.details["cap"] == str(cap)
    assert "GOVERNANCE_CLEANUP_MAX_RUNS" in notice.reason
    assert "raise GOVERNANCE_CLEANUP_MAX_RUNS to 8" in notice.reason
    examples = notice.details["examples"].split(", ")
    assert len(examples) == shown
    assert all(e.startswith(name + "/") for e in examples)
    assert {e.rsplit("(", 1)[1].rstrip(")") for e in examples} <= {r[:8] for r in runs}
    assert not decisions(report, "delete-run")
    row = counts_of(report, name)
    assert row["skipped_by_guard"] == 8
    assert row["deleted"] == 0


def test_guard_allows_exactly_the_cap(mlflow_server, client, experiment):
    exp_id, name = experiment
    runs = [make_run(client, exp_id, status="FAILED", ended_hours_ago=100) for _ in range(3)]
    report = run_sweep(mlflow_server.uri, name, cleanup_max_runs="3")
    assert all(deleted(client, r) for r in runs)
    assert not [r for r in report.records if r.action == "notify"]


def test_guard_counts_across_experiments(mlflow_server, client):
    prefix = f"guard-{uuid.uuid4().hex[:8]}"
    runs = []
    for index in range(3):
        exp_id = client.create_experiment(f"{prefix}-{index}")
        runs += [make_run(client, exp_id, status="FAILED", ended_hours_ago=100) for _ in range(2)]
    # Two per experiment is under the cap in each, six across the sweep is over it.
    report = run_sweep(mlflow_server.uri, f"{prefix}-*", cleanup_max_runs="5")
    assert not any(deleted(client, r) for r in runs)
    (notice,) = [r for r in report.records if r.action == "notify"]
    assert notice.details["candidates"] == "6"


def test_dry_run_changes_nothing(mlflow_server, client, experiment):
    exp_id, name = experiment
    old = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    before = client.get_run(old).data.tags

    report = run_sweep(mlflow_server.uri, name, dry_run="true")

    assert not deleted(client, old)
    assert client.get_run(old).data.tags == before
    record = decisions(report, "delete-run")[old]
    assert record.outcome == "planned"
    assert record.details[f"set:{T.DELETED_REASON}"].startswith("cleanup-failed-runs")
    assert counts_of(report, name)["deleted"] == 1


def test_second_sweep_changes_nothing(mlflow_server, client, experiment):
    exp_id, name = experiment
    make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    make_run(client, exp_id, status="FAILED", ended_hours_ago=100, tags={"governance.keep": "true"})
    make_run(client, exp_id, status="FINISHED", ended_hours_ago=2)
    env = {"required_tags": "owner", "tag_defaults": '{"owner": "{user}"}'}

    first = run_sweep(mlflow_server.uri, name, **env)
    assert first.counts()["applied"] == 2  # one deletion, one run tagged

    second = run_sweep(mlflow_server.uri, name, **env)
    assert second.counts()["applied"] == 0
    assert second.counts()["failed"] == 0
    row = counts_of(second, name)
    assert row["deleted"] == 0
    assert row["tagged"] == 0


def test_restore_brings_runs_back_and_the_next_sweep_leaves_them(mlflow_server, client, experiment):
    exp_id, name = experiment
    old = [make_run(client, exp_id, status="FAILED", ended_hours_ago=100) for _ in range(2)]
    untouched = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    client.delete_run(untouched)  # deleted by someone else: not ours to restore
    uri = mlflow_server.uri
    run_sweep(uri, name)
    assert all(deleted(client, r) for r in old)

    gateway = MlflowGateway(uri)
    report = restore(gateway, cleanup_settings(uri, name), datetime.now(UTC), since_hours=1)

    assert {r.run_id for r in report.records if r.outcome == "applied"} == set(old)
    assert report.extra["restore"]["restored"] == 2
    assert deleted(client, untouched)
    for run_id in old:
        tags = client.get_run(run_id).data.tags
        assert not deleted(client, run_id)
        assert T.DELETED_REASON not in tags
        assert T.DELETED_AT not in tags
        assert T.RESTORED_AT in tags
    again = run_sweep(uri, name)
    assert not any(deleted(client, r) for r in old)
    assert {r.run_id for r in decisions(again, "skip").values()} >= set(old)


def test_restore_brings_back_every_run_across_pages(mlflow_server, client, experiment):
    """Each restore takes a run out of the deleted set: paging by token must not skip any."""
    exp_id, name = experiment
    runs = [make_run(client, exp_id, status="FAILED", ended_hours_ago=100) for _ in range(10)]
    uri = mlflow_server.uri
    run_sweep(uri, name)
    assert all(deleted(client, r) for r in runs)

    gateway = MlflowGateway(uri, page_size=3)
    report = restore(gateway, cleanup_settings(uri, name), datetime.now(UTC), since_hours=1)

    assert report.extra["restore"]["restored"] == 10
    assert {r.run_id for r in report.records if r.outcome == "applied"} == set(runs)
    assert not any(deleted(client, r) for r in runs)


def test_restore_window_excludes_older_deletions(mlflow_server, client, experiment):
    exp_id, name = experiment
    run_id = make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    client.set_tag(run_id, T.DELETED_REASON, "cleanup-failed-runs: status FAILED")
    client.set_tag(run_id, T.DELETED_AT, "2020-01-01T00:00:00+00:00")
    client.delete_run(run_id)
    uri = mlflow_server.uri
    report = restore(MlflowGateway(uri), cleanup_settings(uri, name), datetime.now(UTC), 24)
    assert report.records == []
    assert deleted(client, run_id)


def test_many_experiments_and_more_runs_than_a_page(mlflow_server, client):
    prefix = f"paged-{uuid.uuid4().hex[:8]}"
    expected = set()
    kept = set()
    for index in range(4):
        exp_id = client.create_experiment(f"{prefix}-{index}")
        expected |= {
            make_run(client, exp_id, status="FAILED", ended_hours_ago=100) for _ in range(4)
        }
        kept |= {make_run(client, exp_id, status="FINISHED", ended_hours_ago=100)}
        kept |= {make_run(client, exp_id, status="FAILED", ended_hours_ago=1) for _ in range(2)}
    # Page size 3: every experiment's candidates and the experiment list span several pages.
    report = run_sweep(mlflow_server.uri, f"{prefix}-*", page_size=3)

    assert {r.run_id for r in decisions(report, "delete-run").values()} == expected
    assert all(deleted(client, r) for r in expected)
    assert not any(deleted(client, r) for r in kept)
    rows = report.extra["experiments"]
    assert sorted(row["experiment"] for row in rows) == [f"{prefix}-{i}" for i in range(4)]
    assert all(row["deleted"] == 4 for row in rows)


class OneExperimentBroken(MlflowGateway):
    """The real gateway, except that one experiment's listing fails as a refused page would."""

    def __init__(self, uri, broken_id):
        super().__init__(uri)
        self.broken_id = broken_id

    def iter_runs(self, query):
        if query.experiment_id == self.broken_id:
            raise TrackingError("search_runs failed: PERMISSION_DENIED")
        yield from super().iter_runs(query)


def test_one_failing_experiment_does_not_stop_the_others(mlflow_server, client):
    prefix = f"broken-{uuid.uuid4().hex[:8]}"
    good_id = client.create_experiment(f"{prefix}-good")
    bad_id = client.create_experiment(f"{prefix}-bad")
    good = make_run(client, good_id, status="FAILED", ended_hours_ago=100)
    bad = make_run(client, bad_id, status="FAILED", ended_hours_ago=100)
    uri = mlflow_server.uri

    gateway = OneExperimentBroken(uri, bad_id)
    report = sweep(gateway, cleanup_settings(uri, f"{prefix}-*"), datetime.now(UTC))

    assert deleted(client, good)
    assert not deleted(client, bad)
    failures = [r for r in report.records if r.outcome == "failed"]
    assert {r.experiment for r in failures} == {f"{prefix}-bad"}
    assert report.exit_code == 1
    assert counts_of(report, f"{prefix}-bad")["failed"] == 2  # cleanup scan and catch-up


def test_server_error_on_one_experiment_is_reported_and_the_others_are_swept(mlflow_server, client):
    """A 500 on one experiment's run search is that experiment's failure, not the sweep's."""
    prefix = f"five-hundred-{uuid.uuid4().hex[:8]}"
    ids = {suffix: client.create_experiment(f"{prefix}-{suffix}") for suffix in ("a", "bad", "c")}
    runs = {
        suffix: make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
        for suffix, exp_id in ids.items()
    }
    with fault_proxy(mlflow_server.uri, fail_run_search_of(ids["bad"])) as (uri, hits):
        report = run_sweep(uri, f"{prefix}-*", page_size=3)

    assert hits  # the fault was injected, so the test exercises the 5xx path
    assert deleted(client, runs["a"])
    assert deleted(client, runs["c"])
    assert not deleted(client, runs["bad"])
    failures = [r for r in report.records if r.outcome == "failed"]
    assert {(r.experiment, r.action) for r in failures} == {(f"{prefix}-bad", "scan-experiment")}
    assert all("unavailable" in r.reason for r in failures)
    assert counts_of(report, f"{prefix}-bad")["failed"] == 2  # cleanup scan and catch-up
    assert counts_of(report, f"{prefix}-a")["deleted"] == 1
    assert report.exit_code == 1


def test_server_error_on_every_experiment_fails_the_sweep(mlflow_server, client):
    """Experiments listed but no run search answered: the server is down, not one experiment."""
    prefix = f"all-down-{uuid.uuid4().hex[:8]}"
    for suffix in ("a", "b"):
        exp_id = client.create_experiment(f"{prefix}-{suffix}")
        make_run(client, exp_id, status="FAILED", ended_hours_ago=100)
    with (
        fault_proxy(mlflow_server.uri, fail_all_run_searches) as (uri, _),
        pytest.raises(TrackingUnavailable, match="every experiment in scope"),
    ):
        run_sweep(uri, f"{prefix}-*")


def test_restore_reports_a_server_error_on_one_experiment_and_goes_on(mlflow_server, client):
    prefix = f"restore-500-{uuid.uuid4().hex[:8]}"
    good_id = client.create_experiment(f"{prefix}-good")
    bad_id = client.create_experiment(f"{prefix}-bad")
    good = make_run(client, good_id, status="FAILED", ended_hours_ago=100)
    make_run(client, bad_id, status="FAILED", ended_hours_ago=100)
    uri = mlflow_server.uri
    run_sweep(uri, f"{prefix}-*")

    with fault_proxy(uri, fail_run_search_of(bad_id)) as (proxy, _):
        scope = cleanup_settings(proxy, f"{prefix}-*")
        report = restore(MlflowGateway(proxy), scope, datetime.now(UTC), since_hours=1)

    assert not deleted(client, good)
    (failure,) = [r for r in report.records if r.outcome == "failed"]
    assert failure.experiment == f"{prefix}-bad"
    assert report.exit_code == 1


def test_server_down_fails_the_sweep():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingUnavailable):
        sweep(MlflowGateway(uri), cleanup_settings(uri, "*"), datetime.now(UTC))


class CannotRestore(MlflowGateway):
    """The real gateway on a server that refuses `restore_run`, as Azure ML may."""

    def restore_run(self, run_id):
        raise CapabilityUnsupported("the tracking server cannot restore runs")


def test_restore_says_clearly_when_the_server_cannot(mlflow_server, client, experiment):
    exp_id, name = experiment
    old = [make_run(client, exp_id, status="FAILED", ended_hours_ago=100) for _ in range(2)]
    uri = mlflow_server.uri
    run_sweep(uri, name)

    report = restore(CannotRestore(uri), cleanup_settings(uri, name), datetime.now(UTC), 1)

    (record,) = report.records  # stops at the first refusal instead of repeating it
    assert record.outcome == "failed"
    assert "cannot restore" in record.reason
    assert report.extra["restore"]["unsupported"] == record.reason
    assert report.extra["restore"]["restored"] == 0
    assert all(deleted(client, r) for r in old)
    assert T.DELETED_REASON in client.get_run(record.run_id).data.tags
