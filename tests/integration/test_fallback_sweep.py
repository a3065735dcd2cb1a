"""A full-governance sweep against the real `mlflow server` behind the benchmark's counting
proxy (`bench/proxy.py`), which answers any `runs/search` whose filter names
`attributes.status` or `attributes.end_time` with `400 INVALID_PARAMETER_VALUE`, as Azure ML
may: the sweep walks the runs once (one unfiltered walk feeds both the cleanup scan and the
catch-up) and ends exactly as behind the same proxy refusing nothing."""

from __future__ import annotations

import io
import json
import math
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from bench.proxy import Counters, make_handler
from shared import tags as T
from shared.tracking.mlflow_gateway import MlflowGateway
from shared.usecases.sweep import sweep
from tests.support import make_run, settings

REFUSED = ("attributes.status", "attributes.end_time")
# Small pages: the two experiments' 24 runs take several.
PAGE = 4
SEARCH = "POST /api/2.0/mlflow/runs/search"


class Proxy:
    """bench/proxy.py's handler on a free loopback port; keeps every `runs/search` body."""

    def __init__(self, upstream: str, refused: tuple[str, ...] = ()) -> None:
        self.counters = Counters()
        self.searches: list[dict[str, Any]] = []
        searches = self.searches

        class Recording(make_handler(upstream, self.counters, refused)):  # type: ignore[misc]
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.split("?")[0].endswith("/runs/search"):
                    searches.append(json.loads(body or b"{}"))
                # The handler reads the body itself: hand it back, then the connection.
                wire, self.rfile = self.rfile, io.BytesIO(body)
                try:
                    super()._forward()
                finally:
                    self.rfile = wire

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
        self._server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def requests(self, endpoint: str) -> int:
        found = self.counters.snapshot()["endpoints"].get(endpoint)
        return 0 if found is None else int(found["requests"])

    @property
    def unfiltered_pages(self) -> int:
        """Search pages sent with no filter at all: each reads the next page of every run."""
        return sum(1 for s in self.searches if not s.get("filter"))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxies(mlflow_server) -> Iterator[tuple[Proxy, Proxy]]:
    accepting, refusing = Proxy(mlflow_server.uri), Proxy(mlflow_server.uri, REFUSED)
    yield accepting, refusing
    accepting.close()
    refusing.close()


OWNER = {"owner": "team"}
# (name, ended hours ago, make_run arguments) of each experiment's runs.
RUNS: list[tuple[str, float | None, dict[str, Any]]] = [
    *((f"old-failed-{i}", 100 + i, {"status": "FAILED"}) for i in range(3)),
    ("kept", 110, {"status": "FAILED", "tags": {"governance.keep": "true"}}),
    # A candidate (grace 1 h) that ended within the catch-up window: deleted, not caught up.
    ("recent-failed", 2, {"status": "FAILED"}),
    ("good-0", 3, {"tags": OWNER, "metrics": {"auc": 0.91}, "model": True}),
    ("good-1", 4, {"tags": OWNER, "metrics": {"auc": 0.95}, "model": True}),
    ("no-owner", 6, {"metrics": {"auc": 0.99}, "model": True}),
    ("killed", 7, {"status": "KILLED", "tags": OWNER}),
    *((f"history-{i}", 50 + i, {"tags": OWNER}) for i in range(2)),
    ("running", None, {"status": "RUNNING"}),
]


def seed(client: Any, prefix: str, now: datetime) -> int:
    """Two experiments of candidates, recent runs to govern and promote, and history; the
    same runs, at the same times, under any prefix. Returns how many runs were made."""
    for offset, suffix in ((0.0, "a"), (0.1, "b")):  # distinct times: one order everywhere
        eid = client.create_experiment(f"{prefix}-{suffix}")
        for name, hours, kw in RUNS:
            ago = None if hours is None else hours + offset
            make_run(client, eid, name=f"{suffix}-{name}", ended_hours_ago=ago, now=now, **kw)
    return 2 * len(RUNS)


def swept(proxy: Proxy, prefix: str, now: datetime):
    env = {
        "experiments": f"{prefix}-*",
        "cleanup_statuses": "FAILED",
        "cleanup_after_hours": "1",
        "cleanup_max_runs": "100",
        "catchup_hours": "24",
        "required_tags": "owner",
        "promotion_metric": "auc",
        "promotion_threshold": "0.8",
    }
    gateway = MlflowGateway(proxy.uri, page_size=PAGE)
    return sweep(gateway, settings(proxy.uri, **env), now)


def end_state(client: Any, prefix: str) -> dict[str, object]:
    """Runs (deleted or not) with their tags, and each model's versions and champion, by name."""
    from mlflow.entities import ViewType

    runs: dict[str, object] = {}
    models: dict[str, object] = {}
    for suffix in ("a", "b"):
        experiment = client.get_experiment_by_name(f"{prefix}-{suffix}")
        for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL):
            tags = {
                k: v.replace(prefix, "<prefix>")  # `promoted_to` names the model
                for k, v in run.data.tags.items()
                if not k.startswith(T.DELETION_CLAIM) and k != T.DELETED_AT
            }
            runs[run.info.run_name] = (run.info.lifecycle_stage, tags)
        versions = client.search_model_versions(f"name = '{experiment.name}'")
        names = {
            run.info.run_id: run.info.run_name
            for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
        }
        champion = client.get_model_version_by_alias(experiment.name, "champion")
        models[suffix] = (len(versions), names[champion.run_id])
    return {"runs": runs, "models": models}


def decisions(report, prefix: str) -> list[tuple[str, str, str, str, str]]:
    return [
        (r.policy, r.action, r.outcome, r.experiment.replace(prefix, ""), r.run_name)
        for r in report.records
    ]


def test_a_refusing_server_is_walked_once_and_ends_as_an_accepting_one(client, proxies) -> None:
    accepting, refusing = proxies
    now = datetime.now(UTC)
    plain, azure_like = f"ok-{uuid.uuid4().hex[:8]}", f"az-{uuid.uuid4().hex[:8]}"
    runs = seed(client, plain, now)
    assert seed(client, azure_like, now) == runs

    filtered = swept(accepting, plain, now)
    fallback = swept(refusing, azure_like, now)

    counts = {
        "accepting": accepting.counters.snapshot()["endpoints"],
        "refusing": refusing.counters.snapshot()["endpoints"],
    }
    assert refusing.requests(f"{SEARCH} (refused)") == 1, counts
    # Every run once, for both phases: the pages of one walk (MLflow reads a row beyond the
    # page to know whether another follows, `compute_next_token` in
    # mlflow/store/tracking/sqlalchemy_store.py: n runs take ceil(n / PAGE) pages).
    assert refusing.unfiltered_pages == math.ceil(runs / PAGE), counts
    assert accepting.unfiltered_pages == 0, counts
    # Nothing else costs more: the runs the catch-up took from the walk come with what the
    # walk read of them (a promotion finds its model without reading the run again).
    others = {
        side: {k: v["requests"] for k, v in c.items() if "runs/search" not in k}
        for side, c in counts.items()
    }
    assert others["refusing"] == others["accepting"]
    # The same decisions, in the same order, and the same runs, tags and models after.
    assert decisions(fallback, azure_like) == decisions(filtered, plain)
    assert not any(r.outcome == "failed" for r in fallback.records)
    assert end_state(client, azure_like) == end_state(client, plain)
    done = {(r.action, r.outcome) for r in fallback.records}
    assert {("delete-run", "applied"), ("set-run-tags", "applied")} <= done
    assert ("register-model-version", "applied") in done
