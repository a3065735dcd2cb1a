"""Shared fixtures: a real `mlflow server` on loopback for the whole session."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

# Any socket connect outside 127.0.0.0/8 and ::1 fails the test that made it.
pytest_plugins = ["tests.network_guard"]

# The client must not spend minutes retrying against a server a test has stopped on purpose.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# MLflow prints a "View run" link on stdout when a run ends; tests read stdout as JSON.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
# No telemetry from tests: its background thread unsets _MLFLOW_TELEMETRY_SESSION_ID while
# requests iterates os.environ, which fails a request with KeyError now and then.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The test servers run no MLflow server jobs: each would start a dozen job-runner processes
# (huey consumers, mlflow/server/__init__.py) that mlgov never uses.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    root: Path


def _start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_bin) if mlflow_bin.exists() else "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--workers",
        "1",
    ]
    log = (root / "server.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root)


def stop_server(process: subprocess.Popen[bytes], root: Path) -> None:
    """Stop a server `_start_server` started, and drop its artifacts."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(root / "artifacts", ignore_errors=True)


def _wait_healthy(uri: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(
        f"mlflow server not healthy in time: {log.read_text(errors='replace')[-3000:]}"
    )


INTEGRATION_DIRS = ("integration", "infra")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests under tests/integration and tests/infra are `integration`: they need the MLflow
    server (or an installed tool), so `pytest -m "not integration"` runs in seconds."""
    for item in items:
        if any(part in INTEGRATION_DIRS for part in Path(str(item.path)).parts[-3:-1]):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def _server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server with a model registry (SQLite, local artifacts)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    process = _start_server(root, port)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(uri, process, root / "server.log")
        yield MlflowServer(uri=uri, root=root)
    finally:
        stop_server(process, root)


@pytest.fixture
def mlflow_server(request: pytest.FixtureRequest, _server_process: MlflowServer) -> MlflowServer:
    """The session's server; only `integration` tests may use it, so that
    `pytest -m "not integration"` never starts one."""
    if request.node.get_closest_marker("integration") is None:
        pytest.fail("this test uses the MLflow server: mark it `integration`")
    return _server_process


@pytest.fixture
def client(mlflow_server: MlflowServer):  # -> MlflowClient
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)


@pytest.fixture
def experiment(client) -> tuple[str, str]:
    """A fresh experiment (id, name) per test, so tests never see each other's runs."""
    name = f"exp-{uuid.uuid4().hex[:10]}"
    return client.create_experiment(name), name


@pytest.fixture
def app_env(monkeypatch, mlflow_server, experiment):
    """The environment the CLI reads (and the Functions host builds its App from): the test
    server and this test's experiment in scope, no other governance setting. The host's App
    is forgotten before and after, so it is built from this environment on first use."""
    from shared.bootstrap import reset_host_app

    for key in list(os.environ):
        if key.startswith("GOVERNANCE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("GOVERNANCE_EXPERIMENTS", experiment[1])
    reset_host_app()
    yield monkeypatch
    reset_host_app()
