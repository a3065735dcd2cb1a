"""Static checks of the deployment against Microsoft's documented platform limits (Flex
Consumption, Python versions) and of the hooks' handling of existing topics and of the estate.

Text-level, like tests/infra/test_infra.py (whose Bicep reader and stand-in `az` this reuses):
nothing here has been deployed; docs/deploy.md lists what a real deployment must confirm.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from tests.infra.test_infra import (
    MAIN,
    MODULES,
    POSTDEPLOY,
    POSTPROVISION,
    ROOT,
    WORKSPACE_ACCESS,
    WORKSPACE_ID,
    app_settings,
    bicep_files,
    block,
    code,
    decorators_of,
    deployments,
    params,
    read,
    run_hook,
)

SITE = MODULES / "function-app.bicep"

# Site properties and app settings Flex Consumption does not accept, with where each is written
# down. [D] Microsoft's Flex Consumption documentation, "Deprecated properties and settings"
# (flex-consumption-plan.md, MicrosoftDocs; the table now lives in functions-app-settings.md,
# "Flex Consumption plan deprecations", learn.microsoft.com/azure/azure-functions/
# functions-app-settings#flex-consumption-plan-deprecations). [A] ARM's own rejection message,
# "The following list of ... site configuration properties (Site.SiteConfig.X, ...) for Flex
# Consumption sites is invalid" (error 51021), quoted in Azure/azure-cli#31414 (FtpsState,
# Use32BitWorkerProcess, PreWarmedInstanceCount, NetFrameworkVersion,
# FunctionsRuntimeScaleMonitoringEnabled), Azure/azure-functions-host#10643
# (FunctionAppScaleLimit) and Azure/terraform-azurerm-avm-res-web-site#283 (LinuxFxVersion).
# [C] settings the current deprecations table adds (as cited with it; the page was not read in
# full here).
FLEX_UNSUPPORTED_SITE_PROPERTIES = {
    "ftpsState": "D, A",
    "use32BitWorkerProcess": "D, A",
    "isReserved": "D",
    "isXenon": "D",
    "windowsFxVersion": "D",
    "alwaysOn": "D",
    "preWarmedInstanceCount": "D, A",
    "functionAppScaleLimit": "D, A",
    "containerSize": "D",
    "javaVersion": "D",
    "powerShellVersion": "D",
    "netFrameworkVersion": "D, A",
    "linuxFxVersion": "D, A",
    "functionsRuntimeScaleMonitoringEnabled": "A",
}
FLEX_UNSUPPORTED_APP_SETTINGS = {
    "WEBSITE_NODE_DEFAULT_VERSION": "D",
    "FUNCTIONS_EXTENSION_VERSION": "D",
    "FUNCTIONS_WORKER_RUNTIME": "D",
    "FUNCTIONS_WORKER_RUNTIME_VERSION": "D",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY": "D",
    "FUNCTIONS_WORKER_PROCESS_COUNT": "D",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED": "D",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING": "D",
    "WEBSITE_CONTENTSHARE": "D",
    "WEBSITE_RUN_FROM_PACKAGE": "C",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT": "C",
    "SCM_DO_BUILD_DURING_DEPLOYMENT": "C",
    "ENABLE_ORYX_BUILD": "C",
}


def keys_in(text: str) -> set[str]:
    """Every object key of a Bicep text, at any depth, lower-cased (ARM names are not
    case-sensitive)."""
    return {key.lower() for key in re.findall(r"^\s*'?([A-Za-z_][\w.-]*)'?\s*:", text, re.M)}


def test_the_flex_site_sets_no_property_flex_rejects() -> None:
    site = block(code(SITE), "resource app 'Microsoft.Web/sites")
    keys = keys_in(site)
    assert {"mintlsversion", "scaleandconcurrency", "runtime"} <= keys  # the reader sees keys
    found = sorted(p for p in FLEX_UNSUPPORTED_SITE_PROPERTIES if p.lower() in keys)
    assert not found, f"the Flex site sets properties Flex Consumption rejects: {found}"
    # Nor anywhere else in the templates (a sites/config 'web' resource would carry them too).
    for path in bicep_files():
        found = sorted(
            p for p in FLEX_UNSUPPORTED_SITE_PROPERTIES if p.lower() in keys_in(code(path))
        )
        assert not found, f"{path.name} sets {found}"


def test_the_flex_site_sets_no_app_setting_flex_rejects() -> None:
    written = {name.upper() for name in app_settings()}
    found = sorted(name for name in FLEX_UNSUPPORTED_APP_SETTINGS if name in written)
    assert not found, f"app settings Flex Consumption deprecates: {found}"
    for path in bicep_files():
        text = code(path)
        assert not [name for name in FLEX_UNSUPPORTED_APP_SETTINGS if name in text], path.name


def test_maximum_instance_count_is_bounded_as_flex_documents() -> None:
    for path in (MAIN, SITE):
        assert params(path)["maximumInstanceCount"] == ("int", 40)
        decorators = decorators_of(path, "maximumInstanceCount")
        assert "@minValue(40)" in decorators, path.name
        assert "@maxValue(1000)" in decorators, path.name
    values = json.loads(read(MAIN.parent / "main.parameters.json"))["parameters"]
    assert values["maximumInstanceCount"]["value"] == "${FUNCTION_MAXIMUM_INSTANCE_COUNT=40}"
    guide = read(ROOT / "docs" / "deploy.md")
    assert "regional preview" in guide
    assert "#10523" in guide  # where the exception below 40 is written down


def test_python_is_3_11_or_3_12_everywhere_it_is_stated() -> None:
    # datetime.UTC needs 3.11; azure-functions 1.x (requirements.txt) declares <3.13, and
    # azure-functions 2.0 (3.13+) is another major line.
    project = tomllib.loads(read(ROOT / "pyproject.toml"))
    assert project["project"]["requires-python"] == ">=3.11,<3.13"
    assert project["tool"]["ruff"]["target-version"] == "py311"
    assert "azure-functions==1." in read(ROOT / "requirements.txt")
    for path in (MAIN, SITE):
        allowed = re.search(r"@allowed\(\[([^\]]*)\]\)\s*param pythonVersion", read(path))
        assert allowed, path.name
        assert re.findall(r"'([\d.]+)'", allowed.group(1)) == ["3.11", "3.12"], path.name
    for doc in (ROOT / "docs" / "deploy.md", ROOT / "README.md"):
        text = read(doc)
        assert "3.10" not in text, f"{doc.name} still names Python 3.10"
        assert "3.11" in text, doc.name


# --- adopting an existing system topic -------------------------------------------------------

THEIR_IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg-ml/providers"
    "/Microsoft.ManagedIdentity/userAssignedIdentities/id-pipeline"
)
IDENTITIES = json.dumps(
    {THEIR_IDENTITY: {"principalId": "11111111-0000-0000-0000-000000000000", "clientId": "c"}},
    indent=2,
)
TAGS = json.dumps({"owner": "platform-team", "cost-center": "42"}, indent=2)


def parameter(deploy: str, name: str) -> str:
    """The value of `name=` in a recorded `az deployment group create` line (JSON may span
    lines: the log holds the whole argument)."""
    match = re.search(rf" {name}=(.*?)(?= \w+=| --|\Z)", deploy, re.DOTALL)
    assert match, f"{name} not passed"
    return match.group(1)


def test_adopting_a_system_topic_passes_its_identities_and_tags_back(tmp_path: Path) -> None:
    topics = f"evgt-mlgov-abc\t{WORKSPACE_ID}\n"
    result, calls = run_hook(
        tmp_path, 1, POSTPROVISION, topics=topics, identities=IDENTITIES, tags=TAGS
    )
    assert result.returncode == 0, result.stderr
    assert "adopting system topic evgt-mlgov-abc" in result.stdout
    # The JSON spans lines in the log: take everything after the deployment's first line.
    (deploy,) = read(tmp_path / "az.log").split("\ndeployment group create")[1:]
    assert json.loads(parameter(deploy, "existingTopicUserAssignedIdentities")) == json.loads(
        IDENTITIES
    )
    assert json.loads(parameter(deploy, "existingTopicTags")) == json.loads(TAGS)
    assert len(deployments(calls)) == 1


def test_adopting_a_topic_without_identities_or_tags_passes_empty_objects(tmp_path: Path) -> None:
    # az prints nothing (or null) for a query on a missing field.
    topics = f"evgt-mlgov-abc\t{WORKSPACE_ID}\n"
    result, calls = run_hook(tmp_path, 1, POSTPROVISION, topics=topics, identities="null\n")
    assert result.returncode == 0, result.stderr
    (deploy,) = deployments(calls)
    assert "existingTopicUserAssignedIdentities={}" in deploy
    assert "existingTopicTags={}" in deploy


def test_the_workspace_topic_is_adopted_under_its_own_name(tmp_path: Path) -> None:
    # Only one system topic per source: an existing one (made in the portal's Events blade) is
    # used, whatever its name, instead of failing on a second one.
    storage = "/subscriptions/x/resourceGroups/rg-ml/providers/Microsoft.Storage/storageAccounts/st"
    topics = f"other-topic\t{storage}\n"
    topics += f"mlw-team-events\t{WORKSPACE_ID.upper()}\n"
    result, calls = run_hook(tmp_path, 1, POSTPROVISION, topics=topics, tags=TAGS)
    assert result.returncode == 0, result.stderr
    (deploy,) = deployments(calls)
    assert "systemTopicName=mlw-team-events " in deploy
    assert "EVENTGRID_SYSTEM_TOPIC_NAME_OVERRIDE mlw-team-events" in result.stdout
    (tmp_path / "deploy").mkdir()
    result, calls = run_hook(tmp_path / "deploy", 1, POSTDEPLOY, topics=topics)
    assert result.returncode == 0, result.stderr
    (deploy,) = deployments(calls)
    assert "systemTopicName=mlw-team-events " in deploy


def test_a_topic_name_taken_by_another_source_is_refused(tmp_path: Path) -> None:
    storage = "/subscriptions/x/resourceGroups/rg-ml/providers/Microsoft.Storage/storageAccounts/st"
    topics = f"evgt-mlgov-abc\t{storage}\n"
    result, calls = run_hook(tmp_path, 1, POSTPROVISION, topics=topics)
    assert result.returncode == 2
    assert "already serves another source" in result.stderr
    assert "EVENTGRID_SYSTEM_TOPIC_NAME_OVERRIDE" in result.stderr
    assert not deployments(calls)


def test_the_topic_template_keeps_what_it_is_given() -> None:
    topic = block(code(WORKSPACE_ACCESS), "resource systemTopic ")
    assert "tags: union(existingTopicTags, tags)" in topic
    assert "type: 'SystemAssigned, UserAssigned'" in topic
    assert "userAssignedIdentities: existingTopicUserAssignedIdentities" in topic
    assert "var keepUserAssigned = !empty(existingTopicUserAssignedIdentities)" in code(
        WORKSPACE_ACCESS
    )
    for name in ("existingTopicUserAssignedIdentities", "existingTopicTags"):
        assert params(WORKSPACE_ACCESS)[name] == ("object", "{}")


# --- the estate (several workspaces) ----------------------------------------------------------

OTHER = (
    "/subscriptions/00000000-0000-0000-0000-00000000000b/resourceGroups/rg-prod"
    "/providers/Microsoft.MachineLearningServices/workspaces/mlw_prod"
)


def test_every_workspace_of_the_estate_gets_its_access_and_topic(tmp_path: Path) -> None:
    result, calls = run_hook(
        tmp_path, 1, POSTPROVISION, topics="", AZURE_ML_ADDITIONAL_WORKSPACE_IDS=f" {OTHER} ,"
    )
    assert result.returncode == 0, result.stderr
    first, second = deployments(calls)
    assert "--resource-group rg-ml " in first
    assert "workspaceName=mlw-team " in first
    assert "--subscription 00000000-0000-0000-0000-00000000000b --resource-group rg-prod " in second
    assert "workspaceName=mlw_prod " in second
    assert "systemTopicName=evgt-mlgov-mlw-prod " in second  # no underscores in topic names
    # The dead-letter writer and storage stay in the app's subscription.
    assert "appSubscriptionId=00000000-0000-0000-0000-00000000000a " in second
    names = re.findall(r"--name (\S+)", f"{first}\n{second}")
    assert len(set(names)) == 2
    assert all(len(name) <= 64 for name in names)  # ARM's limit on deployment names


def test_postdeploy_subscribes_every_workspace(tmp_path: Path) -> None:
    topics = f"evgt-mlgov-abc\t{WORKSPACE_ID}\nevgt-mlgov-mlw-prod\t{OTHER}\n"
    result, calls = run_hook(
        tmp_path, 1, POSTDEPLOY, topics=topics, AZURE_ML_ADDITIONAL_WORKSPACE_IDS=OTHER
    )
    assert result.returncode == 0, result.stderr
    first, second = deployments(calls)
    assert "systemTopicName=evgt-mlgov-abc " in first
    assert "--subscription 00000000-0000-0000-0000-00000000000b --resource-group rg-prod " in second
    assert "systemTopicName=evgt-mlgov-mlw-prod " in second


def test_a_malformed_workspace_id_stops_the_hook(tmp_path: Path) -> None:
    result, calls = run_hook(
        tmp_path, 1, POSTPROVISION, topics="", AZURE_ML_ADDITIONAL_WORKSPACE_IDS="/subscriptions/x"
    )
    assert result.returncode == 2
    assert "not an Azure ML workspace id: /subscriptions/x" in result.stderr
    assert not deployments(calls)


def test_the_estate_reaches_the_app_as_one_setting() -> None:
    assert app_settings()["GOVERNANCE_WORKSPACES"] == (
        "empty(additionalIds) ? '' : join(concat([workspace.id], additionalIds), ',')"
    )
    assert params(MAIN)["additionalWorkspaceIds"] == ("string", "")
    values = json.loads(read(MAIN.parent / "main.parameters.json"))["parameters"]
    assert values["additionalWorkspaceIds"]["value"] == "${AZURE_ML_ADDITIONAL_WORKSPACE_IDS}"
    outputs = set(re.findall(r"^output (\w+) ", code(MAIN), re.MULTILINE))
    assert {"AZURE_ML_ADDITIONAL_WORKSPACE_IDS", "AZURE_SUBSCRIPTION_ID"} <= outputs


def test_the_sweep_queue_exists_with_the_identity_allowed_on_it() -> None:
    assert "var sweepQueueName = 'mlgov-sweep'" in code(MAIN)
    assert re.search(r"queueNames: \[\s*sweepQueueName\s*\]", block(code(MAIN), "module storage"))
    storage = code(MODULES / "storage.bicep")
    assert "'Microsoft.Storage/storageAccounts/queueServices/queues@" in storage
    assert "[for queueName in queueNames:" in storage


# --- app settings for the credential, the coordinates and governance events -------------------


def test_credential_and_workspace_coordinates_are_app_settings() -> None:
    settings = app_settings()
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"  # selects the user-assigned identity
    assert settings["AZURE_SUBSCRIPTION_ID"] == "subscription().subscriptionId"
    assert settings["AZURE_ML_WORKSPACE_RESOURCE_GROUP"] == "workspaceResourceGroupName"
    assert settings["AZURE_ML_WORKSPACE_NAME"] == "workspaceName"
    assert "AZURE_ML_WORKSPACE_ID" not in settings  # the loader refuses it next to the three
    assert settings["MLFLOW_TRACKING_URI"] == "workspace.properties.mlFlowTrackingUri"


def test_governance_events_topic_is_optional_cloudevents_and_entra_only() -> None:
    assert params(MAIN)["enableGovernanceEventsTopic"] == ("bool", False)
    assert params(MAIN)["governanceEventsTopicEndpoint"] == ("string", "")
    assert re.search(
        r"module eventsTopic 'modules/events-topic\.bicep' = if \(enableGovernanceEventsTopic\)",
        code(MAIN),
    )
    topic = block(code(MODULES / "events-topic.bicep"), "resource topic ")
    assert "inputSchema: 'CloudEventSchemaV1_0'" in topic
    assert "disableLocalAuth: true" in topic
    assert "output endpoint string = topic.properties.endpoint" in code(
        MODULES / "events-topic.bicep"
    )
    values = json.loads(read(MAIN.parent / "main.parameters.json"))["parameters"]
    assert (
        values["enableGovernanceEventsTopic"]["value"] == "${GOVERNANCE_EVENTS_TOPIC_CREATE=false}"
    )
    assert values["governanceEventsTopicEndpoint"]["value"] == "${GOVERNANCE_EVENTS_TOPIC_ENDPOINT}"


def test_the_deployer_can_read_dead_letters() -> None:
    access = code(MODULES / "app-access.bicep")
    assert re.search(
        r"resource deployerDeadLetterReader '[^']+' = "
        r"if \(!empty\(deployerPrincipalId\) && !empty\(deadLetterContainerName\)\)",
        access,
    )
    assert "deadLetterContainerName: deadLetterContainerName" in block(
        code(MAIN), "module appAccess"
    )
    guide = read(ROOT / "docs" / "deploy.md")
    assert "--auth-mode login" in guide
    assert "Storage Blob Data Reader" in guide
