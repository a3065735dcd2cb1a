"""One tracking world per adapter: a gateway and a way to seed it, for the contract suite.

Parametrized over the in-memory gateway and the MLflow adapter against the suite's real
`mlflow server`, each as is and refusing what Azure ML may refuse. The server-backed worlds
are marked `integration`: only they request the `mlflow_server` fixture.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from shared.tracking.capabilities import Capabilities
from shared.tracking.gateway import TrackingGateway
from shared.tracking.memory import InMemoryGateway
from tests.support import make_run

# Small pages, so a handful of runs or versions crosses MLflow's page boundaries.
PAGE_SIZE = 3


class Seeds(Protocol):
    """What a test puts on the server before asking the gateway about it."""

    def experiment(self) -> str: ...

    def run(
        self,
        experiment_id: str,
        *,
        status: str = "FINISHED",
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        ended_hours_ago: float | None = 1.0,
        name: str | None = None,
        model: bool = False,
    ) -> str: ...

    def logged_model(self, experiment_id: str, run_id: str, name: str) -> str: ...


@dataclass(frozen=True)
class World:
    name: str
    gateway: TrackingGateway
    seeds: Seeds
    # What this world's server refuses (all True: a full MLflow server).
    supports: Capabilities
    # Client calls by method name, for the worlds with a real server (None in memory).
    calls: Counter[str] | None = None


class Counted:
    """An MlflowClient whose method calls are counted by name (one call, one request, but
    for the pages a search walks)."""

    def __init__(self, inner: Any, calls: Counter[str]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] += 1
            return attr(*args, **kwargs)

        return counted


class MemorySeeds:
    """Seeds the in-memory gateway as `tests.support.make_run` seeds a server."""

    def __init__(self, gateway: InMemoryGateway) -> None:
        self._gateway = gateway

    def experiment(self) -> str:
        return self._gateway.create_experiment(f"exp-{uuid.uuid4().hex[:10]}")

    def run(
        self,
        experiment_id: str,
        *,
        status: str = "FINISHED",
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        ended_hours_ago: float | None = 1.0,
        name: str | None = None,
        model: bool = False,
    ) -> str:
        now = datetime.now(UTC)
        end = now - timedelta(hours=ended_hours_ago) if ended_hours_ago is not None else None
        if status == "RUNNING":
            end = None
        run_id = self._gateway.add_run(
            experiment_id,
            status=status,
            start_time=(end or now) - timedelta(hours=0.5),
            end_time=end,
            tags={"mlflow.user": "tester", **(tags or {})},
            metrics=metrics,
            name=name,
        )
        if model:
            self._gateway.log_model(run_id, "model")
        return run_id

    def logged_model(self, experiment_id: str, run_id: str, name: str) -> str:
        return self._gateway.log_logged_model(run_id, name)


class MlflowSeeds:
    """Seeds the real server through MLflow's own client (never through the gateway)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def experiment(self) -> str:
        return str(self._client.create_experiment(f"exp-{uuid.uuid4().hex[:10]}"))

    def run(self, experiment_id: str, **kwargs: Any) -> str:
        return make_run(self._client, experiment_id, **kwargs)

    def logged_model(self, experiment_id: str, run_id: str, name: str) -> str:
        model = self._client.create_logged_model(experiment_id, name, source_run_id=run_id)
        return str(model.model_id)


def azure_like_client(uri: str) -> Any:
    """An MlflowClient refusing what Azure ML's endpoint may: status and time filters, the
    run filter on model versions, aliases, LoggedModels and restore (each as MLflow errs)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ENDPOINT_NOT_FOUND, INVALID_PARAMETER_VALUE

    def refuse(what: str, code: int = ENDPOINT_NOT_FOUND) -> MlflowException:
        return MlflowException(f"{what} is not supported", code)

    class AzureLike(MlflowClient):  # type: ignore[misc]
        def search_runs(self, *args: Any, filter_string: str = "", **kwargs: Any) -> Any:
            if "attributes." in filter_string:
                raise refuse(f"filter {filter_string!r}", INVALID_PARAMETER_VALUE)
            return super().search_runs(*args, filter_string=filter_string, **kwargs)

        def search_model_versions(self, filter_string: str | None = None, **kwargs: Any) -> Any:
            if "run_id" in (filter_string or ""):
                raise refuse(f"filter {filter_string!r}", INVALID_PARAMETER_VALUE)
            return super().search_model_versions(filter_string, **kwargs)

        def search_logged_models(self, *args: Any, **kwargs: Any) -> Any:
            raise refuse("search_logged_models")

        def set_registered_model_alias(self, *args: Any) -> Any:
            raise refuse("aliases")

        def get_model_version_by_alias(self, *args: Any) -> Any:
            raise refuse("aliases")

        def restore_run(self, *args: Any) -> Any:
            raise refuse("restore_run")

    return AzureLike(tracking_uri=uri, registry_uri=uri)


WORLDS = [
    pytest.param("memory", id="memory"),
    pytest.param("memory-azure-like", id="memory-azure-like"),
    pytest.param("mlflow", id="mlflow", marks=pytest.mark.integration),
    pytest.param("mlflow-azure-like", id="mlflow-azure-like", marks=pytest.mark.integration),
]


@pytest.fixture(params=WORLDS)
def world(request: pytest.FixtureRequest) -> World:
    kind: str = request.param
    azure_like = kind.endswith("azure-like")
    supports = Capabilities.azure_ml_like() if azure_like else Capabilities()
    if kind.startswith("memory"):
        memory = InMemoryGateway(capabilities=Capabilities.azure_ml_like() if azure_like else None)
        return World(kind, memory, MemorySeeds(memory), supports)
    from mlflow import MlflowClient

    from shared.tracking.mlflow_gateway import MlflowGateway

    uri = request.getfixturevalue("mlflow_server").uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    calls: Counter[str] = Counter()
    counted = Counted(azure_like_client(uri) if azure_like else client, calls)
    # Not told what the server refuses: the adapter must find out by itself.
    gateway = MlflowGateway(uri, client=counted, page_size=PAGE_SIZE)
    return World(kind, gateway, MlflowSeeds(client), supports, calls)
