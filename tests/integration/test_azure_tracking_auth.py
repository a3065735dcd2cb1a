"""MLflow's `azureml://` client takes its tokens from the app's credential.

A local HTTPS server stands in for the workspace's regional MLflow host: the tracking URI
names 127.0.0.1 as its host, and azureml-mlflow's own store and registry send the request,
so what arrives shows the credential MLflow really used. No other host is contacted.
"""

from __future__ import annotations

import uuid

import pytest
from mlflow import MlflowClient
from werkzeug import Request

from shared.azure import credential as cred
from shared.azure.tracking_auth import (
    configure_tracking_auth,
    is_azureml_uri,
    parse_tracking_uri,
    tracking_credential,
)
from tests.azure_support import RESOURCE_GROUP, SUBSCRIPTION, StaticCredential
from tests.receiver import receiver_fixture, tls_files_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def fresh_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """azureml-mlflow's per-URI service-context cache, emptied for each test."""
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    monkeypatch.setattr(_AzureMLServiceContextLoader, "_tracking_uri_to_service_context", {})


def _workspace_path(name: str) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{name}"
    )


def _uri(host: str) -> tuple[str, str]:
    # A workspace name per test: MLflow caches stores per URI for the whole process.
    path = _workspace_path(f"ws-{uuid.uuid4().hex[:8]}")
    return f"azureml://{host}/mlflow/v2.0{path}", path


def test_parse_tracking_uri() -> None:
    uri, path = _uri("eastus2.api.azureml.ms")
    target = parse_tracking_uri(uri)
    assert (target.host, target.subscription_id, target.resource_group) == (
        "eastus2.api.azureml.ms",
        SUBSCRIPTION,
        RESOURCE_GROUP,
    )
    assert target.workspace_name == path.rsplit("/", 1)[1]
    assert is_azureml_uri(uri)
    assert not is_azureml_uri("http://127.0.0.1:5000")
    with pytest.raises(ValueError, match="not an Azure ML workspace tracking URI"):
        parse_tracking_uri("azureml://eastus2.api.azureml.ms/mlflow/v2.0/subscriptions/x")


def test_the_store_mlflow_builds_holds_our_credential() -> None:
    uri, path = _uri("eastus2.api.azureml.ms")
    credential = StaticCredential()
    configure_tracking_auth(uri, credential)

    store = MlflowClient(tracking_uri=uri)._tracking_client.store
    creds = store.get_host_creds()

    assert type(store).__name__ == "AzureMLRestStore"
    assert store.service_context.auth is credential
    assert creds.host == f"https://eastus2.api.azureml.ms/mlflow/v2.0{path}"
    assert creds.token == credential.token
    assert credential.scopes == [(cred.ARM_SCOPE,)]


def test_a_context_azureml_mlflow_built_itself_gets_our_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client made before configuration holds azureml-mlflow's own prompting chain; after
    it, that same client asks our credential."""
    from azure.identity import DeviceCodeCredential

    # The cloud named, so azureml-mlflow builds its default context without fetching metadata.
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    uri, _ = _uri("eastus2.api.azureml.ms")
    store = MlflowClient(tracking_uri=uri)._tracking_client.store
    assert any(isinstance(c, DeviceCodeCredential) for c in store.service_context.auth.credentials)

    credential = StaticCredential()
    configure_tracking_auth(uri, credential)

    assert tracking_credential(uri) is credential
    assert store.get_host_creds().token == credential.token


def test_unknown_cloud_is_refused() -> None:
    uri, _ = _uri("eastus2.api.azureml.ms")
    with pytest.raises(ValueError, match="unknown Azure cloud 'Mars'"):
        configure_tracking_auth(uri, StaticCredential(), cloud="Mars")
    assert tracking_credential(uri) is None


def test_tracking_and_registry_requests_carry_our_token(receiver) -> None:
    host = receiver.server.url_for("/").split("//", 1)[1].rstrip("/")
    uri, path = _uri(host)
    credential = StaticCredential("token-from-the-app-credential")
    configure_tracking_auth(uri, credential)
    prefix = f"/mlflow/v2.0{path}/api/2.0/mlflow"
    receiver.server.expect_request(f"{prefix}/experiments/search").respond_with_json(
        {"experiments": []}
    )
    receiver.server.expect_request(f"{prefix}/registered-models/search").respond_with_json(
        {"registered_models": []}
    )

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert list(client.search_experiments()) == []
    assert list(client.search_registered_models()) == []

    requests: list[Request] = [request for request, _ in receiver.server.log]
    assert [r.path for r in requests] == [
        f"{prefix}/experiments/search",
        f"{prefix}/registered-models/search",
    ]
    assert {r.headers.get("Authorization") for r in requests} == {
        "Bearer token-from-the-app-credential"
    }
    assert set(credential.scopes) == {(cred.ARM_SCOPE,)}
