"""Seeds a benchmark workspace: 100 experiments and N runs in MLflow's own SQL schema.

The schema, the experiments and the few LoggedModels go through MLflow's `SqlAlchemyStore`
in-process; the runs, params, metrics and tags are bulk-inserted into its tables (one REST
call per run would take hours at 100,000 runs). Ages leave wide gaps around the 24 h catch-up
window and the 72 h grace period, so a benchmark that takes hours sees the same candidates.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPERIMENTS = 100
# Policy the seed is built for (the scenarios in run.py use the same values).
REQUIRED_TAGS = ("owner", "project")
DEFAULT_FILLED = "project"  # GOVERNANCE_TAG_DEFAULTS fills it with {experiment_name}
METRIC = "auc"
THRESHOLD = 0.95
ARTIFACT_PATH = "model"
# Runs above the threshold, all in the catch-up window: (experiment index, auc, owner present).
# Two per experiment so the sweep must pick the best; one noncompliant that must not win.
PROMOTABLE = (
    (0, 0.971, True),
    (0, 0.983, True),
    (1, 0.962, True),
    (1, 0.990, False),  # best metric, but no owner: noncompliant, never promoted
    (2, 0.958, True),
    (3, 0.977, True),
    (3, 0.969, True),
)
HOUR_MS = 3_600_000
BATCH = 5_000
MLMODEL = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: bench\n"


@dataclass
class Seeded:
    """What was seeded, for the report and for checks."""

    runs: int
    failed_old: int = 0
    in_window: int = 0
    missing_owner: int = 0
    missing_project: int = 0
    promotable: int = 0
    seconds: float = 0.0
    experiment_names: list[str] = field(default_factory=list)


def _run_rows(
    n: int, experiment_ids: list[int], now_ms: int, rng: random.Random
) -> Iterator[
    tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], str]
]:
    """(run, tags, params, metrics, kind) for every ordinary run, kind in failed/window/history."""
    failed_every = 100  # 1 %
    for index in range(n - len(PROMOTABLE)):
        run_id = uuid.uuid4().hex
        exp_index = index % EXPERIMENTS
        experiment_id = experiment_ids[exp_index]
        if index % failed_every == 7:
            kind, status = "failed", "FAILED"
            age_h = rng.uniform(120, 60 * 24)  # well past the 72 h grace period
        elif rng.random() < 0.017:
            kind, status = "window", "FINISHED"
            age_h = rng.uniform(0.5, 20)  # well inside the 24 h catch-up window
        else:
            kind, status = "history", "FINISHED"
            age_h = rng.uniform(30, 60 * 24)
        end = now_ms - int(age_h * HOUR_MS)
        yield _one_run(
            run_id, experiment_id, exp_index, index, status, end, rng.uniform(0.6, 0.9), rng, kind
        )


def _one_run(
    run_id: str,
    experiment_id: int,
    exp_index: int,
    index: int,
    status: str,
    end: int,
    auc: float,
    rng: random.Random,
    kind: str,
    owner: bool | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], str]:
    start = end - int(rng.uniform(0.1, 1.0) * HOUR_MS)
    name = f"run-{index}"
    user = f"user{index % 17}"
    run = {
        "run_uuid": run_id,
        "name": name,
        "source_type": "LOCAL",
        "source_name": "train.py",
        "entry_point_name": "",
        "user_id": user,
        "status": status,
        "start_time": start,
        "end_time": end,
        "source_version": "",
        "lifecycle_stage": "active",
        "artifact_uri": f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
        "experiment_id": experiment_id,
    }
    tags = {
        "mlflow.runName": name,
        "mlflow.user": user,
        "mlflow.source.name": "train.py",
        "mlflow.source.type": "LOCAL",
        "owner": f"team-{index % 5}",
        "project": f"bench-{exp_index:03d}",
    }
    missing = index % 40  # 5 %: half without owner, half without project
    if owner is False or (owner is None and missing == 3):
        del tags["owner"]
    elif owner is None and missing == 5:
        del tags["project"]
    params = {
        "learning_rate": f"{rng.choice([0.01, 0.03, 0.1, 0.3])}",
        "max_depth": str(rng.randint(2, 12)),
        "n_estimators": str(rng.choice([50, 100, 200, 400])),
        "model_type": rng.choice(["logreg", "random_forest", "gbm"]),
        "seed": str(index),
    }
    metrics = {"auc": auc, "accuracy": rng.uniform(0.6, 0.95), "log_loss": rng.uniform(0.1, 0.7)}
    tag_rows = [{"key": k, "value": v, "run_uuid": run_id} for k, v in tags.items()]
    param_rows = [{"key": k, "value": v, "run_uuid": run_id} for k, v in params.items()]
    metric_rows = [
        {"key": k, "value": v, "timestamp": end, "step": 0, "is_nan": False, "run_uuid": run_id}
        for k, v in metrics.items()
    ]
    return run, tag_rows, param_rows, metric_rows, kind


def seed(db_uri: str, artifacts: Path, n: int, *, now_ms: int | None = None) -> Seeded:
    """Seed `db_uri` (an empty SQLite file or PostgreSQL database) with N runs."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    started = time.perf_counter()
    now_ms = now_ms or int(time.time() * 1000)
    rng = random.Random(n)  # the same workspace for the same N
    store = SqlAlchemyStore(db_uri, "mlflow-artifacts:/")
    names = [f"bench-{i:03d}" for i in range(EXPERIMENTS)]
    experiment_ids = [int(store.create_experiment(name)) for name in names]
    info = Seeded(runs=n, experiment_names=names)

    rows: dict[str, list[dict[str, Any]]] = {"runs": [], "tags": [], "params": [], "metrics": []}
    tables = {
        "runs": [SqlRun.__table__],
        "tags": [SqlTag.__table__],
        "params": [SqlParam.__table__],
        "metrics": [SqlMetric.__table__, SqlLatestMetric.__table__],
    }

    def flush(connection: Any) -> None:
        for key in ("runs", "tags", "params", "metrics"):  # runs first: foreign keys
            if rows[key]:
                for table in tables[key]:
                    connection.execute(table.insert(), rows[key])
                rows[key] = []

    promotable_ids: list[tuple[str, int]] = []
    with store.engine.begin() as connection:
        ordinary = _run_rows(n, experiment_ids, now_ms, rng)
        extra = []
        for offset, (exp_index, auc, owner) in enumerate(PROMOTABLE):
            run_id = uuid.uuid4().hex
            end = now_ms - int((2 + offset) * HOUR_MS)
            index = n - len(PROMOTABLE) + offset
            extra.append(
                _one_run(
                    run_id,
                    experiment_ids[exp_index],
                    exp_index,
                    index,
                    "FINISHED",
                    end,
                    auc,
                    rng,
                    "promotable",
                    owner,
                )
            )
            promotable_ids.append((run_id, experiment_ids[exp_index]))
        for run, tag_rows, param_rows, metric_rows, kind in [*ordinary, *extra]:
            rows["runs"].append(run)
            rows["tags"] += tag_rows
            rows["params"] += param_rows
            rows["metrics"] += metric_rows
            keys = {t["key"] for t in tag_rows}
            info.failed_old += kind == "failed"
            if kind in ("window", "promotable"):
                info.in_window += 1
                info.missing_owner += "owner" not in keys
                info.missing_project += "project" not in keys
            info.promotable += kind == "promotable"
            if len(rows["runs"]) >= BATCH:
                flush(connection)
        flush(connection)

    # MLflow 3 logs a model as a LoggedModel linked to its run: created through the store,
    # recorded among the run's outputs as `log_model` does (`client.log_outputs` in
    # mlflow/models/model.py), its MLmodel written where the server's artifact proxy will
    # look for it.
    from mlflow.entities import LoggedModelOutput
    from mlflow.entities.logged_model_status import LoggedModelStatus

    for run_id, experiment_id in promotable_ids:
        model = store.create_logged_model(
            experiment_id=str(experiment_id), name=ARTIFACT_PATH, source_run_id=run_id
        )
        store.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        store.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        location = model.artifact_location.removeprefix("mlflow-artifacts:/")
        folder = artifacts / location
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "MLmodel").write_text(MLMODEL, encoding="utf-8")
    store.engine.dispose()
    info.seconds = time.perf_counter() - started
    return info
