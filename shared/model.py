"""Domain values: small frozen snapshots of MLflow entities, independent of MLflow's classes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

# MLflow run statuses (upper case); Azure ML spells them differently, so compare via normalise().
TERMINAL_STATUSES = frozenset({"FINISHED", "FAILED", "KILLED"})
SUCCESS_STATUS = "FINISHED"

_STATUS_ALIASES = {
    "COMPLETED": "FINISHED",
    "CANCELED": "KILLED",
    "CANCELLED": "KILLED",
}


def normalise_status(status: str) -> str:
    """MLflow's upper-case status for any spelling (``Failed``, ``failed``, ``Canceled``...)."""
    upper = status.strip().upper()
    return _STATUS_ALIASES.get(upper, upper)


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Run:
    """A run as the policies see it; times are timezone-aware UTC."""

    run_id: str
    experiment_id: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    deleted: bool = False

    @property
    def run_name(self) -> str:
        return self.tags.get("mlflow.runName", self.run_id)

    @property
    def user(self) -> str:
        return self.tags.get("mlflow.user", "")

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get("mlflow.parentRunId")

    @property
    def is_terminal(self) -> bool:
        return normalise_status(self.status) in TERMINAL_STATUSES

    @property
    def finished_at(self) -> datetime | None:
        """When the run ended; its start when the server recorded no end."""
        return self.end_time or self.start_time


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
