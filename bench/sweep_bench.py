"""Sweep time and peak memory (tracemalloc) over N runs in an embedded SQLite store.

    .venv/bin/python bench/sweep_bench.py              # N = 2,000 and 10,000
    .venv/bin/python bench/sweep_bench.py 500 5000     # other sizes

Runs are bulk-inserted into MLflow's own tables (the client would take minutes to create
10,000), then read back only through the project's gateway. Each sweep runs twice on
copies of the same store: once timed, once under tracemalloc (which slows it down).
Results: bench/RESULTS.md.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from shared.engine.report import Report
from shared.settings import load_settings
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.sweep import sweep

NOW = datetime.now(UTC).replace(microsecond=0)
EXPERIMENTS = 4


@dataclass(frozen=True)
class Mix:
    """How many runs of each kind one scenario seeds, given N."""

    history: int  # FINISHED long ago: outside every window
    failed_old: int  # cleanup candidates
    recent: int  # FINISHED within the catch-up window
    server_filters: bool = True


SCENARIOS: dict[str, Callable[[int], Mix]] = {
    # A workspace with a long history: a fixed amount of work whatever N is.
    "history": lambda n: Mix(history=n - 150, failed_old=50, recent=100),
    # A filter gone wrong: every run is a candidate, the guard trips after counting all N.
    "guard": lambda n: Mix(history=0, failed_old=n, recent=0),
    # A server that refuses status and time filters (tag filters still work): the client
    # walks and checks all N runs, once for cleanup and once for the catch-up.
    "no-status-time-filters": lambda n: Mix(
        history=n - 150, failed_old=50, recent=100, server_filters=False
    ),
}

ENV = {
    "GOVERNANCE_CLEANUP_STATUSES": "FAILED",
    "GOVERNANCE_CLEANUP_AFTER_HOURS": "72",
    "GOVERNANCE_CLEANUP_MAX_RUNS": "100",
    "GOVERNANCE_CATCHUP_HOURS": "24",
    "GOVERNANCE_REQUIRED_TAGS": "owner",
    "GOVERNANCE_TAG_DEFAULTS": '{"owner": "{user}"}',
}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def seed(db: Path, mix: Mix) -> None:
    """Create the schema through MLflow, then insert the runs directly."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    experiment_ids = [client.create_experiment(f"bench-{i}") for i in range(EXPERIMENTS)]
    kinds = (
        [("FINISHED", 500.0)] * mix.history
        + [("FAILED", 100.0)] * mix.failed_old
        + [("FINISHED", 2.0)] * mix.recent
    )
    runs, tags = [], []
    for index, (status, hours_ago) in enumerate(kinds):
        run_id = uuid.uuid4().hex
        end = NOW - timedelta(hours=hours_ago + (index % 7) / 10)
        start = end - timedelta(minutes=30)
        experiment_id = int(experiment_ids[index % EXPERIMENTS])
        artifacts = (db.parent / "artifacts" / run_id).as_uri()
        row = (run_id, f"run-{index}", "UNKNOWN", "", "", "bench", status)
        runs.append((*row, _ms(start), _ms(end), "", "active", artifacts, experiment_id))
        tags += [("mlflow.runName", f"run-{index}", run_id), ("mlflow.user", "bench", run_id)]
    with sqlite3.connect(db) as connection:
        connection.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
        connection.executemany('INSERT INTO tags ("key", value, run_uuid) VALUES (?, ?, ?)', tags)


def one_sweep(db: Path, mix: Mix, traced: bool) -> tuple[float, int, Report]:
    uri = f"sqlite:///{db}"
    settings = load_settings({"MLFLOW_TRACKING_URI": uri, **ENV})
    gateway = MlflowGateway(uri)
    gateway.server_filters = mix.server_filters
    # Warm up: MLflow imports and connects lazily; that is not the sweep's memory.
    list(gateway.iter_experiments())
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    report = sweep(gateway, settings, NOW)
    elapsed = time.perf_counter() - started
    peak = 0
    if traced:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return elapsed, peak, report


def bench(name: str, n: int, folder: Path) -> str:
    mix = SCENARIOS[name](n)
    seeded = folder / f"{name}-{n}.db"
    seed(seeded, mix)
    # Distinct names: MLflow caches one SQLAlchemy engine per store URI for the process.
    timed_db, traced_db = folder / f"{name}-{n}-timed.db", folder / f"{name}-{n}-traced.db"
    shutil.copy(seeded, timed_db)
    shutil.copy(seeded, traced_db)
    elapsed, _, report = one_sweep(timed_db, mix, traced=False)
    _, peak, _ = one_sweep(traced_db, mix, traced=True)
    counts = report.counts()
    deleted = sum(int(str(row["deleted"])) for row in report.extra["experiments"])  # type: ignore[union-attr]
    guard = any(r.action == "notify" for r in report.records)
    for path in (seeded, timed_db, traced_db):
        path.unlink()
    return (
        f"| {name} | {n:,} | {elapsed:.1f} | {peak / 2**20:.1f} | {len(report.records)} | "
        f"{deleted} | {'tripped' if guard else 'no'} | {counts['failed']} |"
    )


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [2_000, 10_000]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, embedded SQLite store")
    print("| scenario | runs | sweep s | peak MiB | decisions | deleted | guard | failed |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in SCENARIOS:
            for n in sizes:
                print(bench(name, n, Path(tmp)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
