"""Workspace resolution and discovery through azure-ai-ml's own MLClient.

Requests go through the SDK's real pipeline into an in-memory transport answering the
documented Workspaces - Get / List payloads; the assertions read what the SDK sent.
"""

from __future__ import annotations

import pytest

from shared.azure import credential as cred
from shared.azure.errors import AzureAccessDenied, AzureUnavailable, WorkspaceNotFound
from shared.azure.tracking_auth import tracking_credential
from shared.azure.workspace import (
    WorkspaceRef,
    WorkspaceResolver,
    list_workspaces,
    parse_scope,
    resolve_tracking_uri,
)
from tests.azure_support import (
    ARM,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    WORKSPACE_PATH,
    FakeAzure,
    StaticCredential,
    workspace_body,
)

REF = WorkspaceRef(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
# The api-version azure-ai-ml 1.35 uses for workspace operations (ServiceClient102024PreviewTsp).
API_VERSION = "2024-10-01-preview"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLClient writes AZUREML_CURRENT_CLOUD into the environment; azureml-mlflow caches
    service contexts per URI. Both are put back after each test."""
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    monkeypatch.setattr(_AzureMLServiceContextLoader, "_tracking_uri_to_service_context", {})


def test_arm_id_round_trip() -> None:
    assert WorkspaceRef.from_arm_id(WORKSPACE_PATH) == REF
    assert REF.arm_id == WORKSPACE_PATH
    assert WorkspaceRef.from_arm_id(WORKSPACE_PATH.lower()).name == WORKSPACE.lower()
    for bad in ("", "/subscriptions/x/resourceGroups/y", WORKSPACE_PATH + "/jobs/j"):
        with pytest.raises(ValueError, match="not a workspace ARM id"):
            WorkspaceRef.from_arm_id(bad)


def test_scope_parsing() -> None:
    assert parse_scope(f"/subscriptions/{SUBSCRIPTION}") == (SUBSCRIPTION, None)
    assert parse_scope(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg") == (SUBSCRIPTION, "rg")
    with pytest.raises(ValueError, match="not a discovery scope"):
        parse_scope("/tenants/x")


def test_tracking_uri_comes_from_workspaces_get() -> None:
    fake = FakeAzure().on("GET", WORKSPACE_PATH, (200, workspace_body()))
    credential = StaticCredential()

    uri = resolve_tracking_uri(credential, REF, transport=fake.transport())

    # MLflow 3 talks to the v2.0 API: azure-ai-ml rewrites the service's v1.0 URI for it.
    assert uri == f"azureml://eastus2.api.azureml.ms/mlflow/v2.0{WORKSPACE_PATH}"
    (request,) = fake.seen
    assert request.url == f"{ARM}{WORKSPACE_PATH}?api-version={API_VERSION}"
    assert request.headers["Authorization"] == f"Bearer {credential.token}"
    assert credential.scopes == [(cred.ARM_SCOPE,)]


def test_resolver_asks_once_per_workspace_and_hands_mlflow_the_credential() -> None:
    other = WorkspaceRef(SUBSCRIPTION, "rg-two", "ws-two")
    fake = (
        FakeAzure()
        .on("GET", WORKSPACE_PATH, (200, workspace_body()))
        .on("GET", other.arm_id, (200, workspace_body("rg-two", "ws-two", "westeurope")))
    )
    credential = StaticCredential()
    resolver = WorkspaceResolver(credential, transport=fake.transport())

    first = resolver.tracking_uri(REF)
    assert resolver.tracking_uri(REF) == first
    second = resolver.tracking_uri(other)

    assert second == f"azureml://westeurope.api.azureml.ms/mlflow/v2.0{other.arm_id}"
    assert [s.path for s in fake.seen] == [WORKSPACE_PATH, other.arm_id]
    assert resolver.known() == {REF: first, other: second}
    assert tracking_credential(first) is credential
    assert tracking_credential(second) is credential
    resolver.forget(REF)
    resolver.tracking_uri(REF)
    assert len(fake.seen) == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, WorkspaceNotFound),
        (403, AzureAccessDenied),
        (401, AzureAccessDenied),
        (503, AzureUnavailable),
    ],
)
def test_failures_become_the_projects_errors(status: int, error: type[Exception]) -> None:
    body = {"error": {"code": "Failed", "message": f"status {status}"}}
    fake = FakeAzure().on("GET", WORKSPACE_PATH, (status, body))
    with pytest.raises(error) as raised:
        resolve_tracking_uri(
            StaticCredential(), REF, transport=fake.transport(), retry_backoff_factor=0
        )
    assert WORKSPACE_PATH in str(raised.value)


def test_discovery_lists_a_subscription_across_pages() -> None:
    listing = (
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/workspaces"
    )
    next_link = f"{ARM}{listing}?api-version={API_VERSION}&$skiptoken=page2"

    def page(seen):
        if seen.query.get("$skiptoken") == ["page2"]:
            return 200, {"value": [workspace_body("rg-two", "hub-one", kind="Hub")]}
        return 200, {
            "value": [workspace_body(), workspace_body("workspace-5678", WORKSPACE)],
            "nextLink": next_link,
        }

    fake = FakeAzure().on("GET", listing, page)

    found = list_workspaces(
        StaticCredential(), f"/subscriptions/{SUBSCRIPTION}", transport=fake.transport()
    )

    assert [(w.ref.resource_group, w.ref.name, w.kind) for w in found] == [
        (RESOURCE_GROUP, WORKSPACE, "default"),
        ("workspace-5678", WORKSPACE, "default"),
        ("rg-two", "hub-one", "hub"),
    ]
    assert {w.location for w in found} == {"eastus2"}
    assert [s.query.get("$skiptoken") for s in fake.seen] == [None, ["page2"]]


def test_discovery_of_a_resource_group() -> None:
    listing = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
        "/providers/Microsoft.MachineLearningServices/workspaces"
    )
    fake = FakeAzure().on("GET", listing, (200, {"value": [workspace_body()]}))

    found = list_workspaces(
        StaticCredential(),
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}",
        transport=fake.transport(),
    )

    assert [w.ref for w in found] == [REF]
    assert fake.seen[0].query["api-version"] == [API_VERSION]
