"""A run's model for the MLflow adapter: its LoggedModel, else its MLmodel artifact folder.

What `get_run` already read about the run (its artifact root, its logged-model outputs) is
kept in `RunExtras`, so finding the model costs one request, not the four of MLflow's own
`list_artifacts` (which reads the run again and then its logged models again).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any

from shared.errors import TrackingError, TrackingUnavailable
from shared.model import Run
from shared.tracking.capabilities import Capabilities
from shared.tracking.errors import call, paged, translate
from shared.tracking.filters import equals
from shared.tracking.gateway import ModelSource
from shared.tracking.process_uri import process_tracking_uri

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Extras:
    """What an `mlflow.entities.Run` says beyond `shared.model.Run`."""

    artifact_uri: str
    # LoggedModel ids among the run's outputs (MLflow 3 records every `log_model` there).
    model_ids: tuple[str, ...]


# Runs whose extras are kept: as many as the sweep keeps whole for its catch-up (`HEARD_MAX`
# in shared/usecases/sweep.py), so that a candidate it kept is not read again for its model;
# ~200 bytes each (an artifact URI, a few model ids).
EXTRAS_KEPT = 5_000


class RunExtras:
    """The extras of the runs read lately, bounded (a sweep reads thousands of runs)."""

    def __init__(self, keep: int = EXTRAS_KEPT) -> None:
        self._keep = keep
        self._lock = Lock()
        self._by_run: OrderedDict[str, Extras] = OrderedDict()

    def remember(self, raw: Any) -> None:
        outputs = getattr(raw, "outputs", None)
        ids = tuple(str(o.model_id) for o in getattr(outputs, "model_outputs", None) or ())
        uri = getattr(raw.info, "artifact_uri", None)
        if not isinstance(uri, str) or not uri:
            return
        with self._lock:
            self._by_run[raw.info.run_id] = Extras(uri, ids)
            self._by_run.move_to_end(raw.info.run_id)
            while len(self._by_run) > self._keep:
                self._by_run.popitem(last=False)

    @property
    def keep(self) -> int:
        return self._keep

    def get(self, run_id: str) -> Extras | None:
        with self._lock:
            return self._by_run.get(run_id)


def mlflows_own(client: Any, method: str) -> bool:
    """Whether `client.method` is `MlflowClient`'s own (not a subclass's or a wrapper's):
    only then may a call go to what MLflow's method would call, skipping its extra reads."""
    found = getattr(type(client), method, None)
    return getattr(found, "__qualname__", "") == f"MlflowClient.{method}"


class RunModels:
    """Finds a run's model through an `MlflowClient` (or anything with its methods)."""

    def __init__(
        self, client: Any, tracking_uri: str, capabilities: Capabilities, extras: RunExtras
    ) -> None:
        self._client = client
        self._uri = tracking_uri
        self._caps = capabilities
        self._extras = extras

    def find_model_source(self, run: Run, artifact_path: str) -> ModelSource | None:
        path = artifact_path.strip("/")
        extras = self._extras.get(run.run_id)
        if extras is not None and not mlflows_own(self._client, "list_artifacts"):
            extras = None  # a client of its own kind lists through its own method
        if extras is not None and not extras.model_ids:
            # No logged model among the run's outputs (MLflow 3 records each `log_model`
            # there): the artifact folder first, one request; a LoggedModel linked by hand
            # without an output is still found after it.
            return self._folder(run, path, extras) or self._logged_model(run, path)
        # MLflow 3 logs models as LoggedModels linked to the run, not as run artifacts. Looked
        # up first here: MLflow's own listing of such a run resolves the LoggedModel with a
        # client on the process-wide tracking URI, not this gateway's ("not found" elsewhere).
        return self._logged_model(run, path) or self._folder(run, path, extras)

    def _logged_model(self, run: Run, path: str) -> ModelSource | None:
        models: list[str] = []
        if self._caps.logged_models:
            try:
                models = self._search_logged_models(run, path)
            except TrackingUnavailable:
                raise
            except TrackingError as exc:
                log.info("no LoggedModel lookup on this server: %s", exc)
        if not models:
            return None
        model_id = str(models[-1])
        return ModelSource(source=f"models:/{model_id}", model_id=model_id)

    def _folder(self, run: Run, path: str, extras: Extras | None) -> ModelSource | None:
        """The MLmodel folder at `path` (how MLflow 2 clients and Azure ML log models)."""
        files = self._list(run, path, extras)
        if any(f.path.rstrip("/").endswith("MLmodel") for f in files):
            return ModelSource(source=f"runs:/{run.run_id}/{path}")
        return None

    def _list(self, run: Run, path: str, extras: Extras | None) -> list[Any]:
        # azureml-mlflow's artifact repository finds its workspace through MLflow's default
        # client, so the process-wide URI is this gateway's while it is built and listed
        # (`shared.tracking.process_uri`, which cites the azureml-mlflow source).
        with process_tracking_uri(self._uri, "list_artifacts"):
            if extras is None:
                listed = call(
                    "list_artifacts",
                    self._client.list_artifacts,
                    run.run_id,
                    path,
                    for_run=run.run_id,
                )
                return list(listed)
            from mlflow.store.artifact.artifact_repository_registry import (
                get_artifact_repository,
            )

            # What `runs:/` resolves to, with this gateway's URI, without reading the run again.
            try:
                repo = get_artifact_repository(extras.artifact_uri, tracking_uri=self._uri)
                return list(repo.list_artifacts(path))
            except Exception as exc:
                raise translate("list_artifacts", exc, run.run_id) from exc

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
