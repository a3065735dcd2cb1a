"""A run restored outside mlgov (MLflow's `restore_run`, the UI) keeps this tool's deletion
tags; the sweep honours that restore for a grace period instead of deleting the run again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import tags as T
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.sweep import sweep
from tests.support import make_run, settings

pytestmark = pytest.mark.integration


def _sweep(uri: str, experiment: str, now: datetime):
    values = {"experiments": experiment, "cleanup_statuses": "FAILED", "cleanup_after_hours": "72"}
    return sweep(MlflowGateway(uri), settings(uri, **values), now)


def _deleted(client, run_id: str) -> bool:
    return client.get_run(run_id).info.lifecycle_stage == "deleted"


def test_a_restore_by_someone_else_is_honoured_for_the_grace_period(
    mlflow_server, client, experiment
):
    exp_id, name = experiment
    now = datetime.now(UTC)
    run_id = make_run(client, exp_id, status="FAILED", ended_hours_ago=100, now=now)
    _sweep(mlflow_server.uri, name, now)
    assert _deleted(client, run_id)

    client.restore_run(run_id)  # the owner wants it back, without `mlgov restore`
    assert T.DELETED_AT in client.get_run(run_id).data.tags

    later = _sweep(mlflow_server.uri, name, now + timedelta(hours=1))
    assert not _deleted(client, run_id)
    (record,) = [r for r in later.records if r.run_id == run_id]
    assert record.outcome == "skipped"
    assert "restored by someone" in record.reason

    # One grace period after the deletion mark, the run is a candidate again.
    much_later = _sweep(mlflow_server.uri, name, now + timedelta(hours=73))
    assert _deleted(client, run_id)
    (record,) = [r for r in much_later.records if r.run_id == run_id]
    assert (record.action, record.outcome) == ("delete-run", "applied")
