"""The tracking gateway over `MlflowClient`: paging, entity mapping, error translation.

Differences between servers (Azure ML without status filters, `!=` on tags or aliases)
are handled here and nowhere else: a filter the server refuses is retried without it
and applied on the client; a refused alias falls back to a `governance.alias` version tag.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from shared import tags as T
from shared.errors import (
    CapabilityUnsupported,
    RunNotFound,
    TrackingError,
    TrackingUnavailable,
)
from shared.model import Experiment, ModelVersion, Run, normalise_status
from shared.tracking.gateway import ModelSource, RunQuery

log = logging.getLogger(__name__)

PAGE_SIZE = 200
_R = TypeVar("_R")

# The REST client retries 7 times with exponential backoff by default: minutes, far beyond
# Event Grid's 30 s. These defaults apply only where the user has not set them. MLflow reads
# the backoff factor as an int (0.5 would fail every request); with urllib3 2 the first retry
# does not wait and the second waits factor * 2 s, so 1 keeps the total pause at ~2 s.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # An unattended governance job sends no usage telemetry of MLflow's unless asked to.
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
# How long create_model_version waits for a version to leave PENDING_REGISTRATION: an
# invocation must answer Event Grid within 30 s; a version still pending is usable anyway.
AWAIT_CREATION_S = 5

_TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
# A 5xx the REST client does not retry arrives as "failed with error code 5xx != 200" (an
# HTML answer) or, from the artifact listing, as requests' "5xx Server Error: ... for url".
_TRANSIENT_TEXT = re.compile(
    r"Max retries exceeded|Connection(Error| refused| aborted)|timed out|"
    r"failed with (error )?code 5\d\d|status code 5\d\d|\b5\d\d Server Error|Read timed out",
    re.IGNORECASE,
)
_AZUREML_URI = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/?]+)",
    re.IGNORECASE,
)


def _ms_to_datetime(value: int | None) -> datetime | None:
    if value is None or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def quote(value: str) -> str | None:
    """A string literal for an MLflow filter; None when the value holds both quote kinds.

    MLflow's filter grammar has no escape for a quote inside a literal, so such a value
    cannot be sent: callers then send a looser filter and compare on the client.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


def _equals(field: str, value: str) -> str | None:
    """`field = <literal>`, or None when the value cannot be written as a literal."""
    literal = quote(value)
    return None if literal is None else f"{field} = {literal}"


def _without_userinfo(uri: str) -> str:
    """The URI without `user:password@` (a tracking URI may carry credentials)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "error_code", "") or "")


def is_transient(exc: Exception) -> bool:
    """Whether an MLflow or HTTP error means the server is down or overloaded."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if _error_code(exc) in _TRANSIENT_CODES:
        return True
    return bool(_TRANSIENT_TEXT.search(str(exc)))


def _map_run(run: Any) -> Run:
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


def _map_version(mv: Any) -> ModelVersion:
    return ModelVersion(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or None,
        source=mv.source or "",
        tags=dict(mv.tags or {}),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
    )


def _version_number(version: ModelVersion) -> int:
    return int(version.version) if version.version.isdigit() else 0


def _matches(run: Run, query: RunQuery) -> bool:
    if query.statuses is not None and run.status not in query.statuses:
        return False
    finished = run.finished_at
    if query.finished_before is not None and (
        finished is None or finished >= query.finished_before
    ):
        return False
    if query.finished_after is not None and (finished is None or finished < query.finished_after):
        return False
    if query.tags_present and not all(k in run.tags for k in query.tags_present):
        return False
    if query.tag_equals:
        return all(run.tags.get(k) == v for k, v in query.tag_equals.items())
    return True


class MlflowGateway:
    """`TrackingGateway` over `MlflowClient`."""

    def __init__(
        self, tracking_uri: str, client: Any | None = None, *, page_size: int | None = None
    ) -> None:
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        from mlflow import MlflowClient

        self._uri = tracking_uri
        self._client = client or MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        # Flipped off the first time the server refuses a filter; the client filters instead.
        self.server_filters = True
        # Tag filters are given up separately (and only if refused too): without them every
        # child-run lookup would walk the whole experiment.
        self.server_tag_filters = True
        # Flipped off if the server refuses `source_run_id` in a LoggedModel search (MLflow
        # 3.15 accepts it); then every LoggedModel of that name is walked instead.
        self.server_logged_model_run_filter = True
        # Injectable so tests can cross page boundaries without thousands of runs.
        self._page_size = page_size

    @property
    def page_size(self) -> int:
        return self._page_size or PAGE_SIZE

    @property
    def tracking_uri(self) -> str:
        return self._uri

    # -- error translation -------------------------------------------------------------

    def _call(
        self,
        what: str,
        fn: Callable[..., _R],
        *args: Any,
        for_run: str | None = None,
        **kwargs: Any,
    ) -> _R:
        """Call the client; `for_run` names the run a not-found error is about."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise self._translate(what, exc, for_run) from exc

    @staticmethod
    def _pages(fn: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        """Every item of a paged MLflow search, page token by page token (errors as raised)."""
        token: str | None = None
        while True:
            page = fn(page_token=token, **kwargs)
            yield from page
            token = page.token
            if not token:
                return

    def _paged(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        """`_pages`, with MLflow's errors turned into the project's."""
        try:
            yield from self._pages(fn, **kwargs)
        except Exception as exc:
            raise self._translate(what, exc, None) from exc

    def _translate(self, what: str, exc: Exception, run_id: str | None) -> Exception:
        if isinstance(exc, TrackingError | TrackingUnavailable):
            return exc
        if is_transient(exc):
            return TrackingUnavailable(f"tracking server unavailable during {what}: {exc}")
        if run_id is not None and _error_code(exc) in _NOT_FOUND_CODES:
            return RunNotFound(run_id)
        return TrackingError(f"{what} failed: {exc}", code=_error_code(exc))

    # -- experiments and runs -----------------------------------------------------------

    def iter_experiments(self) -> Iterator[Experiment]:
        pages = self._paged(
            "search_experiments", self._client.search_experiments, max_results=self.page_size
        )
        for exp in pages:
            yield Experiment(experiment_id=str(exp.experiment_id), name=exp.name)

    def get_experiment(self, experiment_id: str) -> Experiment | None:
        try:
            exp = self._client.get_experiment(experiment_id)
        except Exception as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                return None
            raise self._translate("get_experiment", exc, None) from exc
        if exp is None or exp.lifecycle_stage == "deleted":
            return None
        return Experiment(experiment_id=str(exp.experiment_id), name=exp.name)

    def get_run(self, run_id: str) -> Run:
        try:
            raw = self._call("get_run", self._client.get_run, run_id, for_run=run_id)
        except TrackingError as exc:
            # The only parameter is the id: a server that calls it invalid holds no such run.
            if exc.code == "INVALID_PARAMETER_VALUE":
                raise RunNotFound(run_id, "not a valid run id on this server") from exc
            raise
        return _map_run(raw)

    def _server_filter(self, query: RunQuery, status: str | None) -> str:
        clauses: list[str] = []
        if self.server_filters:
            clauses += self._attribute_clauses(query, status)
        if not self.server_tag_filters:
            return " and ".join(clauses)
        for key, value in (query.tag_equals or {}).items():
            # A value the grammar cannot hold is left to the client check (`_matches`).
            clause = _equals(f"tags.`{key}`", value)
            if clause is not None:
                clauses.append(clause)
        for key in sorted(query.tags_present or ()):
            # LIKE '%' matches any value; a run without the tag has no row to match.
            clauses.append(f"tags.`{key}` LIKE '%'")
        return " and ".join(clauses)

    @staticmethod
    def _attribute_clauses(query: RunQuery, status: str | None) -> list[str]:
        clauses: list[str] = []
        if status is not None:
            clauses.append(f"attributes.status = '{status}'")
        if query.finished_after is not None:
            clauses.append(f"attributes.end_time >= {_to_ms(query.finished_after)}")
        if query.finished_before is not None:
            # Not end_time: a run without one counts by its start, and end >= start, so
            # "started before" is the condition the server can check for both kinds.
            clauses.append(f"attributes.start_time < {_to_ms(query.finished_before)}")
        return clauses

    def _search(self, experiment_id: str, filter_string: str, deleted: bool) -> Iterator[Any]:
        from mlflow.entities import ViewType

        # Untranslated: `_iter_filtered` tells a refused filter from other errors by MLflow's code.
        return self._pages(
            self._client.search_runs,
            experiment_ids=[experiment_id],
            filter_string=filter_string,
            run_view_type=ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY,
            max_results=self.page_size,
            order_by=["attributes.start_time DESC"],
        )

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        # One server query per status: MLflow has no IN on status. The client re-checks
        # every condition, so a server that ignores part of a filter stays correct.
        statuses: list[str | None] = [*sorted(query.statuses)] if query.statuses else [None]
        if query.statuses is not None and not query.statuses:
            return
        for status in statuses:
            yield from self._iter_filtered(query, status)

    def _iter_filtered(self, query: RunQuery, status: str | None) -> Iterator[Run]:
        filter_string = self._server_filter(query, status)
        seen = 0
        try:
            for raw in self._search(query.experiment_id, filter_string, query.deleted):
                seen += 1
                run = _map_run(raw)
                if _matches(run, query):
                    yield run
        except Exception as exc:
            if (
                seen == 0
                and filter_string
                and not is_transient(exc)
                and _error_code(exc) in {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", ""}
            ):
                log.warning(
                    "server refused filter %r (%s); filtering on the client", filter_string, exc
                )
                # Status and time filters are the ones in doubt (Azure ML): give those up
                # first, tag filters only when the server refuses a query without them.
                if self.server_filters and self._attribute_clauses(query, status):
                    self.server_filters = False
                else:
                    self.server_tag_filters = False
                yield from self._iter_filtered(query, status)
                return
            raise self._translate("search_runs", exc, None) from exc

    def iter_child_runs(self, experiment_id: str, parent_run_id: str) -> Iterator[Run]:
        query = RunQuery(experiment_id=experiment_id, tag_equals={T.PARENT_RUN_ID: parent_run_id})
        yield from self.iter_runs(query)

    def set_run_tags(
        self, run_id: str, tags: Mapping[str, str], delete: Sequence[str] = ()
    ) -> None:
        from mlflow.entities import RunTag

        if tags:
            batch = [RunTag(key, value) for key, value in tags.items()]  # type: ignore[no-untyped-call]
            self._call("log_batch", self._client.log_batch, run_id, tags=batch, for_run=run_id)
        for key in delete:
            try:
                self._client.delete_tag(run_id, key)
            except Exception as exc:
                # Deleting a tag that is already gone is the state we wanted.
                if _error_code(exc) in _NOT_FOUND_CODES and "tag" in str(exc).lower():
                    continue
                raise self._translate("delete_tag", exc, run_id) from exc

    def delete_run(self, run_id: str) -> None:
        self._call("delete_run", self._client.delete_run, run_id, for_run=run_id)

    def restore_run(self, run_id: str) -> None:
        try:
            self._client.restore_run(run_id)
        except Exception as exc:
            error = self._translate("restore_run", exc, run_id)
            if type(error) is TrackingError and _error_code(exc) in {"ENDPOINT_NOT_FOUND", ""}:
                raise CapabilityUnsupported(
                    f"the tracking server cannot restore runs ({exc}); on Azure ML restore the "
                    f"job with `az ml job restore --name {run_id}`"
                ) from exc
            raise error from exc

    # -- models -----------------------------------------------------------------------

    def find_model_source(self, run: Run, artifact_path: str) -> ModelSource | None:
        path = artifact_path.strip("/")
        # MLflow 3 logs models as LoggedModels linked to the run, not as run artifacts. Looked
        # up first: MLflow's own listing of such a run resolves the LoggedModel with a client
        # on the process-wide tracking URI, not this gateway's ("run not found" elsewhere).
        try:
            models = self._search_logged_models(run, path)
        except TrackingUnavailable:
            raise
        except TrackingError as exc:
            log.info("no LoggedModel lookup on this server: %s", exc)
            models = []
        if models:
            model_id = str(models[-1])
            return ModelSource(source=f"models:/{model_id}", model_id=model_id)
        # MLflow 2 clients and Azure ML keep the model as a run artifact folder.
        files = self._call(
            "list_artifacts",
            self._client.list_artifacts,
            run.run_id,
            path,
            for_run=run.run_id,
        )
        if any(f.path.rstrip("/").endswith("MLmodel") for f in files):
            return ModelSource(source=f"runs:/{run.run_id}/{path}")
        return None

    def _search_logged_models(self, run: Run, name: str) -> list[str]:
        """Ids of the run's LoggedModels called `name`, oldest first."""
        by_name = _equals("name", name)
        by_run = _equals("source_run_id", run.run_id)
        if self.server_logged_model_run_filter and by_run is not None:
            # Narrowed to the run on the server: an experiment of many runs logs a "model"
            # per run, and walking them all for each run would not scale.
            narrow = " AND ".join(c for c in (by_name, by_run) if c is not None)
            try:
                return self._walk_logged_models(run, name, narrow)
            except TrackingUnavailable:
                raise
            except TrackingError as exc:
                log.info("server refused %r (%s); walking LoggedModels by name", narrow, exc)
                self.server_logged_model_run_filter = False
        return self._walk_logged_models(run, name, by_name or "")

    def _walk_logged_models(self, run: Run, name: str, filter_string: str) -> list[str]:
        models = self._paged(
            "search_logged_models",
            self._client.search_logged_models,
            experiment_ids=[run.experiment_id],
            filter_string=filter_string,
        )
        # Checked here too: the filter may have been loosened (or ignored by the server).
        return [m.model_id for m in models if m.source_run_id == run.run_id and m.name == name]

    def _iter_versions(self, filter_string: str) -> Iterator[ModelVersion]:
        versions = self._paged(
            "search_model_versions",
            self._client.search_model_versions,
            filter_string=filter_string,
            max_results=self.page_size,
        )
        return (_map_version(mv) for mv in versions)

    def run_has_model_versions(self, run_id: str) -> bool:
        by_run = _equals("run_id", run_id)
        if by_run is not None:
            try:
                return any(True for _ in self._iter_versions(by_run))
            except TrackingUnavailable:
                raise
            except TrackingError:
                pass
        # Azure ML may not filter versions by run: walk them all (rare: only on fallback).
        return any(v.run_id == run_id for v in self._iter_versions(""))

    def _versions_named(self, name: str) -> Iterator[ModelVersion]:
        """Every version of registered model `name`; filtered on the client when the name
        cannot be written in a filter (it holds both quote kinds)."""
        by_name = _equals("name", name)
        return (v for v in self._iter_versions(by_name or "") if v.name == name)

    def find_model_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        by_name, by_run = _equals("name", name), _equals("run_id", run_id)
        versions: list[ModelVersion] | None = None
        narrow = " and ".join(c for c in (by_name, by_run) if c is not None)
        if narrow:
            try:
                versions = list(self._iter_versions(narrow))
            except TrackingUnavailable:
                raise
            except TrackingError:
                versions = None
        if versions is None:
            versions = list(self._versions_named(name))
        # The client compares both: the filter may have left one of them out.
        versions = [v for v in versions if v.name == name and v.run_id == run_id]
        return sorted(versions, key=_version_number)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        try:
            return _map_version(self._client.get_model_version_by_alias(name, alias))
        except Exception as exc:
            if is_transient(exc):
                raise self._translate("get_model_version_by_alias", exc, None) from exc
            if _error_code(exc) not in _NOT_FOUND_CODES:
                log.info("alias lookup refused (%s); using the %s tag", exc, T.ALIAS_FALLBACK)
        # No alias (or no alias support): the fallback tag, if a promotion ever set one.
        try:
            tagged = [
                v for v in self._versions_named(name) if v.tags.get(T.ALIAS_FALLBACK) == alias
            ]
        except TrackingUnavailable:
            raise
        except TrackingError:
            return None
        return max(tagged, key=_version_number, default=None)

    def create_model_version(
        self, name: str, source: ModelSource, run_id: str, tags: Mapping[str, str]
    ) -> ModelVersion:
        try:
            self._client.create_registered_model(name)
        except Exception as exc:
            if _error_code(exc) not in {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}:
                raise self._translate("create_registered_model", exc, None) from exc
        with self._as_process_uri(source):
            mv = self._call(
                "create_model_version",
                self._client.create_model_version,
                name=name,
                source=source.source,
                run_id=run_id,
                tags=dict(tags),
                model_id=source.model_id,
                await_creation_for=AWAIT_CREATION_S,
            )
        return _map_version(mv)

    def _as_process_uri(self, source: ModelSource) -> AbstractContextManager[object]:
        """This gateway's URI as the process-wide one while a LoggedModel is registered.

        A local registry (an embedded SQLite store) resolves `models:/<id>` through the
        process-wide tracking URI, not the client's: elsewhere that is "Logged model not
        found" (and a default store created in the working directory). A server resolves
        the source itself, so only local URIs need it.
        """
        if source.model_id is None or self._uri.startswith(("http://", "https://", "azureml:")):
            return nullcontext()
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        return _use_tracking_uri(self._uri)

    def delete_model_version(self, name: str, version: str) -> None:
        try:
            self._client.delete_model_version(name, version)
        except Exception as exc:
            # Already gone (a concurrent invocation removed it) is the state we wanted.
            if _error_code(exc) in _NOT_FOUND_CODES:
                return
            raise self._translate("delete_model_version", exc, None) from exc

    def set_model_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._call(
                "set_model_version_tag",
                self._client.set_model_version_tag,
                name,
                version,
                key,
                value,
            )

    def set_alias(self, name: str, alias: str, version: str) -> str:
        try:
            self._client.set_registered_model_alias(name, alias, version)
        except Exception as exc:
            if is_transient(exc) or _error_code(exc) == "INVALID_PARAMETER_VALUE":
                # MLflow refuses an invalid alias (`v1`, `latest`, `Champion!`) this way: that
                # is a bad setting, not a registry without aliases, so it must not be hidden
                # behind the tag fallback.
                raise self._translate("set_registered_model_alias", exc, None) from exc
            log.warning("registry refused alias %r (%s); tagging the version instead", alias, exc)
            return self._set_alias_tag(name, alias, version)
        return "alias"

    def _set_alias_tag(self, name: str, alias: str, version: str) -> str:
        for other in self._versions_named(name):
            if other.version != version and other.tags.get(T.ALIAS_FALLBACK) == alias:
                self._call(
                    "delete_model_version_tag",
                    self._client.delete_model_version_tag,
                    name,
                    other.version,
                    T.ALIAS_FALLBACK,
                )
        self.set_model_version_tags(name, version, {T.ALIAS_FALLBACK: alias})
        return f"tag {T.ALIAS_FALLBACK}"

    # -- links --------------------------------------------------------------------------

    def run_url(self, run: Run) -> str | None:
        return run_url(self._uri, run)


def run_url(tracking_uri: str, run: Run) -> str | None:
    """Azure ML studio for azureml:// URIs, the MLflow UI for http(s) servers, else None."""
    match = _AZUREML_URI.search(tracking_uri)
    if tracking_uri.startswith("azureml://") and match:
        wsid = (
            f"/subscriptions/{match['sub']}/resourcegroups/{match['rg']}/workspaces/{match['ws']}"
        )
        return f"https://ml.azure.com/runs/{run.run_id}?wsid={wsid}"
    if tracking_uri.startswith(("http://", "https://")):
        # Links go into cards and reports: never the credentials a URI may carry.
        base = _without_userinfo(tracking_uri).rstrip("/")
        return f"{base}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
    return None
