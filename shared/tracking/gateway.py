"""The tracking port: the few calls the policies and use cases make, whatever the server."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, TypeVar

from shared.model import Experiment, ModelVersion, Run

_P = TypeVar("_P")

# Run ids one search asks for (`RunQuery.run_ids`): a gateway sends at most this many in one
# request (the MLflow adapter's `attributes.run_id IN (...)`: one page of candidates, well under
# SQLite's bound variables, 32766 since 3.32, on the server's side), so a caller holding more
# reads them in parts of this size, which can go out at once.
RUN_IDS_PER_SEARCH = 200


def in_parts(items: Sequence[_P]) -> list[Sequence[_P]]:
    """`items` cut into parts of `RUN_IDS_PER_SEARCH`, in their order."""
    size = RUN_IDS_PER_SEARCH
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs to walk: of `experiment_id` (and of `more_experiments`, in the same
    searches; see `across`). Every other field narrows; None means no limit.

    `statuses` are MLflow's upper-case statuses. `finished_before` compares with the run's
    end (its start when it has none); `finished_after` with its end only, so a run without
    one is never "finished after". Deleted runs are walked only with `deleted=True`.
    `run_ids` keeps the runs with these ids; `parent_run_ids` the children of these runs.
    Runs come newest start first; with `run_ids` or `parent_run_ids` the order is not defined.
    `overhear` is not a condition: it listens to the walk (see `Overheard`).
    """

    experiment_id: str
    statuses: frozenset[str] | None = None
    finished_before: datetime | None = None
    finished_after: datetime | None = None
    tag_equals: Mapping[str, str] | None = None
    # Tags the run must carry, whatever their value (the summary finds mlgov's own tags).
    tags_present: frozenset[str] | None = None
    deleted: bool = False
    run_ids: frozenset[str] | None = None
    parent_run_ids: frozenset[str] | None = None
    more_experiments: tuple[str, ...] = ()
    overhear: Overheard | None = field(default=None, compare=False, repr=False)

    @property
    def experiment_ids(self) -> tuple[str, ...]:
        """Every experiment searched, each once, `experiment_id` first."""
        return tuple(dict.fromkeys((self.experiment_id, *self.more_experiments)))

    def across(self, experiment_ids: Iterable[str]) -> RunQuery:
        """The same query over `experiment_ids` (at least one), searched together where the
        server allows: the number of requests then does not grow with the experiments."""
        ids = list(dict.fromkeys(experiment_ids))
        if not ids:
            raise ValueError("a run query needs at least one experiment")
        return replace(self, experiment_id=ids[0], more_experiments=tuple(ids[1:]))

    def matches(self, run: Run) -> bool:
        """Whether `run` meets the statuses, times, ids and tags (not the experiment or the
        view, which every search names): the whole query, checked on the client."""
        if self.statuses is not None and run.status not in self.statuses:
            return False
        if self.run_ids is not None and run.run_id not in self.run_ids:
            return False
        if self.parent_run_ids is not None and run.parent_run_id not in self.parent_run_ids:
            return False
        finished = run.finished_at
        if self.finished_before is not None and (
            finished is None or finished >= self.finished_before
        ):
            return False
        # The end only, as the server's `end_time >=` clause: a run without one (still
        # running, or an end the server never recorded) has not finished after anything.
        ended = run.end_time
        if self.finished_after is not None and (ended is None or ended < self.finished_after):
            return False
        if self.tags_present and not all(k in run.tags for k in self.tags_present):
            return False
        if self.tag_equals:
            return all(run.tags.get(k) == v for k, v in self.tag_equals.items())
        return True


@dataclass(slots=True, eq=False)
class Overheard:
    """What a walk reads beyond its query's matches, for a caller that checks another query
    over the same runs on the client (the sweep's catch-up, heard during its cleanup scan).

    Given as `RunQuery.overhear`: every search of the walk that goes to the server with no
    filter at all (it refused the query's status and time clauses, as Azure ML may, and the
    query has no other) hands `hear` each run it reads, matching or not; `hear` says whether
    it keeps the run (the adapter then keeps what else it read of it, as for a match, so
    that governing it later reads no more). `whole` stays True only while every search of
    the walk was such a search: `hear` was then given every run in the walk's view of its
    experiments. Where the server filters, `hear` is never called and `whole` turns False;
    the walk's requests are the same either way.
    """

    hear: Callable[[Run], bool]
    whole: bool = True


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a run's model lives: a run artifact folder with an MLmodel, or a LoggedModel."""

    source: str
    model_id: str | None = None


@dataclass(frozen=True, slots=True)
class Champion:
    """What an alias lookup found: the version it points at, and whether the registered
    model exists at all (None when the lookup could not tell), so a first registration
    creates the model without asking again."""

    version: ModelVersion | None
    model_exists: bool | None = None


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

    def child_runs_of(
        self, experiment_ids: Collection[str], parent_run_ids: Collection[str]
    ) -> dict[str, list[Run]]:
        """The active children of each parent (parents without any absent), looked up in as
        few requests as the server allows, not one per parent."""
        ...

    # models
    def find_model_source(self, run: Run, artifact_path: str) -> ModelSource | None: ...

    def run_has_model_versions(self, run_id: str) -> bool: ...

    def runs_with_model_versions(self, run_ids: Collection[str]) -> frozenset[str]:
        """Which of `run_ids` produced a registered model version, in as few requests as
        the server allows (one per page of ids on MLflow), not one per run."""
        ...

    def find_model_versions(self, name: str, run_id: str) -> list[ModelVersion]: ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None: ...

    def find_champion(self, name: str, alias: str) -> Champion:
        """The alias's version (or the `governance.alias` fallback tag's) and whether the
        model exists, in one request where the server answers both."""
        ...

    def model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of registered model `name`, lowest number first (none: empty)."""
        ...

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
        self,
        name: str,
        source: ModelSource,
        run_id: str,
        tags: Mapping[str, str],
        *,
        create_model: bool = True,
    ) -> ModelVersion:
        """Register `source` as a new version; the registered model is created first unless
        `create_model` is False (a lookup just found it)."""
        ...

    def delete_model_version(self, name: str, version: str) -> None:
        """Delete one version (a duplicate a concurrent registration left); gone is fine."""
        ...

    def set_model_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None: ...

    def set_alias(self, name: str, alias: str, version: str) -> str:
        """Point `alias` at `version`; returns how ("alias", or the fallback used)."""
        ...
