"""Model calls of the MLflow adapter: a run's model source, versions, tags and aliases.

A registry without aliases (Azure ML may refuse them) gets a `governance.alias` version tag
instead; a refused `run_id` or `source_run_id` filter falls back to a walk checked here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping
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
from shared.tracking.filters import equals, in_list, listable
from shared.tracking.gateway import Champion, ModelSource, in_parts
from shared.tracking.models import RunExtras, RunModels, mlflows_own
from shared.tracking.process_uri import process_tracking_uri

log = logging.getLogger(__name__)

# How long create_model_version waits for a version to leave PENDING_REGISTRATION: an
# invocation must answer Event Grid within 30 s; a version still pending is usable anyway.
AWAIT_CREATION_S = 5
# Without lists, runs asked one by one up to this many; past it one walk of every version.
_ONE_BY_ONE_MAX = 20
# How MLflow's registry words the two "not found"s of an alias lookup
# (mlflow/store/model_registry/sqlalchemy_store.py): no such model, or no such alias.
_MODEL_MISSING = re.compile(r"Registered Model with name=.* not found", re.IGNORECASE)
_ALIAS_MISSING = re.compile(r"Registered model alias \S+ not found", re.IGNORECASE)


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
        self,
        client: Any,
        tracking_uri: str,
        capabilities: Capabilities,
        page_size: int,
        extras: RunExtras | None = None,
    ) -> None:
        self._client = client
        self._uri = tracking_uri
        self._caps = capabilities
        self._page_size = page_size
        self._models = RunModels(client, tracking_uri, capabilities, extras or RunExtras())

    # -- a run's model ------------------------------------------------------------------

    def find_model_source(self, run: Run, artifact_path: str) -> ModelSource | None:
        return self._models.find_model_source(run, artifact_path)

    # -- versions -----------------------------------------------------------------------

    def _iter_versions(self, filter_string: str) -> Iterator[ModelVersion]:
        versions = paged(
            "search_model_versions",
            self._client.search_model_versions,
            filter_string=filter_string,
            max_results=self._page_size,
        )
        return (map_version(mv) for mv in versions)

    def _run_filtered(self, run_id: str) -> bool | None:
        """Whether the run has versions, by a `run_id =` search; None when it cannot say."""
        by_run = equals("run_id", run_id)
        if by_run is None or not self._caps.version_run_filter:
            return None
        try:
            return any(True for _ in self._iter_versions(by_run))
        except TrackingUnavailable:
            raise
        except TrackingError:
            return None

    def run_has_model_versions(self, run_id: str) -> bool:
        has = self._run_filtered(run_id)
        if has is not None:
            return has
        # Azure ML may not filter versions by run: walk them all (rare: only on fallback).
        return any(v.run_id == run_id for v in self._iter_versions(""))

    def runs_with_model_versions(self, run_ids: Collection[str]) -> frozenset[str]:
        wanted = frozenset(run_ids)
        found: set[str] = set()
        alone = set(wanted)
        if self._caps.version_run_filter and self._caps.version_run_list_filter:
            listed = sorted(i for i in wanted if listable(i))
            try:
                # `SearchModelVersionUtils` accepts IN on `run_id` only, lower-case ids only:
                # a part of cleanup candidates (`RUN_IDS_PER_SEARCH`) in one request.
                for chunk in in_parts(listed):
                    versions = self._iter_versions(in_list("run_id", chunk))
                    found.update(v.run_id for v in versions if v.run_id in wanted)
                    alone.difference_update(chunk)
            except TrackingUnavailable:
                raise
            except TrackingError as exc:
                log.info("server refused run id lists on versions (%s); one search a run", exc)
                self._caps.version_run_list_filter = False
        if len(alone) <= _ONE_BY_ONE_MAX:
            for run_id in sorted(alone):
                has = self._run_filtered(run_id)
                if has is None:
                    break
                if has:
                    found.add(run_id)
                alone.discard(run_id)
        if alone:
            # No run filter at all (Azure ML may have none): one walk over every version,
            # not one walk per run.
            found.update(v.run_id for v in self._iter_versions("") if v.run_id in alone)
        return frozenset(found)

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
        self,
        name: str,
        source: ModelSource,
        run_id: str,
        tags: Mapping[str, str],
        *,
        create_model: bool = True,
    ) -> ModelVersion:
        try:
            if create_model:
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
        the source itself, so only local URIs need it. Lent through the one lease of the
        process-wide URI (`process_uri`): registrations on the pool overlap, and each must
        find the URI set until it ends (MLflow's `_use_tracking_uri` would put it back when
        the first one ends).
        """
        if source.model_id is None or self._uri.startswith(("http://", "https://", "azureml:")):
            return nullcontext()
        return process_tracking_uri(self._uri, "create_model_version", always=True)

    def delete_model_version(self, name: str, version: str) -> None:
        try:
            self._client.delete_model_version(name, version)
        except Exception as exc:
            # Already gone (a concurrent invocation removed it) is the state we wanted.
            if error_code(exc) in NOT_FOUND_CODES:
                return
            raise translate("delete_model_version", exc, None) from exc

    def set_model_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        # As for aliases: MLflow 3's `MlflowClient.set_model_version_tag` first reads the
        # registered model (`_raise_if_prompt`, mlflow/tracking/client.py: one more request
        # per tag); its registry client (mlflow/tracking/_model_registry/client.py) sets the
        # tag alone, and the model here is one this tool registered versions of.
        setter = self._registry_call("set_model_version_tag")
        for key, value in tags.items():
            call("set_model_version_tag", setter, name, version, key, value)

    # -- aliases ------------------------------------------------------------------------

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        return self.find_champion(name, alias).version

    def find_champion(self, name: str, alias: str) -> Champion:
        if self._caps.aliases:
            try:
                found = map_version(self._client.get_model_version_by_alias(name, alias))
            except Exception as exc:
                if is_transient(exc):
                    raise translate("get_model_version_by_alias", exc, None) from exc
                text = str(exc)
                if _MODEL_MISSING.search(text):
                    return Champion(None, model_exists=False)
                if _ALIAS_MISSING.search(text):
                    # The SQL store says so with INVALID_PARAMETER_VALUE: an answer, not a
                    # refusal of aliases (the model is there, the alias is not).
                    return Champion(None, model_exists=True)
                if error_code(exc) not in NOT_FOUND_CODES:
                    log.info("alias lookup refused (%s); using the %s tag", exc, T.ALIAS_FALLBACK)
            else:
                return Champion(found, model_exists=True)
        # No alias (or no alias support): the fallback tag, if a promotion ever set one.
        try:
            versions = list(self._versions_named(name))
        except TrackingUnavailable:
            raise
        except TrackingError:
            return Champion(None)
        tagged = [v for v in versions if v.tags.get(T.ALIAS_FALLBACK) == alias]
        # Versions found: the model exists; none found says nothing (a model may be empty).
        champion = max(tagged, key=version_number, default=None)
        return Champion(champion, True if versions else None)

    def model_versions(self, name: str) -> list[ModelVersion]:
        return sorted(self._versions_named(name), key=version_number)

    def _registry_call(self, method: str) -> Callable[..., Any]:
        """MLflow's registry client's `method` when the client is MLflow's own (no prompt
        check first); the client's method otherwise (a test double, another client)."""
        own = mlflows_own(self._client, method)
        registry = getattr(self._client, "_get_registry_client", None) if own else None
        found: Callable[..., Any] = getattr(registry() if registry else self._client, method)
        return found

    def set_alias(self, name: str, alias: str, version: str) -> str:
        if not self._caps.aliases:
            return self._set_alias_tag(name, alias, version)
        # MLflow 3's `MlflowClient.set_registered_model_alias` first reads the model to refuse
        # a prompt (`_raise_if_prompt`: one more request); the registry client behind it
        # sets the alias alone, and the model here is one this tool registers versions of.
        try:
            self._registry_call("set_registered_model_alias")(name, alias, version)
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
