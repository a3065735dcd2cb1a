"""MLflow's Databricks header provider is asked once, not on every request (MLflow 3.15's names:
mlflow/tracking/request_header/registry.py, databricks_request_header_provider.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlflow.tracking.request_header import registry
from mlflow.tracking.request_header.databricks_request_header_provider import (
    DatabricksRequestHeaderProvider,
)
from mlflow.tracking.request_header.default_request_header_provider import (
    DefaultRequestHeaderProvider,
)
from mlflow.utils import databricks_utils

from shared.tracking.request_headers import settle_databricks_headers


@pytest.fixture(autouse=True)
def providers() -> Iterator[list[object]]:
    """MLflow's registry of providers as it was, put back after each test."""
    listed: list[object] = registry._request_header_provider_registry._registry
    before = list(listed)
    # As MLflow registers it, whatever an earlier test or gateway in this process settled.
    listed[:] = [
        DatabricksRequestHeaderProvider() if type(p).__name__ == "_NotDatabricks" else p
        for p in before
    ]
    yield listed
    listed[:] = before


def probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts MLflow's Databricks probes (each a failed import outside Databricks)."""
    asked: list[str] = []
    for name in ("is_in_cluster", "is_in_databricks_notebook", "is_in_databricks_job"):
        real = getattr(databricks_utils, name)

        def probe(*args: object, _real: object = real, _name: str = name) -> object:
            asked.append(_name)
            return _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(databricks_utils, name, probe)
    return asked


def test_outside_databricks_the_probes_run_once_and_the_headers_are_unchanged(
    monkeypatch: pytest.MonkeyPatch, providers: list[object]
) -> None:
    before = registry.resolve_request_headers()
    asked = probes(monkeypatch)

    assert settle_databricks_headers() is True
    once = len(asked)
    assert once >= 1
    for _ in range(5):
        assert registry.resolve_request_headers() == before  # MLflow's User-Agent, as before
    assert len(asked) == once, asked
    assert not any(isinstance(p, DatabricksRequestHeaderProvider) for p in providers)
    # The other providers are still asked.
    assert any(isinstance(p, DefaultRequestHeaderProvider) for p in providers)
    assert "User-Agent" in before


def test_settling_twice_changes_nothing_more(providers: list[object]) -> None:
    assert settle_databricks_headers() is True
    settled = list(providers)
    assert settle_databricks_headers() is True
    assert providers == settled


def test_on_databricks_the_provider_is_kept(
    monkeypatch: pytest.MonkeyPatch, providers: list[object]
) -> None:
    monkeypatch.setattr(DatabricksRequestHeaderProvider, "in_context", lambda self: True)
    monkeypatch.setattr(
        DatabricksRequestHeaderProvider, "request_headers", lambda self: {"cluster_id": "c1"}
    )

    assert settle_databricks_headers() is False
    assert any(isinstance(p, DatabricksRequestHeaderProvider) for p in providers)
    assert registry.resolve_request_headers()["cluster_id"] == "c1"


def test_a_provider_that_raises_is_kept_as_mlflow_would(
    monkeypatch: pytest.MonkeyPatch, providers: list[object]
) -> None:
    def broken(self: object) -> bool:
        raise RuntimeError("probe failed")

    monkeypatch.setattr(DatabricksRequestHeaderProvider, "in_context", broken)
    assert settle_databricks_headers() is False
    assert any(isinstance(p, DatabricksRequestHeaderProvider) for p in providers)


def test_the_gateway_settles_the_provider(providers: list[object]) -> None:
    from shared.tracking.mlflow_gateway import MlflowGateway

    MlflowGateway("http://127.0.0.1:9")
    assert not any(isinstance(p, DatabricksRequestHeaderProvider) for p in providers)
