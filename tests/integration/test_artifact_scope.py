"""Two workspaces in one process: each gateway's artifact listing goes to its own workspace.

azureml-mlflow's artifact repository names in its request the workspace of MLflow's *default*
client (`get_service_context`, azureml/mlflow/_store/artifact/utils.py), not the run's. A
local HTTPS server stands in for the workspaces' regional host (both `azureml://` tracking
URIs name 127.0.0.1): MLflow's azureml store, azureml-mlflow's artifact repository and its
run-history client send the requests, so the paths that arrive show which workspace each
listing really asked. The process-wide URI is a third workspace's throughout, as a member
resolved last would leave it without the scope.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import pytest
from mlflow.tracking._tracking_service import utils

from shared.azure.tracking_auth import configure_tracking_auth
from shared.model import Run
from shared.tracking.mlflow_gateway import MlflowGateway
from tests.azure_support import RESOURCE_GROUP, SUBSCRIPTION, StaticCredential
from tests.receiver import receiver_fixture, tls_files_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
EXPERIMENT = "churn"


@dataclass(frozen=True)
class Ws:
    name: str
    uri: str
    path: str
    run_id: str

    @property
    def listing(self) -> str:
        """Where azureml-mlflow lists this workspace's run artifacts (`list_in_container`,
        azureml/mlflow/_restclient/run_artifact/operations/_run_artifacts_operations.py)."""
        return f"/history/v1.0{self.path}/experiments/{EXPERIMENT}/runs/{self.run_id}/artifacts"


@pytest.fixture(autouse=True)
def fresh_loader(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """azureml-mlflow's per-URI service contexts emptied; MLflow's process URI put back."""
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    monkeypatch.setattr(_AzureMLServiceContextLoader, "_tracking_uri_to_service_context", {})
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    saved = utils._tracking_uri
    yield
    mlflow.set_tracking_uri(saved)  # type: ignore[arg-type]


def workspace(receiver, name: str) -> Ws:  # type: ignore[no-untyped-def]
    """A workspace served by the receiver: its run, readable, with an MLmodel under model/."""
    host = receiver.server.url_for("/").split("//", 1)[1].rstrip("/")
    # A name per test: MLflow caches its stores per URI for the whole process.
    name = f"{name}-{uuid.uuid4().hex[:6]}"
    path = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{name}"
    )
    ws = Ws(name, f"azureml://{host}/mlflow/v2.0{path}", path, uuid.uuid4().hex)
    configure_tracking_auth(ws.uri, StaticCredential())
    api = f"/mlflow/v2.0{path}/api/2.0/mlflow"
    receiver.server.expect_request(f"{api}/runs/get").respond_with_json(
        {"run": run_json(ws.run_id)}
    )
    receiver.server.expect_request(f"{api}/logged-models/search").respond_with_json({"models": []})
    receiver.server.expect_request(ws.listing).respond_with_json(
        {"value": [{"path": "model/MLmodel"}, {"path": "model/model.pkl"}], "nextLink": None}
    )
    return ws


def run_json(run_id: str) -> dict[str, object]:
    """A finished run as Azure ML's MLflow endpoint returns it (`runs/get`)."""
    return {
        "info": {
            "run_id": run_id,
            "run_uuid": run_id,
            "experiment_id": "1",
            "run_name": "trial",
            "user_id": "ben",
            "status": "FINISHED",
            "start_time": 1_700_000_000_000,
            "end_time": 1_700_000_100_000,
            # Azure ML's form: the run's experiment and id, the workspace left to the client.
            "artifact_uri": f"azureml://experiments/{EXPERIMENT}/runs/{run_id}/artifacts",
            "lifecycle_stage": "active",
        },
        "data": {"metrics": [], "params": [], "tags": []},
    }


def listings(receiver) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.path for r, _ in receiver.server.log if r.path.startswith("/history/")]


@pytest.fixture
def two(receiver) -> Iterator[tuple[Ws, Ws]]:  # type: ignore[no-untyped-def]
    a, b = workspace(receiver, "mlw-a"), workspace(receiver, "mlw-b")
    # What a third member's resolution (or any earlier `set_tracking_uri`) left behind.
    other = workspace(receiver, "mlw-last")
    mlflow.set_tracking_uri(other.uri)
    yield a, b
    assert utils._tracking_uri == other.uri  # the process's own setting, untouched after


def test_each_gateways_model_folder_is_listed_in_its_own_workspace(receiver, two) -> None:
    a, b = two
    runs: dict[str, Run] = {}
    for ws in (a, b):
        gateway = MlflowGateway(ws.uri)
        runs[ws.name] = gateway.get_run(ws.run_id)  # remembers the run's artifact URI
        source = gateway.find_model_source(runs[ws.name], "model")
        assert source is not None
        assert source.source == f"runs:/{ws.run_id}/model"

    assert listings(receiver) == [a.listing, b.listing]


def test_mlflows_own_listing_of_a_run_not_read_before_goes_to_its_workspace(receiver, two) -> None:
    """A gateway that has not read the run lists through `MlflowClient.list_artifacts`
    (`runs:/` resolved by MLflow, then azureml-mlflow's repository)."""
    a, b = two
    for ws in (b, a):
        run = MlflowGateway(ws.uri).get_run(ws.run_id)
        source = MlflowGateway(ws.uri).find_model_source(run, "model")
        assert source is not None

    assert listings(receiver) == [b.listing, a.listing]


def test_listings_of_two_workspaces_at_once_each_go_to_their_own(receiver, two) -> None:
    a, b = two
    gateways = {ws.name: MlflowGateway(ws.uri) for ws in (a, b)}
    runs = {ws.name: gateways[ws.name].get_run(ws.run_id) for ws in (a, b)}
    errors: list[BaseException] = []

    def list_models(ws: Ws) -> None:
        try:
            for _ in range(5):
                assert gateways[ws.name].find_model_source(runs[ws.name], "model") is not None
        except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=list_models, args=(ws,)) for ws in (a, b, a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    seen = listings(receiver)
    assert sorted(set(seen)) == sorted({a.listing, b.listing})
    assert seen.count(a.listing) == seen.count(b.listing) == 10
