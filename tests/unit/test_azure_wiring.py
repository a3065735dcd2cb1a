"""The Azure parts wired into the app: one credential, the workspace from its coordinates,
`mlgov check`, restore through azure-ai-ml, and which decisions become governance events.

Azure answers through azure-core's own transport over an in-memory adapter with the
documented payloads (`tests/azure_support.py`); with no identity, nothing is injected and the
session's network guard fails any attempt to leave loopback (IMDS, login, ARM).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.identity import (
    ChainedTokenCredential,
    DeviceCodeCredential,
    InteractiveBrowserCredential,
    ManagedIdentityCredential,
)

from shared import tags as T
from shared.app import EXIT_INVALID, EXIT_OK
from shared.app.azure import AzureSeam, AzureServices, process_azure, use_azure
from shared.app.decision_events import GUARD_SUBJECT, events_of
from shared.azure.credential import ARM_SCOPE
from shared.azure.errors import CredentialUnavailable
from shared.azure.tracking_auth import tracking_credential
from shared.bootstrap import build_app, build_gateway, reset_host_app
from shared.cli import main
from shared.notify.sinks import Channel, MemoryCardSink
from shared.settings import load_settings
from shared.tracking.capabilities import Capabilities
from shared.tracking.memory import InMemoryGateway
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
from tests.event_samples import run_event
from tests.support import NOW

ROOT = Path(__file__).resolve().parents[2]
RESOLVED = f"azureml://eastus2.api.azureml.ms/mlflow/v2.0{WORKSPACE_PATH}"
COORDINATES = {
    "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
    "AZURE_ML_WORKSPACE_RESOURCE_GROUP": RESOURCE_GROUP,
    "AZURE_ML_WORKSPACE_NAME": WORKSPACE,
}
RUN_ID = "0f3c1a2b4d5e6f708192a3b4c5d6e7f8"
EXPERIMENT = "churn-model"
API_HOST = "https://eastus2.api.azureml.ms"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No identity and no tracking settings in the environment, no az/azd on PATH, a fresh
    azureml-mlflow context cache; MLflow's process tracking URI is put back afterwards."""
    import mlflow
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    for key in list(os.environ):
        if key.startswith(("AZURE_", "IDENTITY_", "MSI_", "GOVERNANCE_", "MLFLOW_TRACKING")):
            monkeypatch.delenv(key)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
    monkeypatch.chdir(tmp_path)  # no ./mlgov.db here
    monkeypatch.setattr(_AzureMLServiceContextLoader, "_tracking_uri_to_service_context", {})
    previous = mlflow.get_tracking_uri() if "MLFLOW_TRACKING_URI" in os.environ else None
    reset_host_app()
    yield monkeypatch
    reset_host_app()
    mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def coordinates(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in COORDINATES.items():
        monkeypatch.setenv(key, value)


def azure_ml() -> FakeAzure:
    return FakeAzure().on("GET", WORKSPACE_PATH, (200, workspace_body()))


# -- the credential -------------------------------------------------------------------------


def _links(credential: object) -> list[type]:
    assert isinstance(credential, ChainedTokenCredential)
    return [type(c) for c in credential.credentials]


def test_the_apps_credential_never_prompts_and_skips_imds_off_app_service(isolated) -> None:
    settings = load_settings(dict(COORDINATES))
    links = _links(process_azure(settings).credential)
    assert ManagedIdentityCredential not in links
    assert not set(links) & {InteractiveBrowserCredential, DeviceCodeCredential}
    # One credential per process: every caller gets the same object.
    assert process_azure(settings).credential is process_azure(settings).credential


def test_in_app_service_the_chain_is_the_managed_identity_alone(isolated) -> None:
    isolated.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token/")
    isolated.setenv("IDENTITY_HEADER", "header-value")
    settings = load_settings({**COORDINATES, "AZURE_CLIENT_ID": SUBSCRIPTION})
    assert _links(process_azure(settings).credential) == [ManagedIdentityCredential]


# -- no identity: every verb and function fails at once, naming what to configure ---------


def _event_file(tmp_path: Path) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(run_event(RUN_ID, "1", EXPERIMENT)))
    return str(path)


@pytest.mark.parametrize(
    "argv",
    [["sweep"], ["sweep", "--dry-run"], ["summary"], ["restore"], ["handle-event", "EVENT"]],
)
def test_every_verb_without_an_identity_exits_2_naming_what_to_configure(
    isolated, tmp_path, capsys, argv
) -> None:
    coordinates(isolated)
    argv = [_event_file(tmp_path) if a == "EVENT" else a for a in argv]

    code = main(argv)

    err = capsys.readouterr().err
    assert code == EXIT_INVALID
    assert "no usable Azure identity" in err
    assert "az login" in err
    assert "AZURE_CLIENT_SECRET" in err
    assert not (tmp_path / "mlgov.db").exists()


def test_check_without_an_identity_reports_it_and_exits_2(isolated, capsys) -> None:
    coordinates(isolated)

    code = main(["check", "--json"])

    shown = json.loads(capsys.readouterr().out)
    assert code == EXIT_INVALID
    assert shown["azure"]["token"]["ok"] is False
    assert shown["azure"]["token"]["scope"] == ARM_SCOPE
    assert shown["azure"]["tracking_uri"] is None
    (problem,) = shown["azure"]["problems"]
    assert "az login" in problem


@pytest.mark.parametrize("function", ["scheduled_sweep", "on_run_event"])
def test_each_function_without_an_identity_raises_naming_what_to_configure(
    isolated, function
) -> None:
    from azure.functions.timer import TimerRequest

    from functions.scheduled_sweep import scheduled_sweep
    from tests.estate_support import Collected
    from tests.event_samples import event_grid_event, on_run_event_function

    coordinates(isolated)
    if function == "scheduled_sweep":
        timer = scheduled_sweep.build().get_user_function()
        invoke = lambda: timer(TimerRequest(past_due=False), Collected())  # noqa: E731
    else:
        event = event_grid_event(run_event(RUN_ID, "1", EXPERIMENT))
        invoke = lambda: on_run_event_function()(event)  # noqa: E731
    with pytest.raises(CredentialUnavailable) as raised:
        invoke()
    assert "az login" in str(raised.value)
    assert raised.value.setting == "AZURE_CLIENT_ID"


def test_importing_function_app_reads_nothing_and_loads_no_azure_sdk() -> None:
    code = (
        "import sys, function_app\n"
        "heavy = [m for m in sys.modules if m.startswith(('azure.ai.ml', 'azure.identity',"
        " 'azure.eventgrid', 'azureml', 'mlflow'))]\n"
        "print(heavy)\n"
    )
    env = {**os.environ, **COORDINATES, "GOVERNANCE_DRY_RUN": "not-a-bool"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the workspace from its coordinates ----------------------------------------------------


def test_build_gateway_resolves_once_and_points_mlflow_at_the_workspace(isolated) -> None:
    import mlflow

    fake = azure_ml()
    credential = StaticCredential()
    services = AzureServices(None, AzureSeam(credential=credential, transport=fake.transport()))
    settings = load_settings(dict(COORDINATES))

    gateway = build_gateway(settings, azure=services)
    again = build_gateway(settings, azure=services)

    assert gateway.tracking_uri == again.tracking_uri == RESOLVED
    assert [s.path for s in fake.seen] == [WORKSPACE_PATH]
    assert fake.seen[0].headers["Authorization"] == f"Bearer {credential.token}"
    assert mlflow.get_tracking_uri() == RESOLVED
    # MLflow's azureml:// client takes its tokens from the app's credential.
    assert tracking_credential(RESOLVED) is credential


def test_an_azureml_tracking_uri_gets_the_apps_credential_before_the_first_client(
    isolated,
) -> None:
    credential = StaticCredential()
    uri = f"azureml://westeurope.api.azureml.ms/mlflow/v2.0{WORKSPACE_PATH}"
    settings = load_settings({"MLFLOW_TRACKING_URI": uri})
    services = AzureServices(None, AzureSeam(credential=credential))

    gateway = build_gateway(settings, azure=services)

    assert gateway.tracking_uri == uri
    assert tracking_credential(uri) is credential
    assert credential.scopes == [(ARM_SCOPE,)]  # the probe, answered at once


def test_check_with_only_coordinates_reports_the_resolved_uri_and_the_credential(
    isolated, capsys
) -> None:
    coordinates(isolated)
    fake = azure_ml()
    credential = StaticCredential()
    with use_azure(AzureSeam(credential=credential, transport=fake.transport())):
        code = main(["check", "--json"])
        shown = json.loads(capsys.readouterr().out)
        text_code = main(["check"])
        text = capsys.readouterr().out

    assert (code, text_code) == (EXIT_OK, EXIT_OK)
    azure = shown["azure"]
    assert azure["credential"] == "StaticCredential (given to the app)"
    assert azure["token"]["ok"] is True
    assert azure["token"]["scope"] == ARM_SCOPE
    assert azure["tracking_uri"] == RESOLVED
    assert azure["tracking_uri_resolved"] is True
    assert azure["problems"] == []
    assert shown["tracking_uri"] == RESOLVED
    assert shown["embedded_store"] is False
    assert f"{RESOLVED}  (resolved from the workspace)" in text
    assert "StaticCredential (given to the app)" in text
    assert fake.seen[0].headers["Authorization"] == f"Bearer {credential.token}"


def test_check_names_a_workspace_that_is_not_there(isolated, capsys) -> None:
    coordinates(isolated)
    fake = FakeAzure()  # ARM answers 404 for every path
    with use_azure(AzureSeam(credential=StaticCredential(), transport=fake.transport())):
        code = main(["check", "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert code == EXIT_INVALID
    (problem,) = shown["azure"]["problems"]
    assert WORKSPACE_PATH in problem
    assert shown["azure"]["tracking_uri"] is None


def test_check_without_azure_settings_has_no_azure_section(isolated, capsys) -> None:
    isolated.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert main(["check", "--json"]) == EXIT_OK
    assert "azure" not in json.loads(capsys.readouterr().out)


# -- restore on Azure ML ---------------------------------------------------------------------


def _job_body(run_id: str) -> dict[str, object]:
    # Jobs - Get (azure-rest-api-specs, stable/2024-04-01/examples/Job/CommandJob/get.json,
    # trimmed), as in tests/unit/test_azure_jobs.py.
    return {
        "id": f"{WORKSPACE_PATH}/jobs/{run_id}",
        "name": run_id,
        "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "properties": {
            "displayName": "gentle_kiwi",
            "status": "Failed",
            "experimentName": EXPERIMENT,
            "jobType": "Command",
            "isArchived": True,
            "computeId": f"{WORKSPACE_PATH}/computes/cpu-cluster",
            "command": "python train.py",
            "environmentId": "azureml:sklearn-env:1",
        },
        "systemData": {"createdAt": "2020-01-01T12:34:56.999Z", "createdByType": "User"},
    }


def _deleted_run(gateway: InMemoryGateway) -> tuple[str, str]:
    experiment_id = gateway.create_experiment(EXPERIMENT)
    run_id = gateway.add_run(
        experiment_id,
        status="FAILED",
        end_time=NOW,
        deleted=True,
        tags={T.DELETED_REASON: "failed run past grace period", T.DELETED_AT: NOW.isoformat()},
    )
    return experiment_id, run_id


def _restoring_app(gateway: InMemoryGateway, fake: FakeAzure, **env: str):
    values = {**COORDINATES, "GOVERNANCE_EXPERIMENTS": EXPERIMENT, **env}
    seam = AzureSeam(credential=StaticCredential(), transport=fake.transport())
    return build_app(
        load_settings(values),
        gateway=gateway,
        channel=Channel(MemoryCardSink(), "memory"),
        clock=lambda: NOW,
        azure=seam,
    )


def test_restore_goes_through_azure_ml_where_mlflow_cannot_and_says_so(isolated) -> None:
    gateway = InMemoryGateway(capabilities=Capabilities(restore=False), clock=lambda: NOW)
    experiment_id, run_id = _deleted_run(gateway)

    def unhide(seen: Seen) -> tuple[int, object]:
        # RunHistory and MLflow are one store on Azure ML: un-hiding the run there makes it
        # active for MLflow too (here: the in-memory store, its restore switched back on).
        gateway.capabilities = Capabilities()
        gateway.restore_run(run_id)
        return 200, {"runId": run_id, "hidden": seen.json()["hidden"]}

    # The MLflow run id is the job's name on Azure ML.
    history = f"/history/v1.0{WORKSPACE_PATH}/experiments/{EXPERIMENT}/runs/{run_id}"
    fake = (
        FakeAzure()
        .on("GET", f"{WORKSPACE_PATH}/jobs/{run_id}", (200, _job_body(run_id)))
        .on("GET", WORKSPACE_PATH, (200, workspace_body()))
        .on("GET", "/discovery", (200, {"api": API_HOST, "history": API_HOST}))
        .on("PATCH", history, unhide)
    )

    outcome = _restoring_app(gateway, fake).restore(24)

    assert outcome.unsupported is None
    assert outcome.exit_code == EXIT_OK
    (record,) = outcome.report.records
    assert (record.run_id, record.outcome) == (run_id, "applied")
    assert record.details["restored_via"] == "azure-ai-ml jobs.restore"
    assert "the tracking server cannot restore runs" in record.reason
    (patch,) = fake.calls("PATCH")
    assert patch.json() == {"hidden": False}
    tags = gateway.get_run(run_id).tags
    assert T.RESTORED_AT in tags
    assert T.DELETED_REASON not in tags
    assert outcome.report.to_dict()["restore"]["restored"] == 1  # type: ignore[index]
    # The restored run is an applied decision: it would be published as RunRestored.
    (event,) = events_of(outcome.report)
    assert (event.type, event.subject) == (
        "mlgov.RunRestored",
        f"experiments/{experiment_id}/runs/{run_id}",
    )


def test_a_job_azure_ml_does_not_have_is_skipped(isolated) -> None:
    gateway = InMemoryGateway(capabilities=Capabilities(restore=False), clock=lambda: NOW)
    _deleted_run(gateway)

    outcome = _restoring_app(gateway, FakeAzure()).restore(24)

    (record,) = outcome.report.records
    assert record.outcome == "skipped"
    assert "azure-ai-ml" in record.reason
    assert outcome.exit_code == EXIT_OK


def test_a_server_that_restores_is_used_and_azure_is_never_asked(isolated) -> None:
    gateway = InMemoryGateway(clock=lambda: NOW)
    _deleted_run(gateway)
    fake = FakeAzure()

    outcome = _restoring_app(gateway, fake).restore(24)

    (record,) = outcome.report.records
    assert record.outcome == "applied"
    assert "restored_via" not in record.details
    assert fake.seen == []


# -- which decisions are governance events ---------------------------------------------------


def test_applied_decisions_map_to_their_event_types_and_dry_runs_to_none(isolated) -> None:
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    old = gateway.add_run(experiment_id, status="FAILED", end_time=NOW.replace(year=2025))
    untagged = gateway.add_run(experiment_id, end_time=NOW)
    env = {"GOVERNANCE_CLEANUP_STATUSES": "FAILED", "GOVERNANCE_REQUIRED_TAGS": "owner"}

    dry = _restoring_app(gateway, FakeAzure(), GOVERNANCE_DRY_RUN="true", **env).sweep()
    assert events_of(dry.report) == []

    report = _restoring_app(gateway, FakeAzure(), **env).sweep().report
    by_type = {e.type: e for e in events_of(report)}
    assert set(by_type) == {"mlgov.RunDeleted", "mlgov.RunNoncompliant"}
    deleted = by_type["mlgov.RunDeleted"]
    assert deleted.subject == f"experiments/{experiment_id}/runs/{old}"
    assert (deleted.data["run_id"], deleted.data["outcome"]) == (old, "applied")
    assert deleted.data["command"] == "sweep"
    noncompliant = by_type["mlgov.RunNoncompliant"]
    assert noncompliant.subject == f"experiments/{experiment_id}/runs/{untagged}"


def test_a_tripped_guard_is_an_event(isolated) -> None:
    gateway = InMemoryGateway(clock=lambda: NOW)
    experiment_id = gateway.create_experiment(EXPERIMENT)
    for _ in range(3):
        gateway.add_run(experiment_id, status="FAILED", end_time=NOW.replace(year=2025))
    env = {"GOVERNANCE_CLEANUP_STATUSES": "FAILED", "GOVERNANCE_CLEANUP_MAX_RUNS": "2"}

    report = _restoring_app(gateway, FakeAzure(), **env).sweep().report

    (event,) = events_of(report)
    assert (event.type, event.subject) == ("mlgov.CleanupGuardTripped", GUARD_SUBJECT)
    assert event.data["details"]["candidates"] == "3"  # type: ignore[index]
