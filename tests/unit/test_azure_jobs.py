"""Restoring a run on Azure ML: azure-ai-ml's `jobs.restore`, through its own MLClient.

The transport answers the documented Jobs - Get payload (azure-rest-api-specs,
machinelearningservices .../stable/2024-04-01/examples/Job/CommandJob/get.json, trimmed), the
workspace's discovery document and RunHistory; the assertions read what the SDK sent.
"""

from __future__ import annotations

import pytest

from shared.azure.errors import AzureAccessDenied
from shared.azure.jobs import restore_job
from shared.azure.workspace import WorkspaceRef, ml_client
from shared.errors import RunNotFound
from tests.azure_support import (
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    WORKSPACE_PATH,
    FakeAzure,
    Seen,
    StaticCredential,
    workspace_body,
)

REF = WorkspaceRef(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
RUN_ID = "0f3c1a2b4d5e6f708192a3b4c5d6e7f8"
EXPERIMENT = "churn-model"
JOB_PATH = f"{WORKSPACE_PATH}/jobs/{RUN_ID}"
API_HOST = "https://eastus2.api.azureml.ms"
HISTORY_PATH = f"/history/v1.0{WORKSPACE_PATH}/experiments/{EXPERIMENT}/runs/{RUN_ID}"


def job_body(archived: bool = True) -> dict[str, object]:
    return {
        "id": JOB_PATH,
        "name": RUN_ID,
        "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "properties": {
            "displayName": "gentle_kiwi",
            "status": "Completed",
            "experimentName": EXPERIMENT,
            "jobType": "Command",
            "isArchived": archived,
            "computeId": f"{WORKSPACE_PATH}/computes/cpu-cluster",
            "command": "python train.py",
            "environmentId": "azureml:sklearn-env:1",
            "tags": {"owner": "data-team"},
        },
        "systemData": {"createdAt": "2020-01-01T12:34:56.999Z", "createdByType": "User"},
    }


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    monkeypatch.setattr(_AzureMLServiceContextLoader, "_tracking_uri_to_service_context", {})


def azure_ml() -> FakeAzure:
    return (
        FakeAzure()
        .on("GET", JOB_PATH, (200, job_body()))
        .on("GET", WORKSPACE_PATH, (200, workspace_body()))
    )


def test_restore_clears_the_hidden_flag_in_run_history() -> None:
    fake = azure_ml()
    fake.on("GET", "/discovery", (200, {"api": API_HOST, "history": API_HOST}))
    fake.on("PATCH", HISTORY_PATH, (200, {"runId": RUN_ID, "hidden": False}))
    credential = StaticCredential()

    restore_job(REF, RUN_ID, credential=credential, transport=fake.transport())

    (patch,) = fake.calls("PATCH")
    assert patch.url.startswith(API_HOST + HISTORY_PATH)
    assert patch.json() == {"hidden": False}
    assert patch.headers["Authorization"] == f"Bearer {credential.token}"
    assert fake.calls("PUT") == []


def test_restore_falls_back_to_writing_is_archived_false() -> None:
    """Without RunHistory (no discovery document), the SDK writes the job back un-archived."""
    written: list[Seen] = []

    def put(seen: Seen) -> tuple[int, object]:
        written.append(seen)
        return 200, job_body(archived=False)

    fake = azure_ml().on("PUT", JOB_PATH, put)
    client = ml_client(
        StaticCredential(), SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, transport=fake.transport()
    )

    restore_job(client, RUN_ID)

    (request,) = written
    body = request.json()
    assert body["properties"]["isArchived"] is False
    assert body["properties"]["experimentName"] == EXPERIMENT
    assert fake.calls("PATCH") == []


def test_unknown_job_is_run_not_found() -> None:
    fake = FakeAzure()  # every request answers 404, as ARM does for a missing job
    with pytest.raises(RunNotFound) as raised:
        restore_job(REF, RUN_ID, credential=StaticCredential(), transport=fake.transport())
    assert raised.value.run_id == RUN_ID
    assert [s.method for s in fake.seen] == ["GET"]


def test_refused_identity_is_access_denied() -> None:
    fake = FakeAzure().on(
        "GET", JOB_PATH, (403, {"error": {"code": "AuthorizationFailed", "message": "no"}})
    )
    with pytest.raises(AzureAccessDenied):
        restore_job(REF, RUN_ID, credential=StaticCredential(), transport=fake.transport())


def test_a_workspace_ref_needs_a_credential() -> None:
    with pytest.raises(TypeError, match="needs a credential"):
        restore_job(REF, RUN_ID)
