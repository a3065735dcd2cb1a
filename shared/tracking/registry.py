"""Model calls of the MLflow adapter: a run's model source, versions, tags and aliases.

A registry without aliases (Azure ML may refuse them) gets a `governance.alias` version tag
instead; a refused `run_id` or `source_run_id` filter falls back to a walk checked here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from shared import tags as T
from shared.errors import TrackingError, TrackingUnavailable
from shared.model import ModelVersion, Run
from shared.tracking.capabilities import Capabilities
from shared.tracking.errors import (
    ALREADY_EXISTS_CODES,
    NOT_FOUND_CODES,
    call,
    error_code,
    is_transient,
    paged,
    translate,
)
from shared.tracking.filters import equals
from shared.tracking.gateway import ModelSource

log = logging.getLogger(__name__)

# How long create_model_version waits for a version to leave PENDING_REGISTRATION: an
# invocation must answer Event Grid within 30 s; a version still pending is usable anyway.
AWAIT_CREATION_S = 5


def map_version(mv: Any) -> ModelVersion:
    """`shared.model.ModelVersion` from an `mlflow.entities.model_registry.ModelVersion`."""
    return ModelVersion(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or None,
        source=mv.source or "",
        tags=dict(mv.tags or {}),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
    )


def version_number(version: ModelVersion) -> int:
    return int(version.version) if version.version.isdigit() else 0


class MlflowRegistry:
    """Run models and the model registry through an `MlflowClient` (or its look-alike)."""

    def __init__(
        self, client: Any, tracking_uri: str, capabilities: Capabilities, page_size: int
    ) -> None:
        self._client = client
        self._uri = tracking_uri
        self._caps = capabilities
        self._page_size = page_size

    # -- a run's model ------------------------------------------------------------------

    def find_model_source(self, run: Run, artifact_path: str) -> ModelSource | None:
        path = artifact_path.strip("/")
        # MLflow 3 logs models as LoggedModels linked to the run, not as run artifacts. Looked
        # up first: MLflow's own listing of such a run resolves the LoggedModel with a client
        # on the process-wide tracking URI, not this gateway's ("run not found" elsewhere).
        models: list[str] = []
        if self._caps.logged_models:
            try:
                models = self._search_logged_models(run, path)
            except TrackingUnavailable:
                raise
            except TrackingError as exc:
                log.info("no LoggedModel lookup on this server: %s", exc)
        if models:
            model_id = str(models[-1])
            return ModelSource(source=f"models:/{model_id}", model_id=model_id)
        # MLflow 2 clients and Azure ML keep the model as a run artifact folder.
        files = call(
            "list_artifacts", self._client.list_artifacts, run.run_id, path, for_run=run.run_id
        )
        if any(f.path.rstrip("/").endswith("MLmodel") for f in files):
            return ModelSource(source=f"runs:/{run.run_id}/{path}")
        return None

    def _search_logged_models(self, run: Run, name: str) -> list[str]:
        """Ids of the run's LoggedModels called `name`, oldest first."""
        by_name = equals("name", name)
        by_run = equals("source_run_id", run.run_id)
        if self._caps.logged_model_run_filter and by_run is not None:
            # Narrowed to the run on the server: an experiment of many runs logs a "model"
            # per run, and walking them all for each run would not scale.
            narrow = " AND ".join(c for c in (by_name, by_run) if c is not None)
            try:
                return self._walk_logged_models(run, name, narrow)
            except TrackingUnavailable:
                raise
            except TrackingError as exc:
                log.info("server refused %r (%s); walking LoggedModels by name", narrow, exc)
                self._caps.logged_model_run_filter = False
        return self._walk_logged_models(run, name, by_name or "")

    def _walk_logged_models(self, run: Run, name: str, filter_string: str) -> list[str]:
        models = paged(
            "search_logged_models",
            self._client.search_logged_models,
            experiment_ids=[run.experiment_id],
            filter_string=filter_string,
        )
        # Checked here too: the filter may have been loosened (or ignored by the server).
        return [m.model_id for m in models if m.source_run_id == run.run_id and m.name == name]

    # -- versions -----------------------------------------------------------------------

    def _iter_versions(self, filter_string: str) -> Iterator[ModelVersion]:
        versions = paged(
            "search_model_versions",
            self._client.search_model_versions,
            filter_string=filter_string,
            max_results=self._page_size,
        )
        return (map_version(mv) for mv in versions)

    def run_has_model_versions(self, run_id: str) -> bool:
        by_run = equals("run_id", run_id)
        if by_run is not None and self._caps.version_run_filter:
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
        by_name = equals("name", name)
        return (v for v in self._iter_versions(by_name or "") if v.name == name)

    def find_model_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        by_name, by_run = equals("name", name), equals("run_id", run_id)
        versions: list[ModelVersion] | None = None
        narrow = " and ".join(c for c in (by_name, by_run) if c is not None)
        if narrow and self._caps.version_run_filter:
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
        return sorted(versions, key=version_number)

    def create_model_version(
        self, name: str, source: ModelSource, run_id: str, tags: Mapping[str, str]
    ) -> ModelVersion:
        try:
            self._client.create_registered_model(name)
        except Exception as exc:
            if error_code(exc) not in ALREADY_EXISTS_CODES:
                raise translate("create_registered_model", exc, None) from exc
        with self._as_process_uri(source):
            mv = call(
                "create_model_version",
                self._client.create_model_version,
                name=name,
                source=source.source,
                run_id=run_id,
                tags=dict(tags),
                model_id=source.model_id,
                await_creation_for=AWAIT_CREATION_S,
            )
        return map_version(mv)

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
            if error_code(exc) in NOT_FOUND_CODES:
                return
            raise translate("delete_model_version", exc, None) from exc

    def set_model_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            call(
                "set_model_version_tag",
                self._client.set_model_version_tag,
                name,
                version,
                key,
                value,
            )

    # -- aliases ------------------------------------------------------------------------

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        if self._caps.aliases:
            try:
                return map_version(self._client.get_model_version_by_alias(name, alias))
            except Exception as exc:
                if is_transient(exc):
                    raise translate("get_model_version_by_alias", exc, None) from exc
                if error_code(exc) not in NOT_FOUND_CODES:
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
        return max(tagged, key=version_number, default=None)

    def set_alias(self, name: str, alias: str, version: str) -> str:
        if not self._caps.aliases:
            return self._set_alias_tag(name, alias, version)
        try:
            self._client.set_registered_model_alias(name, alias, version)
        except Exception as exc:
            if is_transient(exc) or error_code(exc) == "INVALID_PARAMETER_VALUE":
                # MLflow refuses an invalid alias (`v1`, `latest`, `Champion!`) this way: that
                # is a bad setting, not a registry without aliases, so it must not be hidden
                # behind the tag fallback.
                raise translate("set_registered_model_alias", exc, None) from exc
            log.warning("registry refused alias %r (%s); tagging the version instead", alias, exc)
            return self._set_alias_tag(name, alias, version)
        return "alias"

    def _set_alias_tag(self, name: str, alias: str, version: str) -> str:
        for other in self._versions_named(name):
            if other.version != version and other.tags.get(T.ALIAS_FALLBACK) == alias:
                call(
                    "delete_model_version_tag",
                    self._client.delete_model_version_tag,
                    name,
                    other.version,
                    T.ALIAS_FALLBACK,
                )
        self.set_model_version_tags(name, version, {T.ALIAS_FALLBACK: alias})
        return f"tag {T.ALIAS_FALLBACK}"
