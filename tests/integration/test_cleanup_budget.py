"""The request budget of the sweep's deletions, counted by the loopback proxy of
`test_event_budget` in front of the real server: a level of N deletions re-reads its runs in
one search and reads the claimed runs in one more, so `runs/get` does not grow with N."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared import tags as T
from shared.tracking.capabilities import Capabilities
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.sweep import sweep
from tests.counting_proxy import CountingProxy
from tests.counting_proxy import proxy as proxy
from tests.support import make_run, settings

RUNS = 6


def seeded(client, prefix: str) -> set[str]:
    experiments = [client.create_experiment(f"{prefix}-{i}") for i in range(2)]
    return {
        make_run(client, experiments[i % 2], status="FAILED", ended_hours_ago=100)
        for i in range(RUNS)
    }


def deleted_with_reasons(client, report, runs: set[str]) -> None:
    deletions = [r for r in report.records if r.action == "delete-run"]
    assert {r.run_id for r in deletions} == runs
    assert {r.outcome for r in deletions} == {"applied"}, [r.reason for r in deletions]
    for run_id in runs:
        run = client.get_run(run_id)
        assert run.info.lifecycle_stage == "deleted"
        assert T.DELETED_REASON in run.data.tags


def count(proxy: CountingProxy, endpoint: str) -> int:
    return sum(request.endswith(f"/api/2.0/mlflow/{endpoint}") for request in proxy.requests)


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_sweep_deleting_n_runs_reads_them_in_searches_not_one_by_one(
    proxy, client, concurrency
) -> None:
    prefix = f"budget-{uuid.uuid4().hex[:10]}"
    runs = seeded(client, prefix)
    the_settings = settings(
        proxy.uri, experiments=f"{prefix}-*", cleanup_statuses="FAILED", concurrency=concurrency
    )
    proxy.requests.clear()

    report = sweep(MlflowGateway(proxy.uri), the_settings, datetime.now(UTC))

    deleted_with_reasons(client, report, runs)
    shown = "\n".join(proxy.requests)
    assert count(proxy, "runs/delete") == RUNS, shown
    # Was 2 per deletion (the re-read and the claim's check): now both are searches.
    assert count(proxy, "runs/get") == 0, shown
    # The deletions: one search re-reads every run, each is claimed (the reasons and the
    # claim in one log-batch), one search reads them again, each is deleted.
    paths = [request.split("/api/2.0/mlflow/")[1] for request in proxy.requests]
    first = paths.index("runs/log-batch") - 1
    last = len(paths) - paths[::-1].index("runs/delete")
    assert paths[first:last] == (
        ["runs/search"] + ["runs/log-batch"] * RUNS + ["runs/search"] + ["runs/delete"] * RUNS
    ), shown


def test_a_server_refusing_id_lists_reads_each_run_alone_as_before(proxy, client) -> None:
    prefix = f"budget-{uuid.uuid4().hex[:10]}"
    runs = seeded(client, prefix)
    the_settings = settings(
        proxy.uri, experiments=f"{prefix}-*", cleanup_statuses="FAILED", concurrency="4"
    )
    # Told up front, as for Azure ML: `attributes.run_id IN (...)` is not sent at all.
    gateway = MlflowGateway(proxy.uri, capabilities=Capabilities(run_id_filter=False))
    proxy.requests.clear()

    report = sweep(gateway, the_settings, datetime.now(UTC))

    deleted_with_reasons(client, report, runs)
    # The gateway's own fallback: the two reads of each run, one `get_run` each (as before).
    assert count(proxy, "runs/get") == 2 * RUNS
    assert count(proxy, "runs/delete") == RUNS
