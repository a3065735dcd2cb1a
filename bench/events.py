"""The event path: `on_run_event` warm in one process, `mlgov handle-event` in a fresh one,
cold start (what `import function_app` costs beyond `azure.functions`, lazy and eager), and
the installed size of the deployed requirements.

    python bench/events.py drive EVENTS.json PROXY_URL [--eager MODULES.json]

is the driver a fresh interpreter runs (from the tree under test): it imports the app as the
Functions host does, calls the indexed `on_run_event` with `azure.functions.EventGridEvent`s
and prints timings and the proxy's request counts per event as JSON.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before every other import: the cold start begins here

import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

KINDS = ("noop", "tagging", "promotion")
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/bench/providers/"
    "Microsoft.MachineLearningServices/workspaces/bench"
)


def event(run_id: str, experiment_id: str, experiment_name: str) -> dict[str, Any]:
    """An Azure ML `RunCompleted` in the Event Grid schema (as tests/data holds one)."""
    return {
        "id": str(uuid.uuid4()),
        "topic": TOPIC,
        "subject": f"experiments/{experiment_id}/runs/{run_id}",
        "eventType": "Microsoft.MachineLearningServices.RunCompleted",
        "eventTime": "2026-01-01T00:00:00Z",
        "data": {"experimentId": experiment_id, "experimentName": experiment_name, "runId": run_id},
        "dataVersion": "",
        "metadataVersion": "1",
    }


# -- the driver (runs in the fresh interpreter) --------------------------------------------


def _proxy(url: str, what: str) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(f"{url}/__proxy/{what}", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
        return json.loads(answer.read())  # type: ignore[no-any-return]


def drive(events_file: str, proxy: str, eager: str | None) -> None:
    before = set(sys.modules)
    import azure.functions as func

    after_azure = time.perf_counter()
    import function_app

    if eager:
        import importlib

        for name in json.loads(Path(eager).read_text()):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 (a module that only imports on demand)
                continue
    after_app = time.perf_counter()
    user = next(
        fn.get_user_function()
        for fn in function_app.app.get_functions()
        if fn.get_function_name() == "on_run_event"
    )
    loaded_at_import = set(sys.modules)
    results = []
    for kind, raw in json.loads(Path(events_file).read_text()):
        _proxy(proxy, "reset")
        started = time.perf_counter()
        grid = func.EventGridEvent(
            id=raw["id"], data=raw["data"], topic=raw["topic"], subject=raw["subject"],
            event_type=raw["eventType"], event_time=None, data_version=raw["dataVersion"],
        )  # fmt: skip
        user(grid)
        seconds = time.perf_counter() - started
        stats = _proxy(proxy, "stats")
        results.append(
            {
                "kind": kind,
                "seconds": seconds,
                "requests": stats["requests"],
                "endpoints": stats["endpoints"],
            }
        )
        if len(results) == 1:
            first_done = time.perf_counter()
    print(
        json.dumps(
            {
                "import_azure_functions": after_azure - _STARTED,
                "import_function_app": after_app - after_azure,
                "first_event_from_start": first_done - _STARTED,
                "events": results,
                "loaded_by_events": sorted(set(sys.modules) - loaded_at_import - before),
            }
        )
    )


# -- what run.py calls ----------------------------------------------------------------------


def pick_runs(store_uri: str) -> dict[str, list[tuple[str, str, str]]]:
    """(run id, experiment id, experiment name) per kind, from the seeded store.

    promotion: the promotable runs, in an order where each beats the champion of its model;
    tagging: finished runs outside the catch-up window, compliant but not yet marked.
    """
    import sqlalchemy

    q = sqlalchemy.text
    engine = sqlalchemy.create_engine(store_uri)
    with engine.connect() as c:
        promotable = c.execute(
            q(
                "SELECT r.run_uuid, r.experiment_id, e.name, m.value FROM runs r "
                "JOIN experiments e ON e.experiment_id = r.experiment_id "
                "JOIN latest_metrics m ON m.run_uuid = r.run_uuid AND m.key = 'auc' "
                "WHERE m.value >= 0.95 AND EXISTS "
                "(SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'owner') "
                "ORDER BY r.experiment_id, m.value"
            )
        ).fetchall()
        tagging = c.execute(
            q(
                "SELECT r.run_uuid, r.experiment_id, e.name FROM runs r "
                "JOIN experiments e ON e.experiment_id = r.experiment_id "
                "WHERE r.status = 'FINISHED' AND r.end_time < :old "
                "AND (SELECT COUNT(*) FROM tags t WHERE t.run_uuid = r.run_uuid "
                "AND t.key IN ('owner', 'project')) = 2 "
                "ORDER BY r.run_uuid LIMIT 12"
            ),
            {"old": int((time.time() - 48 * 3600) * 1000)},
        ).fetchall()
    engine.dispose()
    return {
        "promotion": [(r, str(e), n) for r, e, n, _ in promotable],
        "tagging": [(r, str(e), n) for r, e, n in tagging],
    }


def event_sequence(
    runs: dict[str, list[tuple[str, str, str]]], per_kind: int
) -> list[tuple[str, dict[str, Any]]]:
    """Interleaved kinds; a no-op is a run that a tagging event has just governed."""
    sequence: list[tuple[str, dict[str, Any]]] = []
    for index in range(per_kind):
        tagged = runs["tagging"][index]
        sequence.append(("tagging", event(*tagged)))
        sequence.append(("noop", event(*tagged)))
        if index < len(runs["promotion"]):
            sequence.append(("promotion", event(*runs["promotion"][index])))
    return sequence


def medians(results: list[dict[str, Any]], skip_first: bool) -> dict[str, dict[str, float]]:
    out = {}
    rows = results[1:] if skip_first else results
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            out[kind] = {
                "seconds": statistics.median(r["seconds"] for r in mine),
                "requests": statistics.median(r["requests"] for r in mine),
                "max_requests": max(r["requests"] for r in mine),
                "count": len(mine),
            }
    return out


def install_deployed(requirements: Path, python: str, target: Path) -> None:
    """`pip install --target` of the deployed requirements (what the Function App's package
    holds: `mlflow-skinny`, not the full `mlflow` of the development environment)."""
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],
        check=True,
        capture_output=True,
    )


def installed_size_mib(requirements: Path, python: str) -> float:
    """The deployed requirements installed into an empty folder, measured."""
    with tempfile.TemporaryDirectory() as target:
        install_deployed(requirements, python, Path(target))
        total = sum(
            p.stat().st_size for p in Path(target).rglob("*") if p.is_file() and not p.is_symlink()
        )
    return total / 2**20


if __name__ == "__main__":
    if sys.argv[1:2] != ["drive"]:
        raise SystemExit(__doc__)
    rest = sys.argv[2:]
    eager_file = rest[rest.index("--eager") + 1] if "--eager" in rest else None
    drive(rest[0], rest[1], eager_file)
