"""The benchmark's floor: exactly the mutations mlgov's report says it applied, and nothing else.

    MLFLOW_TRACKING_URI=http://... python bench/floor.py REPORT.json [--concurrency N]

Each applied decision of a `mlgov sweep --json` report becomes the fewest REST calls that
make the same change (a deletion: one `log-batch` with its tags, one `delete`; tags: one
`log-batch`, plus one `delete-tag` per removed key; a promotion: create the registered
model, the version with its tags, the alias, the run's tag). No reads at all. The calls of
one decision go in order; decisions run `--concurrency` at a time, one kind after the other
(deletions, then tags, then promotions), as mlgov's phases do.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Call = tuple[str, dict[str, Any]]
_local = threading.local()


def _post(base: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = http.client.HTTPConnection(base.hostname, base.port, timeout=120)
    data = json.dumps(body).encode()
    conn.request(
        "POST", f"/api/2.0/mlflow/{path}", body=data, headers={"Content-Type": "application/json"}
    )
    answer = conn.getresponse()
    text = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"{path} {body}: HTTP {answer.status} {text[:300]!r}")
    return json.loads(text or b"{}")  # type: ignore[no-any-return]


def _tags(details: dict[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix) :]: v for k, v in details.items() if k.startswith(prefix)}


def plan(report: dict[str, Any]) -> list[list[Callable[[Any], None]]]:
    """The report's applied decisions as phases of independent tasks."""
    deletions: list[Callable[[Any], None]] = []
    tagging: list[Callable[[Any], None]] = []
    promotions: list[Callable[[Any], None]] = []
    for record in report["decisions"]:
        if record["outcome"] != "applied":
            continue
        run_id, details, action = record["run_id"], record["details"], record["action"]
        if action == "delete-run":
            deletions.append(_delete(run_id, _tags(details, "set:")))
        elif action == "set-run-tags":
            tagging.append(
                _set_tags(run_id, _tags(details, "set:"), list(_tags(details, "delete:")))
            )
        elif action == "register-model-version":
            promotions.append(_promote(run_id, details))
    return [phase for phase in (deletions, tagging, promotions) if phase]


def _batch(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _delete(run_id: str, tags: dict[str, str]) -> Callable[[Any], None]:
    def task(base: Any) -> None:
        if tags:
            _post(base, "runs/log-batch", {"run_id": run_id, "tags": _batch(tags)})
        _post(base, "runs/delete", {"run_id": run_id})

    return task


def _set_tags(run_id: str, tags: dict[str, str], delete: list[str]) -> Callable[[Any], None]:
    def task(base: Any) -> None:
        if tags:
            _post(base, "runs/log-batch", {"run_id": run_id, "tags": _batch(tags)})
        for key in delete:
            _post(base, "runs/delete-tag", {"run_id": run_id, "key": key})

    return task


def _promote(run_id: str, details: dict[str, str]) -> Callable[[Any], None]:
    name, source = details["model_name"], details["source"]
    version_tags = {
        "governance.source_run_id": run_id,
        "governance.metric": details["metric"],
        "governance.metric_value": details["value"],
    }

    def task(base: Any) -> None:
        _post(base, "registered-models/create", {"name": name})
        body: dict[str, Any] = {
            "name": name,
            "source": source,
            "run_id": run_id,
            "tags": _batch(version_tags),
        }
        if source.startswith("models:/"):
            body["model_id"] = source.removeprefix("models:/")
        version = _post(base, "model-versions/create", body)["model_version"]["version"]
        _post(
            base,
            "registered-models/alias",
            {"name": name, "alias": details["alias"], "version": version},
        )
        _post(
            base,
            "runs/set-tag",
            {"run_id": run_id, "key": "governance.promoted_to", "value": f"{name}:{version}"},
        )

    return task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    phases = plan(json.loads(Path(args.report).read_text(encoding="utf-8")))
    base = urlsplit(os.environ["MLFLOW_TRACKING_URI"])
    with ThreadPoolExecutor(max_workers=max(1, args.concurrency)) as pool:
        for phase in phases:
            for future in [pool.submit(task, base) for task in phase]:
                future.result()  # the first failure stops the floor: its numbers would lie
    print(json.dumps({"tasks": sum(len(p) for p in phases)}), file=sys.stderr)


if __name__ == "__main__":
    main()
