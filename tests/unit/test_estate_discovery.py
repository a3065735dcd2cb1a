"""Discovery of a scope through azure-ai-ml: hubs are left out, their projects governed.

`MLClient.workspaces.list` reports every kind of workspace (default, hub, project, feature
store). A hub is a resource container whose projects hold the jobs and so the MLflow runs;
it holds none itself, so it is not a member. The SDK's own client lists, on a transport that
answers the documented list payload.
"""

from __future__ import annotations

import logging

import pytest

from shared.app.azure import AzureSeam, AzureServices
from shared.bootstrap import discovery
from shared.estate import Estate
from tests.azure_support import (
    RESOURCE_GROUP,
    SUBSCRIPTION,
    FakeAzure,
    StaticCredential,
    workspace_body,
)
from tests.support import settings

LISTING = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/workspaces"


def hub_and_its_project() -> list[dict[str, object]]:
    """A hub and a project under it, as `Workspaces - List By Subscription` returns them
    (azure-rest-api-specs machinelearningservices examples; `kind` "Hub" / "Project", the
    project naming its hub in `properties.hubResourceId`)."""
    hub = workspace_body(name="hub-team", kind="Hub")
    project = workspace_body(name="proj-churn", kind="Project")
    project["properties"]["hubResourceId"] = hub["id"]  # type: ignore[index]
    return [hub, project]


def scope_estate(listed: list[dict[str, object]]) -> tuple[Estate, FakeAzure]:
    fake = FakeAzure().on("GET", LISTING, (200, {"value": listed}))
    services = AzureServices(None, AzureSeam(StaticCredential(), fake.transport()))
    the_settings = settings(workspace_scope=f"/subscriptions/{SUBSCRIPTION}")
    discover = discovery(the_settings, services)
    assert discover is not None
    return Estate.from_settings(the_settings, discover), fake


def test_a_hub_is_not_governed_and_its_project_is(caplog: pytest.LogCaptureFixture) -> None:
    listed = [
        workspace_body(name="mlw-classic"),  # kind "Default"
        *hub_and_its_project(),
        workspace_body(name="fs-features", kind="FeatureStore"),
    ]

    with caplog.at_level(logging.INFO, logger="shared.bootstrap.estate"):
        estate, fake = scope_estate(listed)

    assert [m.name for m in estate] == ["mlw-classic", "proj-churn", "fs-features"]
    assert {m.source for m in estate} == {"scope"}
    assert [c.path for c in fake.calls("GET")] == [LISTING]
    (line,) = [r.getMessage() for r in caplog.records if "hub-team" in r.getMessage()]
    assert "is a hub" in line
    assert "holds no MLflow runs" in line
    assert f"/subscriptions/{SUBSCRIPTION}" in line


def test_the_sdk_reports_the_kinds_discovery_reads() -> None:
    """The kind comes from azure-ai-ml's own entity (`Workspace._kind`, lower-cased from the
    REST `kind`): what discovery compares with `NO_RUNS`."""
    from shared.azure.workspace import list_workspaces

    fake = FakeAzure().on("GET", LISTING, (200, {"value": hub_and_its_project()}))

    found = list_workspaces(
        StaticCredential(), f"/subscriptions/{SUBSCRIPTION}", transport=fake.transport()
    )

    assert [(info.ref.name, info.kind) for info in found] == [
        ("hub-team", "hub"),
        ("proj-churn", "project"),
    ]
    assert {info.ref.resource_group for info in found} == {RESOURCE_GROUP}


def test_a_scope_of_hubs_only_governs_nothing_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="shared.bootstrap.estate"):
        estate, _ = scope_estate([workspace_body(name="hub-a", kind="Hub")])

    assert len(estate) == 0
    assert estate.discovered
    assert any("hub-a" in r.getMessage() for r in caplog.records)
