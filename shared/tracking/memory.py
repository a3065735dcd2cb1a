"""`InMemoryGateway`: the tracking port over plain dictionaries, for tests without a server.

It honours the same contract as the MLflow adapter (the suite in tests/contract checks both):
MLflow's errors, views, version numbering and alias rules. Its `Capabilities` make it refuse
what Azure ML may (aliases, restore, LoggedModels); filter capabilities change no result, only
what `RunQuery.overhear` hears: every run where the MLflow adapter would send no filter.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared import tags as T
from shared.errors import RunNotFound, TrackingError
from shared.model import Experiment, ModelVersion, Run, normalise_status
from shared.tracking.capabilities import Capabilities
from shared.tracking.derived import ChildReads
from shared.tracking.errors import cannot_restore
from shared.tracking.filters import matches, unfiltered
from shared.tracking.gateway import Champion, ModelSource, RunQuery, TrackingGateway
from shared.tracking.links import run_url

# MLflow's alias rules (mlflow/utils/validation.py: `_validate_model_alias_name` and
# `_validate_model_alias_name_reserved`): word characters and dashes, at most 255, not
# `latest` and not a version alias like `v1`.
_ALIAS = re.compile(r"^[\w\-]{1,255}$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
_INVALID = "INVALID_PARAMETER_VALUE"
_MISSING = "RESOURCE_DOES_NOT_EXIST"


@dataclass(slots=True)
class _StoredRun:
    run_id: str
    experiment_id: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    tags: dict[str, str]
    metrics: dict[str, float]
    deleted: bool = False
    artifacts: set[str] = field(default_factory=set)  # folders that hold an MLmodel
    logged_models: list[tuple[str, str]] = field(default_factory=list)  # (name, model id)

    def snapshot(self) -> Run:
        return Run(
            run_id=self.run_id,
            experiment_id=self.experiment_id,
            status=self.status,
            start_time=self.start_time,
            end_time=self.end_time,
            tags=dict(self.tags),
            metrics=dict(self.metrics),
            deleted=self.deleted,
        )


@dataclass(slots=True)
class _StoredVersion:
    name: str
    version: int
    run_id: str
    source: str
    tags: dict[str, str]

    def snapshot(self, aliases: Mapping[str, int]) -> ModelVersion:
        return ModelVersion(
            name=self.name,
            version=str(self.version),
            run_id=self.run_id or None,
            source=self.source,
            tags=dict(self.tags),
            aliases=tuple(sorted(a for a, v in aliases.items() if v == self.version)),
        )


@dataclass(slots=True)
class _StoredModel:
    versions: dict[int, _StoredVersion] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    last_version: int = 0  # numbers are never reused, as in MLflow's registry


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InMemoryGateway(ChildReads):
    """`TrackingGateway` over dictionaries. Seed it with `create_experiment`, `add_run`,
    `log_model` and `log_logged_model`; reads return snapshots, so later writes never
    change a `Run` already handed out. Iterators walk a snapshot of the matching runs.
    """

    def __init__(
        self,
        tracking_uri: str = "memory://",
        *,
        capabilities: Capabilities | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._uri = tracking_uri
        self.capabilities = capabilities or Capabilities()
        self._clock = clock
        self._experiments: dict[str, Experiment] = {}
        self._runs: dict[str, _StoredRun] = {}
        self._models: dict[str, _StoredModel] = {}
        self._ids = itertools.count(1)

    @property
    def tracking_uri(self) -> str:
        return self._uri

    # -- seeding (tests) ----------------------------------------------------------------

    def create_experiment(self, name: str) -> str:
        """A new experiment's id; a name already taken is an error, as in MLflow."""
        if any(e.name == name for e in self._experiments.values()):
            raise TrackingError(
                f"experiment {name!r} already exists", code="RESOURCE_ALREADY_EXISTS"
            )
        experiment_id = str(next(self._ids))
        self._experiments[experiment_id] = Experiment(experiment_id=experiment_id, name=name)
        return experiment_id

    def add_run(
        self,
        experiment_id: str,
        *,
        status: str = "FINISHED",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        name: str | None = None,
        user: str | None = None,
        parent_run_id: str | None = None,
        deleted: bool = False,
    ) -> str:
        """A new run's id. `name`, `user` and `parent_run_id` become MLflow's own tags;
        the start defaults to the clock's now."""
        if experiment_id not in self._experiments:
            raise TrackingError(f"no experiment {experiment_id}", code=_MISSING)
        all_tags = dict(tags or {})
        for key, value in ((T.RUN_NAME, name), (T.USER, user), (T.PARENT_RUN_ID, parent_run_id)):
            if value is not None:
                all_tags[key] = value
        run_id = f"{next(self._ids):032x}"
        self._runs[run_id] = _StoredRun(
            run_id=run_id,
            experiment_id=experiment_id,
            status=normalise_status(status),
            start_time=start_time or self._clock(),
            end_time=end_time,
            tags=all_tags,
            metrics=dict(metrics or {}),
            deleted=deleted,
        )
        return run_id

    def log_model(self, run_id: str, artifact_path: str = "model") -> None:
        """An MLmodel folder at `artifact_path` of the run (how MLflow 2 and Azure ML log)."""
        self._stored_run(run_id).artifacts.add(artifact_path.strip("/"))

    def log_logged_model(self, run_id: str, name: str = "model") -> str:
        """A LoggedModel called `name` linked to the run (how MLflow 3 logs); its id."""
        model_id = f"m-{next(self._ids):032x}"
        self._stored_run(run_id).logged_models.append((name, model_id))
        return model_id

    # -- experiments and runs -----------------------------------------------------------

    def iter_experiments(self) -> Iterator[Experiment]:
        yield from list(self._experiments.values())

    def get_experiment(self, experiment_id: str) -> Experiment | None:
        return self._experiments.get(experiment_id)

    def get_run(self, run_id: str) -> Run:
        return self._stored_run(run_id).snapshot()

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        experiments = set(query.experiment_ids)
        found = [
            r.snapshot()
            for r in self._runs.values()
            if r.experiment_id in experiments and r.deleted == query.deleted
        ]
        # MLflow's order (`attributes.start_time DESC`, then the run id), newest first.
        found.sort(key=lambda r: r.run_id)
        found.sort(key=lambda r: r.start_time or datetime.min.replace(tzinfo=UTC), reverse=True)
        tap = query.overhear
        if tap is not None and not unfiltered(query, self.capabilities):
            tap.whole, tap = False, None  # the server would filter: nothing overheard
        for run in found:
            if tap is not None:
                tap.hear(run)
            if matches(run, query):
                yield run

    def set_run_tags(
        self, run_id: str, tags: Mapping[str, str], delete: Sequence[str] = ()
    ) -> None:
        stored = self._stored_run(run_id)
        if (tags or delete) and stored.deleted:
            # MLflow writes tags of active runs only.
            raise TrackingError(f"log_batch failed: run {run_id} is deleted", code=_INVALID)
        stored.tags.update(tags)
        for key in delete:
            stored.tags.pop(key, None)

    def delete_run(self, run_id: str) -> None:
        self._stored_run(run_id).deleted = True

    def restore_run(self, run_id: str) -> None:
        if not self.capabilities.restore:
            raise cannot_restore(run_id, "restore is not supported")
        self._stored_run(run_id).deleted = False

    def _stored_run(self, run_id: str) -> _StoredRun:
        stored = self._runs.get(run_id)
        if stored is None:
            raise RunNotFound(run_id)
        return stored

    # -- models -------------------------------------------------------------------------

    def find_model_source(self, run: Run, artifact_path: str) -> ModelSource | None:
        path = artifact_path.strip("/")
        stored = self._stored_run(run.run_id)
        if self.capabilities.logged_models:
            ids = [model_id for name, model_id in stored.logged_models if name == path]
            if ids:
                return ModelSource(source=f"models:/{ids[-1]}", model_id=ids[-1])
        if path in stored.artifacts:
            return ModelSource(source=f"runs:/{run.run_id}/{path}")
        return None

    def _all_versions(self) -> Iterator[_StoredVersion]:
        for model in self._models.values():
            yield from model.versions.values()

    def run_has_model_versions(self, run_id: str) -> bool:
        return any(v.run_id == run_id for v in self._all_versions())

    def runs_with_model_versions(self, run_ids: Collection[str]) -> frozenset[str]:
        wanted = frozenset(run_ids)
        return frozenset(v.run_id for v in self._all_versions() if v.run_id in wanted)

    def find_model_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        model = self._models.get(name)
        if model is None:
            return []
        return [
            v.snapshot(model.aliases)
            for number, v in sorted(model.versions.items())
            if v.run_id == run_id
        ]

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        return self.find_champion(name, alias).version

    def find_champion(self, name: str, alias: str) -> Champion:
        model = self._models.get(name)
        if model is None:
            # As MLflow with aliases: the lookup says the model is missing; without them a
            # walk of no versions says nothing.
            return Champion(None, False if self.capabilities.aliases else None)
        if self.capabilities.aliases and alias in model.aliases:
            version = model.versions[model.aliases[alias]].snapshot(model.aliases)
            return Champion(version, True)
        # As the MLflow adapter: no alias (or no alias support) reads the fallback tag.
        tagged = [n for n, v in model.versions.items() if v.tags.get(T.ALIAS_FALLBACK) == alias]
        found = model.versions[max(tagged)].snapshot(model.aliases) if tagged else None
        return Champion(found, True if self.capabilities.aliases or model.versions else None)

    def model_versions(self, name: str) -> list[ModelVersion]:
        model = self._models.get(name)
        if model is None:
            return []
        return [v.snapshot(model.aliases) for _, v in sorted(model.versions.items())]

    def create_model_version(
        self,
        name: str,
        source: ModelSource,
        run_id: str,
        tags: Mapping[str, str],
        *,
        create_model: bool = True,
    ) -> ModelVersion:
        if not create_model and name not in self._models:
            # What MLflow answers for a version of a model never created.
            raise TrackingError(f"no registered model {name!r}", code=_MISSING)
        model = self._models.setdefault(name, _StoredModel())
        model.last_version += 1
        stored = _StoredVersion(name, model.last_version, run_id, source.source, dict(tags))
        model.versions[stored.version] = stored
        return stored.snapshot(model.aliases)

    def delete_model_version(self, name: str, version: str) -> None:
        model = self._models.get(name)
        if model is None or model.versions.pop(_number(version), None) is None:
            return  # already gone is the state wanted
        # MLflow drops the aliases of a deleted version with it.
        model.aliases = {a: v for a, v in model.aliases.items() if v != _number(version)}

    def set_model_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        self._stored_version(name, version).tags.update(tags)

    def set_alias(self, name: str, alias: str, version: str) -> str:
        stored = self._stored_version(name, version)
        model = self._models[name]
        if not self.capabilities.aliases:
            for other in model.versions.values():
                if other is not stored and other.tags.get(T.ALIAS_FALLBACK) == alias:
                    del other.tags[T.ALIAS_FALLBACK]
            stored.tags[T.ALIAS_FALLBACK] = alias
            return f"tag {T.ALIAS_FALLBACK}"
        if not _ALIAS.match(alias) or alias.lower() == "latest" or _VERSION_ALIAS.match(alias):
            raise TrackingError(f"set_registered_model_alias failed: {alias!r}", code=_INVALID)
        model.aliases[alias] = stored.version
        return "alias"

    def _stored_version(self, name: str, version: str) -> _StoredVersion:
        model = self._models.get(name)
        stored = None if model is None else model.versions.get(_number(version))
        if stored is None:
            raise TrackingError(f"no version {version} of model {name!r}", code=_MISSING)
        return stored

    # -- links --------------------------------------------------------------------------

    def run_url(self, run: Run) -> str | None:
        return run_url(self._uri, run)


def _number(version: str) -> int:
    return int(version) if version.isdigit() else -1


if TYPE_CHECKING:
    # mypy checks here that the in-memory gateway honours the whole port.
    _PORT: TrackingGateway = InMemoryGateway()
