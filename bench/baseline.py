"""The benchmark's baseline: the script a user writes instead of mlgov, from the MLflow docs.

    MLFLOW_TRACKING_URI=http://... python bench/baseline.py cleanup|full

`mlflow.search_runs` per experiment into pandas, filter, then one call per change: the
cleanup of failed runs, and for `full` the same end state as mlgov's full governance
(required tags with a default, compliance marks, the best compliant run per experiment
registered and given the alias). Deliberately plain: no batching, no concurrency.
"""

import sys
import time
from datetime import datetime, timezone

import mlflow
from mlflow import MlflowClient

full = sys.argv[1:] == ["full"]
client = MlflowClient()
now = time.time()
grace = int((now - 72 * 3600) * 1000)
window = int((now - 24 * 3600) * 1000)
stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017

for exp in mlflow.search_experiments():
    old = f"attributes.status = 'FAILED' and attributes.end_time < {grace}"
    for run_id in mlflow.search_runs([exp.experiment_id], filter_string=old).get("run_id", []):
        client.set_tag(run_id, "governance.deleted_reason", "FAILED run past the 72 h grace")
        client.set_tag(run_id, "governance.deleted_at", stamp)
        client.delete_run(run_id)
    if not full:
        continue
    best = None
    recent = mlflow.search_runs(
        [exp.experiment_id], filter_string=f"attributes.end_time >= {window}"
    )
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
