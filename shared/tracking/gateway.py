"""The tracking port: the few calls the policies and use cases make, whatever the server."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.model import Experiment, ModelVersion, Run


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs of one experiment to walk. Every field narrows; None means no limit.

    `statuses` are MLflow's upper-case statuses. `finished_before` compares with the run's
    end (its start when it has none); `finished_after` with its end only, so a run without
    one is never "finished after". Deleted runs are walked only with `deleted=True`.
    """

    experiment_id: str
    statuses: frozenset[str] | None = None
    finished_before: datetime | None = None
    finished_after: datetime | None = None
    tag_equals: Mapping[str, str] | None = None
    # Tags the run must carry, whatever their value (the summary finds mlgov's own tags).
    tags_present: frozenset[str] | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a run's model lives: a run artifact folder with an MLmodel, or a LoggedModel."""

    source: str
    model_id: str | None = None


class TrackingReader(Protocol):
    """The read-only half of the tracking port: what policies see (they never mutate).

    Implementations walk page tokens (iterators never load a whole experiment), map
    MLflow entities to `shared.model` values, and raise only the project's errors:
    `RunNotFound`, `TrackingError`, `TrackingUnavailable`, `CapabilityUnsupported`.
    """

    @property
    def tracking_uri(self) -> str: ...

    # experiments and runs
    def iter_experiments(self) -> Iterator[Experiment]: ...

    def get_experiment(self, experiment_id: str) -> Experiment | None: ...

    def get_run(self, run_id: str) -> Run: ...

    def iter_runs(self, query: RunQuery) -> Iterator[Run]: ...

    def iter_child_runs(self, experiment_id: str, parent_run_id: str) -> Iterator[Run]: ...

    # models
    def find_model_source(self, run: Run, artifact_path: str) -> ModelSource | None: ...

    def run_has_model_versions(self, run_id: str) -> bool: ...

    def find_model_versions(self, name: str, run_id: str) -> list[ModelVersion]: ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None: ...

    # links
    def run_url(self, run: Run) -> str | None: ...


class TrackingGateway(TrackingReader, Protocol):
    """The whole port: reads plus the mutations only the executor (and restore) may call."""

    def set_run_tags(
        self, run_id: str, tags: Mapping[str, str], delete: Sequence[str] = ()
    ) -> None: ...

    def delete_run(self, run_id: str) -> None: ...

    def restore_run(self, run_id: str) -> None: ...

    def create_model_version(
        self, name: str, source: ModelSource, run_id: str, tags: Mapping[str, str]
    ) -> ModelVersion: ...

    def delete_model_version(self, name: str, version: str) -> None:
        """Delete one version (a duplicate a concurrent registration left); gone is fine."""
        ...

    def set_model_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None: ...

    def set_alias(self, name: str, alias: str, version: str) -> str:
        """Point `alias` at `version`; returns how ("alias", or the fallback used)."""
        ...
