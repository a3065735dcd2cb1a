"""Experiment and run calls of the MLflow adapter: paged searches, entity mapping, run writes.

A run filter the server refuses is given up (recorded in the server's `Capabilities`) and the
search retried; the client re-checks every query, so the results do not change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shared.errors import RunNotFound, TrackingError
from shared.model import Experiment, Run, normalise_status
from shared.tracking.capabilities import Capabilities
from shared.tracking.errors import (
    NOT_FOUND_CODES,
    call,
    cannot_restore,
    error_code,
    is_transient,
    paged,
    pages,
    translate,
)
from shared.tracking.filters import (
    RUN_ID_LISTS,
    SEVERAL_EXPERIMENTS,
    give_up,
    listable,
    matches,
    server_filter,
)
from shared.tracking.gateway import RunQuery, in_parts
from shared.tracking.models import RunExtras

log = logging.getLogger(__name__)

# mlflow.entities.ViewType's values (plain ints there too), so a read imports no MLflow.
_ACTIVE_ONLY, _DELETED_ONLY = 1, 2
# How a server answers a filter it cannot run (Azure ML may give no code at all).
_REFUSED_FILTER_CODES = frozenset({"INVALID_PARAMETER_VALUE", "BAD_REQUEST", ""})


def _ms_to_datetime(value: int | None) -> datetime | None:
    if value is None or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def map_run(run: Any) -> Run:
    """`shared.model.Run` from an `mlflow.entities.Run`."""
    info, data = run.info, run.data
    return Run(
        run_id=info.run_id,
        experiment_id=str(info.experiment_id),
        status=normalise_status(str(info.status)),
        start_time=_ms_to_datetime(info.start_time),
        end_time=_ms_to_datetime(info.end_time),
        tags=dict(data.tags),
        metrics={k: float(v) for k, v in data.metrics.items()},
        deleted=info.lifecycle_stage == "deleted",
    )


class MlflowRuns:
    """Experiments and runs through an `MlflowClient` (or anything with its methods)."""

    def __init__(
        self,
        client: Any,
        capabilities: Capabilities,
        page_size: int,
        extras: RunExtras | None = None,
        *,
        run_page_size: int | None = None,
    ) -> None:
        self._client = client
        self._caps = capabilities
        self._page_size = page_size
        self._run_page_size = run_page_size or page_size
        # What `get_run` read beyond `Run` (artifact root, model outputs), for `RunModels`.
        self.extras = extras or RunExtras()

    def iter_experiments(self) -> Iterator[Experiment]:
        found = paged(
            "search_experiments", self._client.search_experiments, max_results=self._page_size
        )
        for exp in found:
            yield Experiment(experiment_id=str(exp.experiment_id), name=exp.name)

    def get_experiment(self, experiment_id: str) -> Experiment | None:
        try:
            exp = self._client.get_experiment(experiment_id)
        except Exception as exc:
            if error_code(exc) in NOT_FOUND_CODES:
                return None
            raise translate("get_experiment", exc, None) from exc
        return Experiment(experiment_id=str(exp.experiment_id), name=exp.name)

    def get_run(self, run_id: str) -> Run:
        try:
            raw = call("get_run", self._client.get_run, run_id, for_run=run_id)
        except TrackingError as exc:
            # The only parameter is the id: a server that calls it invalid holds no such run.
            if exc.code == "INVALID_PARAMETER_VALUE":
                raise RunNotFound(run_id, "not a valid run id on this server") from exc
            raise
        self.extras.remember(raw)
        return map_run(raw)

    def _search(
        self, experiment_ids: Sequence[str], filter_string: str, deleted: bool
    ) -> Iterator[Any]:
        # Untranslated: `_iter_search` tells a refused filter from other errors by MLflow's code.
        return pages(
            self._client.search_runs,
            experiment_ids=list(experiment_ids),
            filter_string=filter_string,
            run_view_type=_DELETED_ONLY if deleted else _ACTIVE_ONLY,
            max_results=self._run_page_size,
            order_by=["attributes.start_time DESC"],
        )

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        # The client re-checks every condition, so a server that ignores part of a filter
        # stays correct.
        nothing = query.statuses is not None and not query.statuses
        if query.run_ids is None and not nothing:
            yield from self._iter_statuses(query)
            return
        if query.overhear is not None:
            query.overhear.whole = False  # looked up by id, or not at all: nothing overheard
        if query.run_ids is None or nothing:
            return
        listed = sorted(i for i in query.run_ids if listable(i)) if self._caps.run_id_filter else []
        for chunk in in_parts(listed):
            yield from self._iter_statuses(replace(query, run_ids=frozenset(chunk)))
        # Ids MLflow would drop from a list (upper case), or every id once lists are refused.
        yield from self._iter_one_by_one(replace(query, run_ids=query.run_ids - set(listed)))

    def _iter_statuses(self, query: RunQuery) -> Iterator[Run]:
        # One search per status: MLflow 3.15 has no IN on status (see `filters`). Each search
        # keeps its own status on the client too, so none yields a run twice.
        pending = sorted(query.statuses or ())
        while True:
            if not pending or not self._caps.status_filters:
                # No status clause (none asked, or refused): one search, checked here.
                rest = replace(query, statuses=frozenset(pending)) if pending else query
                yield from self._iter_experiments(rest, None)
                return
            status = pending.pop(0)
            yield from self._iter_experiments(replace(query, statuses=frozenset({status})), status)
            if not pending:
                return

    def _iter_experiments(self, query: RunQuery, status: str | None) -> Iterator[Run]:
        if self._caps.multi_experiment_search:
            yield from self._iter_search(query, query.experiment_ids, status)
            return
        for experiment_id in query.experiment_ids:
            yield from self._iter_search(query, (experiment_id,), status)

    def _iter_one_by_one(self, query: RunQuery) -> Iterator[Run]:
        """The runs of `query.run_ids`, each read with `get_run` and checked here."""
        for run_id in sorted(query.run_ids or ()):
            try:
                run = self.get_run(run_id)
            except RunNotFound:
                continue
            in_view = run.deleted == query.deleted and run.experiment_id in query.experiment_ids
            if in_view and matches(run, query):
                yield run

    def _iter_search(
        self, query: RunQuery, experiment_ids: Sequence[str], status: str | None
    ) -> Iterator[Run]:
        filter_string = server_filter(query, status, self._caps)
        tap = query.overhear
        # Only a search sent with no filter reads every run: it is heard in full.
        hear = tap.hear if tap is not None and not filter_string else None
        seen = 0
        try:
            for raw in self._search(experiment_ids, filter_string, query.deleted):
                seen += 1
                run = map_run(raw)
                if tap is not None and hear is None:
                    tap.whole = False
                heard = hear is not None and hear(run)
                wanted = matches(run, query)
                if wanted or heard:
                    self.extras.remember(raw)  # a promotion may look for its model next
                if wanted:
                    yield run
            if tap is not None and hear is None:
                tap.whole = False  # answered with a filter (even with no run at all)
        except Exception as exc:
            refused = (
                seen == 0 and not is_transient(exc) and error_code(exc) in _REFUSED_FILTER_CODES
            )
            what = refused and give_up(
                query, status, self._caps, str(exc), experiments=len(experiment_ids)
            )
            if not what:
                raise translate("search_runs", exc, None) from exc
            log.warning("server refused %r (%s); no more %s", filter_string, exc, what)
            part = query.across(experiment_ids)
            if what == SEVERAL_EXPERIMENTS:
                yield from self._iter_experiments(part, status)
            elif what == RUN_ID_LISTS:
                yield from self._iter_one_by_one(part)
            else:
                yield from self._iter_search(query, experiment_ids, status)

    def set_run_tags(
        self, run_id: str, tags: Mapping[str, str], delete: Sequence[str] = ()
    ) -> None:
        if tags:
            from mlflow.entities import RunTag

            batch = [RunTag(key, value) for key, value in tags.items()]  # type: ignore[no-untyped-call]
            call("log_batch", self._client.log_batch, run_id, tags=batch, for_run=run_id)
        for key in delete:
            try:
                self._client.delete_tag(run_id, key)
            except Exception as exc:
                # Deleting a tag that is already gone is the state we wanted.
                if error_code(exc) in NOT_FOUND_CODES and "tag" in str(exc).lower():
                    continue
                raise translate("delete_tag", exc, run_id) from exc

    def delete_run(self, run_id: str) -> None:
        call("delete_run", self._client.delete_run, run_id, for_run=run_id)

    def restore_run(self, run_id: str) -> None:
        if not self._caps.restore:
            raise cannot_restore(run_id, "restore is not supported")
        try:
            self._client.restore_run(run_id)
        except Exception as exc:
            error = translate("restore_run", exc, run_id)
            if type(error) is TrackingError and error_code(exc) in {"ENDPOINT_NOT_FOUND", ""}:
                raise cannot_restore(run_id, exc) from exc
            raise error from exc
