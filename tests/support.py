"""Helpers for tests: runs created through the real MLflow client, settings from a dict."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.settings import Settings, load_settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

MLMODEL = """artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.pyfunc.model
    python_version: 3.11.7
mlflow_version: 3.15.0
"""


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def settings(uri: str | None = None, **env: str) -> Settings:
    """Settings from exactly these values (the process environment is not read)."""
    values = {f"GOVERNANCE_{k.upper()}": v for k, v in env.items()}
    if uri is not None:
        values["MLFLOW_TRACKING_URI"] = uri
    return load_settings(values)


def make_run(
    client: Any,
    experiment_id: str,
    *,
    status: str = "FINISHED",
    tags: Mapping[str, str] | None = None,
    metrics: Mapping[str, float] | None = None,
    ended_hours_ago: float | None = 1.0,
    duration_hours: float = 0.5,
    model: bool = False,
    now: datetime | None = None,
    name: str | None = None,
) -> str:
    """Create a run with the given end state; `model=True` logs an MLmodel folder at `model/`."""
    now = now or datetime.now(UTC)
    end = now - timedelta(hours=ended_hours_ago) if ended_hours_ago is not None else None
    start = (end or now) - timedelta(hours=duration_hours)
    all_tags = {"mlflow.user": "tester", **(tags or {})}
    run = client.create_run(experiment_id, start_time=ms(start), tags=all_tags, run_name=name)
    run_id: str = run.info.run_id
    for key, value in (metrics or {}).items():
        client.log_metric(run_id, key, value)
    if model:
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "MLmodel").write_text(MLMODEL, encoding="utf-8")
            client.log_artifacts(run_id, folder, "model")
    if status != "RUNNING":
        client.set_terminated(run_id, status, end_time=ms(end) if end else None)
    return run_id


class GoesAway:
    """Mixed into an in-memory gateway (first base): deletes `left` runs, then the server is
    gone for every deletion and read after (`TrackingUnavailable`)."""

    left: int
    down: bool = False

    def delete_run(self, run_id: str) -> None:
        from shared.errors import TrackingUnavailable

        if self.left == 0:
            self.down = True
        if self.down:
            raise TrackingUnavailable("tracking server unavailable during delete_run")
        self.left -= 1
        super().delete_run(run_id)  # type: ignore[misc]

    def get_run(self, run_id: str) -> Any:
        from shared.errors import TrackingUnavailable

        if self.down:
            raise TrackingUnavailable("tracking server unavailable during get_run")
        return super().get_run(run_id)  # type: ignore[misc]
