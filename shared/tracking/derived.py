"""Reads every adapter derives from its own `iter_runs`: the children of one parent, or of
many at once. Written once here, so a gateway that narrows or wraps `iter_runs` wraps these."""

from __future__ import annotations

from collections.abc import Collection, Iterator

from shared.model import Run
from shared.tracking.filters import by_parent, child_runs, children_of
from shared.tracking.gateway import RunQuery


class ChildReads:
    """Mixin of the adapters: child-run reads through the adapter's `iter_runs`."""

    __slots__ = ()

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        raise NotImplementedError

    def iter_child_runs(self, experiment_id: str, parent_run_id: str) -> Iterator[Run]:
        return self.iter_runs(child_runs(experiment_id, parent_run_id))

    def child_runs_of(
        self, experiment_ids: Collection[str], parent_run_ids: Collection[str]
    ) -> dict[str, list[Run]]:
        query = children_of(experiment_ids, parent_run_ids)
        return {} if query is None else by_parent(self.iter_runs(query))
