"""The client's own CPU per tracking request: `log-batch` of one tag, 300 runs, three ways.

    .venv/bin/python bench/client_cpu.py            # prints one line per way (best of 3)

- `http.client`: what the floor sends (a new connection a request, JSON by hand);
- `MlflowClient`, with mlgov's bounded adapter under MLflow's session
  (`shared.http_deadline.install_into_mlflow`), MLflow's request headers as MLflow resolves
  them (its Databricks provider probing for Databricks on every request);
- the same, with that provider asked once (`shared.tracking.request_headers`), as mlgov runs.

A real `mlflow server` (SQLite, 1 worker) on loopback, no added latency; CPU time is this
process's (`time.process_time`), so the server's share is not in it.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # shared/, as the bench's tree
import stores

RUNS = 300


def best_cpu_ms(fn: Callable[[str], None], runs: list[str]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for run_id in runs:
            fn(run_id)
        best = min(best, (time.process_time() - started) / len(runs) * 1000)
    return best


def main() -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    from shared.http_deadline import install_into_mlflow
    from shared.tracking.request_headers import settle_databricks_headers

    with tempfile.TemporaryDirectory(prefix="mlgov-cpu-") as tmp:
        work = Path(tmp)
        store = f"sqlite:///{work / 'mlflow.db'}"
        with stores.mlflow_server(store, work / "artifacts", work / "server.log", 1) as url:
            client = MlflowClient(url)
            experiment = client.create_experiment("client-cpu")
            runs = [client.create_run(experiment).info.run_id for _ in range(RUNS)]
            host = url.split("//", 1)[1]

            def raw(run_id: str) -> None:
                connection = http.client.HTTPConnection(host)
                body = json.dumps({"run_id": run_id, "tags": [{"key": "a", "value": "b"}]})
                headers = {"Content-Type": "application/json"}
                connection.request("POST", "/api/2.0/mlflow/runs/log-batch", body, headers)
                connection.getresponse().read()
                connection.close()

            def through_mlflow(run_id: str) -> None:
                client.log_batch(run_id, tags=[RunTag("a", "b")])

            install_into_mlflow()
            measured = {"http.client": best_cpu_ms(raw, runs)}
            measured["MlflowClient"] = best_cpu_ms(through_mlflow, runs)
            settle_databricks_headers()
            measured["MlflowClient, settled"] = best_cpu_ms(through_mlflow, runs)
            for way, ms in measured.items():
                print(f"{way:<22} {ms:.2f} ms CPU a request")


if __name__ == "__main__":
    main()
