"""The tracking gateway over `MlflowClient`: a thin facade over the run and registry calls.

What the server refuses lives in its `Capabilities` (filters given up, aliases replaced by
a version tag, ...); errors are translated in `errors`, filters written in `filters`.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from shared.http_deadline import install_into_mlflow
from shared.model import Experiment, ModelVersion, Run
from shared.tracking.capabilities import Capabilities
from shared.tracking.derived import ChildReads
from shared.tracking.gateway import Champion, ModelSource, RunQuery
from shared.tracking.links import run_url
from shared.tracking.registry import MlflowRegistry
from shared.tracking.request_headers import settle_databricks_headers
from shared.tracking.runs import MlflowRuns

__all__ = ["PAGE_SIZE", "RUN_PAGE_SIZE", "MlflowGateway", "run_url"]

# Experiments, versions and LoggedModels a page: well under MLflow's page limits.
PAGE_SIZE = 200
# Runs a page: `MlflowClient.search_runs`'s own default (`SEARCH_MAX_RESULTS_DEFAULT`, 1000;
# the limit is 50000, mlflow/store/tracking/__init__.py), so any server MLflow's client
# works with takes it. A page of 1000 runs is a few MB; a sweep of 100,000 runs walks its
# 1,000 failed ones in one or two requests, not six.
RUN_PAGE_SIZE = 1000


class MlflowGateway(ChildReads):
    """`TrackingGateway` over `MlflowClient` (built here only when no `client` is given).

    `page_size` (runs too, else `RUN_PAGE_SIZE`) is injectable so tests cross page
    boundaries without thousands of runs;
    `capabilities` may say up front what this server refuses (else it is learned).
    """

    # Slotted: setting a capability flag on the gateway (gone) fails instead of doing nothing.
    __slots__ = ("_registry", "_runs", "_uri", "capabilities", "page_size")

    def __init__(
        self,
        tracking_uri: str,
        client: Any | None = None,
        *,
        page_size: int | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        # Every request of MLflow's REST client ends by its deadline, whoever built the client
        # (a stand-in client that never loaded MLflow does not load it here).
        if client is None or "mlflow" in sys.modules:
            install_into_mlflow()
            settle_databricks_headers()  # not probed again on every request
        if client is None:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._uri = tracking_uri
        self.capabilities = capabilities or Capabilities()
        self.page_size = page_size or PAGE_SIZE
        self._runs = MlflowRuns(
            client, self.capabilities, self.page_size, run_page_size=page_size or RUN_PAGE_SIZE
        )
        self._registry = MlflowRegistry(
            client, tracking_uri, self.capabilities, self.page_size, self._runs.extras
        )

    @property
    def tracking_uri(self) -> str:
        return self._uri

    # -- experiments and runs -----------------------------------------------------------

    def iter_experiments(self) -> Iterator[Experiment]:
        return self._runs.iter_experiments()

    def get_experiment(self, experiment_id: str) -> Experiment | None:
        return self._runs.get_experiment(experiment_id)

    def get_run(self, run_id: str) -> Run:
        return self._runs.get_run(run_id)

    def iter_runs(self, query: RunQuery) -> Iterator[Run]:
        return self._runs.iter_runs(query)

    def set_run_tags(
        self, run_id: str, tags: Mapping[str, str], delete: Sequence[str] = ()
    ) -> None:
        self._runs.set_run_tags(run_id, tags, delete)

    def delete_run(self, run_id: str) -> None:
        self._runs.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._runs.restore_run(run_id)

    # -- models -------------------------------------------------------------------------

    def find_model_source(self, run: Run, artifact_path: str) -> ModelSource | None:
        return self._registry.find_model_source(run, artifact_path)

    def run_has_model_versions(self, run_id: str) -> bool:
        return self._registry.run_has_model_versions(run_id)

    def runs_with_model_versions(self, run_ids: Collection[str]) -> frozenset[str]:
        return self._registry.runs_with_model_versions(run_ids)

    def find_model_versions(self, name: str, run_id: str) -> list[ModelVersion]:
        return self._registry.find_model_versions(name, run_id)

    def model_versions(self, name: str) -> list[ModelVersion]:
        return self._registry.model_versions(name)

    def find_champion(self, name: str, alias: str) -> Champion:
        return self._registry.find_champion(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        return self._registry.get_model_version_by_alias(name, alias)

    def create_model_version(
        self,
        name: str,
        source: ModelSource,
        run_id: str,
        tags: Mapping[str, str],
        *,
        create_model: bool = True,
    ) -> ModelVersion:
        return self._registry.create_model_version(
            name, source, run_id, tags, create_model=create_model
        )

    def delete_model_version(self, name: str, version: str) -> None:
        self._registry.delete_model_version(name, version)

    def set_model_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        self._registry.set_model_version_tags(name, version, tags)

    def set_alias(self, name: str, alias: str, version: str) -> str:
        return self._registry.set_alias(name, alias, version)

    # -- links --------------------------------------------------------------------------

    def run_url(self, run: Run) -> str | None:
        return run_url(self._uri, run)
