"""The benchmark's baseline: the script a user writes instead of mlgov, from the MLflow docs.

    MLFLOW_TRACKING_URI=http://... python bench/baseline.py cleanup|full

`mlflow.search_runs` per experiment into pandas, filter, then one call per change: the
cleanup of failed runs, and for `full` the same end state as mlgov's full governance
(required tags with a default, compliance marks, the best compliant run per experiment
registered and given the alias). Deliberately plain: no batching, no concurrency.

With BENCH_BASELINE_CLIENT_FILTERS=1 (the harness sets it when its proxy refuses status and
time filters, as Azure ML may) the script searches without a filter and filters in pandas,
as a user of such a server has to.
"""

import os
import sys
import time
from datetime import datetime, timezone

import mlflow
import pandas as pd
from mlflow import MlflowClient

full = sys.argv[1:] == ["full"]
client = MlflowClient()
now = time.time()
grace = int((now - 72 * 3600) * 1000)
window = int((now - 24 * 3600) * 1000)
stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017
client_filters = os.environ.get("BENCH_BASELINE_CLIENT_FILTERS") == "1"
_all_runs: dict[str, pd.DataFrame] = {}


def all_runs(experiment_id: str) -> pd.DataFrame:
    """Every active run of the experiment, read once, with its end in epoch ms."""
    if experiment_id not in _all_runs:
        runs = mlflow.search_runs([experiment_id])
        if not runs.empty:
            runs["end_ms"] = [t.value // 10**6 if t == t else None for t in runs["end_time"]]
        _all_runs[experiment_id] = runs
    return _all_runs[experiment_id]


def old_failed(experiment_id: str) -> list[str]:
    """Ids of the FAILED runs that ended before the grace period."""
    if not client_filters:
        old = f"attributes.status = 'FAILED' and attributes.end_time < {grace}"
        return list(mlflow.search_runs([experiment_id], filter_string=old).get("run_id", []))
    runs = all_runs(experiment_id)
    if runs.empty:
        return []
    keep = (runs["status"] == "FAILED") & runs["end_ms"].notna() & (runs["end_ms"] < grace)
    return list(runs.loc[keep, "run_id"])


def recent_runs(experiment_id: str) -> pd.DataFrame:
    """The runs that ended inside the catch-up window."""
    if not client_filters:
        return mlflow.search_runs([experiment_id], filter_string=f"attributes.end_time >= {window}")
    runs = all_runs(experiment_id)
    if runs.empty:
        return runs
    return runs[runs["end_ms"].notna() & (runs["end_ms"] >= window)]


for exp in mlflow.search_experiments():
    for run_id in old_failed(exp.experiment_id):
        client.set_tag(run_id, "governance.deleted_reason", "FAILED run past the 72 h grace")
        client.set_tag(run_id, "governance.deleted_at", stamp)
        client.delete_run(run_id)
    if not full:
        continue
    best = None
    recent = recent_runs(exp.experiment_id)
    for _, run in recent.iterrows():
        if run.status not in ("FINISHED", "FAILED", "KILLED"):
            continue
        present = {
            k[5:]
            for k, v in run.items()
            if k.startswith("tags.") and isinstance(v, str) and v.strip()
        }
        if "project" not in present:
            client.set_tag(run.run_id, "project", exp.name)
            present.add("project")
        missing = [k for k in ("owner", "project") if k not in present]
        client.set_tag(
            run.run_id, "governance.compliance", "noncompliant" if missing else "compliant"
        )
        if missing:
            client.set_tag(run.run_id, "governance.missing_tags", ",".join(missing))
        auc = float(run.get("metrics.auc", float("nan")))
        if (
            not missing
            and run.status == "FINISHED"
            and auc >= 0.95
            and (best is None or auc > best[1])
        ):
            best = (run.run_id, auc)
    if best is not None:
        run_id, auc = best
        tags = {
            "governance.source_run_id": run_id,
            "governance.metric": "auc",
            "governance.metric_value": repr(auc),
        }
        version = mlflow.register_model(f"runs:/{run_id}/model", exp.name, tags=tags).version
        client.set_registered_model_alias(exp.name, "champion", version)
        client.set_tag(run_id, "governance.promoted_to", f"{exp.name}:{version}")
