"""Static checks of the Azure infrastructure: Bicep, azd's azure.yaml, .funcignore, the hook.

Nothing here talks to Azure and no Bicep compiler is involved: the files are read as text
(plus a small parser for Bicep parameters and object literals) and checked against the app's
contracts: the settings the code reads, the function names, the documented role ids. The
checkov scan runs when its venv exists (scripts/scan_infra.sh --setup creates it).
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
MODULES = INFRA / "modules"
SUBSCRIPTION = INFRA / "eventgrid-subscription.bicep"
WORKSPACE_ACCESS = INFRA / "workspace-access.bicep"
POSTPROVISION = ROOT / "scripts" / "postprovision.sh"
POSTDEPLOY = ROOT / "scripts" / "postdeploy.sh"
SCAN = ROOT / "scripts" / "scan_infra.sh"

# The product's settings and defaults (docs/deploy.md lists them; '' = empty/off).
DOCUMENTED_DEFAULTS = {
    "GOVERNANCE_DRY_RUN": "false",
    "GOVERNANCE_EXPERIMENTS": "*",
    "GOVERNANCE_CLEANUP_STATUSES": "FAILED",
    "GOVERNANCE_CLEANUP_AFTER_HOURS": "72",
    "GOVERNANCE_CLEANUP_MAX_RUNS": "100",
    "GOVERNANCE_PROTECT_TAG": "governance.keep",
    "GOVERNANCE_REQUIRED_TAGS": "",
    "GOVERNANCE_TAG_DEFAULTS": "{}",
    "GOVERNANCE_PROMOTION_METRIC": "",
    "GOVERNANCE_PROMOTION_THRESHOLD": "",
    "GOVERNANCE_PROMOTION_GOAL": "maximize",
    "GOVERNANCE_PROMOTION_MODEL_NAME": "{experiment_name}",
    "GOVERNANCE_PROMOTION_ARTIFACT_PATH": "model",
    "GOVERNANCE_PROMOTION_ALIAS": "champion",
    "GOVERNANCE_TEAMS_WEBHOOK_URL": "",
    "GOVERNANCE_SUMMARY_WINDOW_HOURS": "24",
    "GOVERNANCE_SWEEP_SCHEDULE": "0 */30 * * * *",
    "GOVERNANCE_SUMMARY_SCHEDULE": "0 0 8 * * 1-5",
    "GOVERNANCE_POLICY_FILE": "",
    "GOVERNANCE_CONCURRENCY": "8",
}

# Built-in role definition ids (identical in every tenant) and names, as Microsoft's table of
# built-in roles lists them: "Azure built-in roles", learn.microsoft.com/azure/role-based-access-
# control/built-in-roles (source: MicrosoftDocs/azure-docs,
# articles/role-based-access-control/built-in-roles.md; rows "Storage", "Security", "Monitor",
# "Integration", "AI + machine learning"). Every role id in infra/ must be one of these, under
# this name.
ROLES = {
    "f6c7c914-8db3-469d-8ca1-694a8f32e121": "AzureML Data Scientist",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",
}
# Not needed: no Durable Functions, no table-backed bindings.
UNNEEDED_ROLES = {
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --- small Bicep reader ---------------------------------------------------------------------


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def strip_comments(text: str) -> str:
    """Bicep without // and /* */ comments (quotes respected; #checkov lines kept)."""
    out, i, quote = [], 0, False
    while i < len(text):
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif ch == "'":
                quote = False
        elif ch == "'":
            quote = True
            out.append(ch)
        elif ch == "#" and text[text.rfind("\n", 0, i) + 1 : i].strip() == "":
            # A #checkov directive: kept whole, its prose (apostrophes) is not Bicep.
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out.append(text[i:end])
            i = end
            continue
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def code(path: Path) -> str:
    return strip_comments(read(path))


def block(text: str, opener: str) -> str:
    """The body of the first `{ ... }` that follows `opener`."""
    start = text.index(opener)
    start = text.index("{", start)
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise AssertionError(f"unbalanced braces after {opener!r}")


def entries(body: str) -> dict[str, str]:
    """Top-level `key: value` lines of an object literal body."""
    found, depth = {}, 0
    for line in body.splitlines():
        if depth == 0:
            match = re.match(r"\s*'?([A-Za-z_][\w.-]*)'?\s*:\s*(.+?)\s*$", line)
            if match:
                found[match.group(1)] = match.group(2)
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return found


def literal(value: str) -> object:
    value = value.strip()
    if value.startswith("'") and value.endswith("'"):
        return value[1:-1].replace("\\'", "'")
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def params(path: Path) -> dict[str, tuple[str, object]]:
    """param name -> (type, default); default is None when the parameter has none."""
    found = {}
    for match in re.finditer(r"^param (\w+) (\w+)(?: = (.+))?$", code(path), re.MULTILINE):
        name, kind, default = match.groups()
        found[name] = (kind, None if default is None else literal(default))
    return found


def decorators_of(path: Path, name: str) -> str:
    """The decorator lines right above `param name`."""
    lines = read(path).splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"param {name} "))
    above = []
    for line in reversed(lines[:index]):
        if not line.strip() or not (line.startswith(("@", " ", ")", "]", "}"))):
            break
        above.append(line)
    return "\n".join(reversed(above))


def app_settings() -> dict[str, str]:
    """Setting name -> Bicep expression, for every app setting the deployment writes."""
    settings = entries(block(code(MAIN), "governanceSettings:"))
    settings.update(entries(block(code(MODULES / "function-app.bicep"), "var appSettings")))
    return settings


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def governance_setting_params() -> dict[str, str]:
    """GOVERNANCE_*/MLFLOW_* setting -> main.bicep parameter feeding it (plain references)."""
    return {
        setting: expression
        for setting, expression in entries(block(code(MAIN), "governanceSettings:")).items()
        if re.fullmatch(r"\w+", expression)
    }


# Written from the workspace and the subscription, not from a tunable parameter.
WORKSPACE_COORDINATES = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_ML_WORKSPACE_RESOURCE_GROUP": "rg-ml",
    "AZURE_ML_WORKSPACE_NAME": "mlw-team",
}
# Settings whose expression is empty when every parameter is left at its default.
DEFAULT_EMPTY = {
    "GOVERNANCE_WORKSPACES": (
        "empty(additionalIds) ? '' : join(concat([workspace.id], additionalIds), ',')"
    ),
    "GOVERNANCE_EVENTS_TOPIC_ENDPOINT": (
        "enableGovernanceEventsTopic ? eventsTopic.outputs.endpoint : governanceEventsTopicEndpoint"
    ),
}


def default_environment() -> dict[str, str]:
    """The app settings a deployment with every parameter left at its default writes."""
    main_params = params(MAIN)
    env = {"MLFLOW_TRACKING_URI": "azureml://example.api.azureml.ms/mlflow/v1.0/subscriptions/s"}
    env |= WORKSPACE_COORDINATES
    for setting, expression in entries(block(code(MAIN), "governanceSettings:")).items():
        if setting in env:
            continue
        if setting in DEFAULT_EMPTY:
            assert expression == DEFAULT_EMPTY[setting], setting
            env[setting] = ""  # the parameters that feed it are empty by default
            continue
        conditional = re.fullmatch(r"(\w+) \? (\w+) : ''", expression)
        if conditional and conditional.group(1) in main_params:
            enabled = main_params[conditional.group(1)][1]
            env[setting] = str(main_params[conditional.group(2)][1]) if enabled else ""
        elif expression in main_params:
            env[setting] = str(main_params[expression][1])
        elif setting == "GOVERNANCE_TEAMS_WEBHOOK_URL":
            env[setting] = ""  # no webhook given: checked in test_teams_webhook_*
        else:
            raise AssertionError(f"{setting}: cannot evaluate {expression!r}")
    return env


# --- app settings -----------------------------------------------------------------------------


# App settings the code may read besides GOVERNANCE_*: the tracking URI, the workspace
# coordinates (Azure's own names) and the identity selector. Other AZURE_* names the Azure SDKs
# read by themselves (AZURE_TENANT_ID, AZURE_CLIENT_SECRET, ...) are not app settings here.
SETTING_NAME = re.compile(
    r"[\"'%]((?:GOVERNANCE|AZURE_ML)_[A-Z0-9_]*[A-Z0-9]"
    r"|MLFLOW_TRACKING_URI|AZURE_SUBSCRIPTION_ID|AZURE_CLIENT_ID)[\"'%]"
)


# Settings the code reads that the template deliberately leaves unset, and why.
NOT_SET_BY_INFRA = {
    # The loader refuses it next to the three coordinates (shared/settings/load.py), which the
    # template sets.
    "AZURE_ML_WORKSPACE_ID": "exclusive with the workspace coordinates",
}


def settings_the_code_reads() -> set[str]:
    """Every setting the code declares (the SETTINGS table of shared/settings/) plus every
    setting name quoted elsewhere in the app's code."""
    from shared.settings import SETTINGS

    names = {entry.name for entry in SETTINGS}
    settings_package = ROOT / "shared" / "settings"
    for path in [
        ROOT / "function_app.py",
        *ROOT.glob("shared/**/*.py"),
        *ROOT.glob("functions/*.py"),
    ]:
        if settings_package not in path.parents:  # its docstrings hold examples, not settings
            names.update(SETTING_NAME.findall(read(path)))
    return names - NOT_SET_BY_INFRA.keys()


def test_every_setting_the_code_reads_is_an_app_setting() -> None:
    read_by_code = settings_the_code_reads()
    assert "GOVERNANCE_SWEEP_SCHEDULE" in read_by_code  # the scan itself works
    missing = sorted(read_by_code - app_settings().keys())
    assert not missing, f"settings the code reads but infra/main.bicep never sets: {missing}"


def test_every_documented_setting_is_an_app_setting() -> None:
    sample = json.loads(read(ROOT / "local.settings.sample.json"))["Values"]
    local_only = {"AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME"}
    documented = set(DOCUMENTED_DEFAULTS) | {"MLFLOW_TRACKING_URI"} | (set(sample) - local_only)
    missing = sorted(documented - app_settings().keys())
    assert not missing, f"documented settings missing from the app settings: {missing}"


def test_documented_settings_appear_in_the_deploy_guide() -> None:
    guide = read(ROOT / "docs" / "deploy.md")
    missing = [
        name for name in app_settings() if name.startswith("GOVERNANCE_") and name not in guide
    ]
    assert not missing, f"docs/deploy.md does not mention {missing}"


def test_parameter_defaults_are_the_product_defaults() -> None:
    env = default_environment()
    for setting, default in DOCUMENTED_DEFAULTS.items():
        assert env[setting] == default, setting
    # The same defaults, seen by the app's own settings loader, change nothing.
    deployed = load_settings(env)
    bare = load_settings(
        {"MLFLOW_TRACKING_URI": env["MLFLOW_TRACKING_URI"]} | WORKSPACE_COORDINATES
    )
    assert deployed == bare


def test_cleanup_can_be_turned_off_although_azd_drops_empty_values() -> None:
    expression = app_settings()["GOVERNANCE_CLEANUP_STATUSES"]
    assert expression == "governanceCleanupEnabled ? governanceCleanupStatuses : ''"
    assert params(MAIN)["governanceCleanupEnabled"] == ("bool", True)
    env = default_environment() | {"GOVERNANCE_CLEANUP_STATUSES": ""}
    assert not load_settings(env).default_policy.cleanup_statuses


def test_timer_schedules_referenced_by_functions_are_set() -> None:
    # The host refuses to start when a %SETTING% binding expression names a missing setting.
    referenced = set()
    for path in [ROOT / "function_app.py", *ROOT.glob("functions/*.py")]:
        referenced.update(re.findall(r"%([A-Za-z0-9_]+)%", read(path)))
    required = {"GOVERNANCE_SWEEP_SCHEDULE", "GOVERNANCE_SUMMARY_SCHEDULE"}
    missing = sorted((referenced | required) - app_settings().keys())
    assert not missing, f"binding expressions without an app setting: {missing}"
    for setting in required:
        parameter = governance_setting_params()[setting]
        kind, default = params(MAIN)[parameter]
        assert kind == "string"
        assert isinstance(default, str)
        assert len(default.split()) == 6, f"{setting}: NCRONTAB needs 6 fields"
        assert "@minLength(11)" in decorators_of(MAIN, parameter), (
            "an empty schedule must not deploy"
        )


def test_tracking_uri_comes_from_the_existing_workspace() -> None:
    main = code(MAIN)
    assert app_settings()["MLFLOW_TRACKING_URI"] == "workspace.properties.mlFlowTrackingUri"
    assert re.search(
        r"resource workspace 'Microsoft\.MachineLearningServices/workspaces@[\d-]+' existing = \{"
        r"\s*name: workspaceName\s*scope: resourceGroup\(workspaceResourceGroupName\)\s*\}",
        main,
    )
    assert params(MAIN)["workspaceName"][1] is None
    assert params(MAIN)["workspaceResourceGroupName"][1] is None


def test_azd_deployment_never_deploys_into_the_workspace_resource_group() -> None:
    # `azd down` deletes the resource groups its deployment put resources in: everything beside
    # the workspace is deployed by the postprovision hook instead (workspace-access.bicep).
    main = code(MAIN)
    scopes = re.findall(
        r"^module \w+ '[^']+' = (?:if \([^\n]*\) )?\{\n  name: [^\n]+\n  scope: ([^\n]+)$",
        main,
        re.M,
    )
    modules = re.findall(r"^module ", main, re.MULTILINE)
    assert scopes == ["rg"] * len(modules)
    assert re.search(r"^resource workspace '[^']+' existing = \{", main, re.MULTILINE)
    assert main.count("resourceGroup(workspaceResourceGroupName)") == 1  # the read-only reference


# --- Flex Consumption -------------------------------------------------------------------------


def test_flex_consumption_plan_and_runtime() -> None:
    app = code(MODULES / "function-app.bicep")
    assert re.search(r"sku: \{\s*tier: 'FlexConsumption'\s*name: 'FC1'\s*\}", app)
    assert re.search(r"reserved: true", block(app, "resource plan"))
    site = block(app, "resource app 'Microsoft.Web/sites")
    assert "kind: 'functionapp,linux'" in site
    runtime = entries(block(site, "runtime:"))
    assert runtime == {"name": "'python'", "version": "pythonVersion"}
    assert params(MAIN)["pythonVersion"] == ("string", "3.11")
    assert "pythonVersion: pythonVersion" in block(code(MAIN), "module functionApp")
    scale = entries(block(site, "scaleAndConcurrency:"))
    assert scale == {
        "maximumInstanceCount": "maximumInstanceCount",
        "instanceMemoryMB": "instanceMemoryMB",
    }


def test_flex_forbidden_settings_are_absent() -> None:
    # On Flex the runtime is functionAppConfig.runtime; these settings make deployment fail.
    forbidden = [
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "linuxFxVersion",
    ]
    for path in bicep_files():
        text = code(path)
        found = [name for name in forbidden if name in text]
        assert not found, f"{path.name} sets {found}"
    assert "AzureWebJobsStorage" not in app_settings()  # a connection string would need keys


def test_deployment_package_container_uses_the_identity() -> None:
    site = block(code(MODULES / "function-app.bicep"), "resource app 'Microsoft.Web/sites")
    storage = block(site, "storage:")
    assert "type: 'blobContainer'" in storage
    assert "value: '${storageBlobEndpoint}${deploymentContainerName}'" in storage
    auth = entries(block(storage, "authentication:"))
    assert auth == {
        "type": "'UserAssignedIdentity'",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert re.search(
        r"type: 'UserAssigned'\s*userAssignedIdentities: \{\s*'\$\{identityId\}': \{\}", site
    )
    assert "keyVaultReferenceIdentity: identityId" in site
    assert "httpsOnly: true" in site


def test_host_storage_and_telemetry_use_the_identity() -> None:
    settings = app_settings()
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "'ClientId=${identityClientId};Authorization=AAD'"
    )
    storage = block(code(MODULES / "storage.bicep"), "resource storage ")
    assert re.search(r"^\s*allowSharedKeyAccess: false$", storage, re.MULTILINE)
    assert re.search(r"^\s*allowBlobPublicAccess: false$", storage, re.MULTILINE)
    monitoring = code(MODULES / "monitoring.bicep")
    assert re.search(r"DisableLocalAuth: true", monitoring)


# --- roles ------------------------------------------------------------------------------------


def role_variables(path: Path) -> dict[str, tuple[str, str]]:
    """var name -> (role id, the first line of the comment block above it)."""
    lines = read(path).splitlines()
    found = {}
    for i, line in enumerate(lines):
        match = re.match(rf"var (\w+) = '({GUID.pattern})'", line)
        if match:
            start = i
            while start > 0 and lines[start - 1].lstrip().startswith("//"):
                start -= 1
            found[match.group(1)] = (match.group(2), lines[start] if start < i else "")
    return found


def role_assignments(path: Path) -> list[tuple[str, str]]:
    """(resource body, role variable) for each roleAssignments resource."""
    text = code(path)
    found = []
    for match in re.finditer(r"resource (\w+) 'Microsoft\.Authorization/roleAssignments@", text):
        body = block(text[match.start() :], "=")
        role = re.search(
            r"roleDefinitionId: subscriptionResourceId\("
            r"'Microsoft\.Authorization/roleDefinitions', (\w+)\)",
            body,
        )
        assert role, f"{path.name}:{match.group(1)} has no roleDefinitionId"
        found.append((body, role.group(1)))
    return found


def test_role_definition_ids_are_the_documented_ones_and_commented() -> None:
    assigned = {}
    for path in bicep_files():
        text = read(path)
        for guid in GUID.findall(text):
            assert guid not in UNNEEDED_ROLES, f"{path.name}: {UNNEEDED_ROLES[guid]} is not needed"
        variables = role_variables(path)
        for body, variable in role_assignments(path):
            assert variable in variables, f"{path.name}: role {variable} is not a role id variable"
            role_id, comment = variables[variable]
            assert role_id in ROLES, f"{path.name}: unknown role id {role_id}"
            assert comment.strip().startswith(f"// {ROLES[role_id]}:"), (
                f"{path.name}: the comment above {variable} must name {ROLES[role_id]}"
            )
            assert re.search(r"name: guid\(", body), (
                f"{path.name}: {variable} not named with guid()"
            )
            assert "principalType:" in body
            assigned[ROLES[role_id]] = body
    assert set(assigned) == set(ROLES.values())


def test_roles_are_granted_on_the_right_scopes() -> None:
    workspace = {v: b for b, v in role_assignments(WORKSPACE_ACCESS)}
    assert "scope: workspace" in workspace["azureMLDataScientist"]
    assert "principalId: appPrincipalId" in workspace["azureMLDataScientist"]
    dead_letter = {v: b for b, v in role_assignments(MODULES / "deadletter-writer.bicep")}
    assert "scope: container" in dead_letter["storageBlobDataContributor"]
    writer = block(code(WORKSPACE_ACCESS), "module deadLetterWriter")
    assert "principalId: systemTopic.identity.principalId" in writer
    # The app's group, in the app's subscription (a workspace may live in another one).
    assert "scope: resourceGroup(appSubscriptionId, appResourceGroupName)" in writer
    access = {v: b for b, v in role_assignments(MODULES / "app-access.bicep")}
    expected = {
        "storageBlobDataOwner": ("scope: storage", "principalId: appPrincipalId"),
        "keyVaultSecretsUser": ("scope: vault", "principalId: appPrincipalId"),
        "monitoringMetricsPublisher": ("scope: applicationInsights", "principalId: appPrincipalId"),
        "keyVaultSecretsOfficer": ("scope: vault", "principalId: deployerPrincipalId"),
        "storageQueueDataContributor": ("scope: storage", "principalId: appPrincipalId"),
        "storageBlobDataReader": ("scope: deadLetterContainer", "principalId: deployerPrincipalId"),
    }
    for variable, needles in expected.items():
        for needle in needles:
            assert needle in access[variable], f"{variable}: expected {needle}"
    sender = {v: b for b, v in role_assignments(MODULES / "events-topic.bicep")}
    assert "scope: topic" in sender["eventGridDataSender"]
    assert "principalId: appPrincipalId" in sender["eventGridDataSender"]


def test_app_starts_only_after_its_roles_exist() -> None:
    module = block(code(MAIN), "module functionApp")
    assert re.search(r"dependsOn: \[\s*appAccess\s*\]", module)


# --- Key Vault and the Teams webhook ----------------------------------------------------------


def test_key_vault_is_rbac_only_and_recoverable() -> None:
    vault = block(code(MODULES / "keyvault.bicep"), "resource vault ")
    assert "enableRbacAuthorization: true" in vault
    assert "accessPolicies" not in vault
    assert "enableSoftDelete: true" in vault
    assert "enablePurgeProtection: enablePurgeProtection ? true : null" in vault
    assert params(MODULES / "keyvault.bicep")["enablePurgeProtection"] == ("bool", True)
    assert params(MAIN)["keyVaultPurgeProtection"] == ("bool", True)
    assert "enablePurgeProtection: keyVaultPurgeProtection" in block(code(MAIN), "module keyVault")


def test_teams_webhook_secret_is_optional_and_never_plain() -> None:
    for path in (MAIN, MODULES / "keyvault.bicep"):
        assert params(path)["teamsWebhookUrl"] == ("string", "")
        assert "@secure()" in decorators_of(path, "teamsWebhookUrl")
    keyvault = code(MODULES / "keyvault.bicep")
    assert re.search(
        r"resource teamsWebhookSecret 'Microsoft\.KeyVault/vaults/secrets@[\d-]+' = "
        r"if \(!empty\(teamsWebhookUrl\)\)",
        keyvault,
    )
    assert "contentType: 'text/uri-list'" in block(keyvault, "resource teamsWebhookSecret")
    setting = app_settings()["GOVERNANCE_TEAMS_WEBHOOK_URL"]
    assert setting == (
        "useTeamsWebhookSecret ? "
        "'@Microsoft.KeyVault(SecretUri=${keyVault.outputs.teamsWebhookSecretUri})' : ''"
    )
    assert (
        "var useTeamsWebhookSecret = !empty(teamsWebhookUrl) || teamsWebhookFromKeyVault"
        in code(MAIN)
    )
    outputs = [line for line in code(MAIN).splitlines() if line.startswith("output ")]
    assert not [line for line in outputs if "teamsWebhookUrl" in line]


# --- Event Grid -------------------------------------------------------------------------------


def test_system_topic_is_on_the_workspace() -> None:
    topic = block(code(WORKSPACE_ACCESS), "resource systemTopic ")
    assert "topicType: 'Microsoft.MachineLearningServices.Workspaces'" in topic
    assert "source: workspace.id" in topic
    assert "location: workspace.location" in topic  # a system topic lives in its source's region
    assert "type: 'SystemAssigned'" in topic  # dead-lettering without storage keys


def test_subscription_targets_on_run_event() -> None:
    subscription = code(SUBSCRIPTION)
    destination = block(subscription, "destination:")
    assert "endpointType: 'AzureFunction'" in destination
    assert "resourceId: '${functionAppId}/functions/${functionName}'" in destination
    assert "maxEventsPerBatch: 1" in destination
    assert params(SUBSCRIPTION)["functionName"] == ("string", "on_run_event")
    assert "eventDeliverySchema: 'EventGridSchema'" in subscription
    default = re.search(r"param includedEventTypes array = \[(.*?)\]", subscription, re.DOTALL)
    assert default
    types = re.findall(r"'(Microsoft\.MachineLearningServices\.\w+)'", default.group(1))
    assert types == [
        "Microsoft.MachineLearningServices.RunCompleted",
        "Microsoft.MachineLearningServices.RunStatusChanged",
    ]
    # A data.runStatus filter would drop every RunCompleted (missing keys do not match).
    assert "advancedFilters" not in subscription
    retry = entries(block(subscription, "retryPolicy:"))
    assert retry == {
        "maxDeliveryAttempts": "maxDeliveryAttempts",
        "eventTimeToLiveInMinutes": "eventTimeToLiveInMinutes",
    }
    dead_letter = block(subscription, "deadLetterWithResourceIdentity:")
    assert "type: 'SystemAssigned'" in dead_letter
    assert "endpointType: 'StorageBlob'" in dead_letter


def test_the_event_grid_function_is_named_on_run_event() -> None:
    names = set()
    for path in ROOT.glob("functions/*.py"):
        for node in ast.walk(ast.parse(read(path))):
            if not isinstance(node, ast.FunctionDef):
                continue
            calls = [d for d in node.decorator_list if isinstance(d, ast.Call)]
            attributes = {d.func.attr: d for d in calls if isinstance(d.func, ast.Attribute)}
            if "event_grid_trigger" in attributes:
                named = attributes.get("function_name")
                names.add(named.args[0].value if named else node.name)  # type: ignore[attr-defined]
    assert names == {"on_run_event"}, f"Event Grid functions: {names}"


@pytest.mark.parametrize("hook", [POSTPROVISION, POSTDEPLOY], ids=lambda p: p.name)
def test_hooks_read_only_outputs_of_main_bicep(hook: Path) -> None:
    outputs = set(re.findall(r"^output (\w+) ", code(MAIN), re.MULTILINE))
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", read(hook)))
    optional = {
        "EVENTGRID_MAX_DELIVERY_ATTEMPTS",
        "EVENTGRID_EVENT_TTL_MINUTES",
        "MLGOV_POSTDEPLOY_WAIT_ATTEMPTS",
        "MLGOV_POSTDEPLOY_WAIT_SECONDS",
        "AZURE_ENV_NAME",  # set by azd itself
        "FUNCTION_NAME",  # the script's own constant
    }
    assert not sorted(used - outputs - optional)


WORKSPACE_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg-ml"
    "/providers/Microsoft.MachineLearningServices/workspaces/mlw-team"
)


def fake_az(
    tmp_path: Path, ready_after: int, topics: str = "", identities: str = "", tags: str = ""
) -> tuple[Path, Path]:
    """An `az` on PATH that records its arguments; the function appears after N lookups.

    `topics` is what `az eventgrid system-topic list --query "[].[name, source]" -o tsv` prints
    (name TAB source per line); `identities` and `tags` what `show` prints for the two queries.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log, count = tmp_path / "az.log", tmp_path / "az.count"
    (tmp_path / "topics.tsv").write_text(topics, encoding="utf-8")
    (tmp_path / "identities.json").write_text(identities, encoding="utf-8")
    (tmp_path / "tags.json").write_text(tags, encoding="utf-8")
    script = bin_dir / "az"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{log}"\n'
        'case "$1 $2 $3" in\n'
        '  "functionapp function show")\n'
        f'    n=$(cat "{count}" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "{count}"\n'
        f'    [ "$n" -ge {ready_after} ] || exit 3; echo on_run_event ;;\n'
        f'  "eventgrid system-topic list") cat "{tmp_path}/topics.tsv" ;;\n'
        '  "eventgrid system-topic show")\n'
        '    case "$*" in\n'
        f'      *identity.userAssignedIdentities*) cat "{tmp_path}/identities.json" ;;\n'
        f'      *"--query tags"*) cat "{tmp_path}/tags.json" ;;\n'
        "    esac ;;\n"
        '  "deployment group create") echo "$*" | sed "s/.*functionAppId=\\([^ ]*\\).*/\\1/" ;;\n'
        "esac\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir, log


HOOK_ENV = {
    "AZURE_ENV_NAME": "dev",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-00000000000a",
    "AZURE_RESOURCE_GROUP": "rg-dev",
    "AZURE_FUNCTION_APP_NAME": "func-mlgov-abc",
    "AZURE_FUNCTION_APP_ID": (
        "/subscriptions/s/resourceGroups/rg-dev/providers/Microsoft.Web/sites/func-mlgov-abc"
    ),
    "EVENTGRID_SYSTEM_TOPIC_NAME": "evgt-mlgov-abc",
    "EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP": "rg-ml",
    "MLGOV_POSTDEPLOY_WAIT_SECONDS": "0",
    "AZURE_STORAGE_ACCOUNT_NAME": "stmlgovabc",
    "AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID": "00000000-0000-0000-0000-000000000001",
    "AZURE_ML_WORKSPACE_NAME": "mlw-team",
    "AZURE_ML_WORKSPACE_RESOURCE_GROUP": "rg-ml",
}
# The system topic postprovision created on the workspace (what postdeploy then finds).
OUR_TOPIC = f"evgt-mlgov-abc\t{WORKSPACE_ID}\n"


def run_hook(
    tmp_path: Path,
    ready_after: int,
    hook: Path = POSTDEPLOY,
    topics: str = OUR_TOPIC,
    identities: str = "",
    tags: str = "",
    **extra: str,
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a hook with POSIX sh, a stand-in `az` and only the given environment (no azd)."""
    bin_dir, log = fake_az(tmp_path, ready_after, topics, identities, tags)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", **HOOK_ENV, **extra}
    result = subprocess.run(
        ["sh", str(hook)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return result, log.read_text(encoding="utf-8") if log.exists() else ""


def deployments(calls: str) -> list[str]:
    return [line for line in calls.splitlines() if line.startswith("deployment group create")]


def test_postdeploy_waits_for_the_function_then_deploys_the_subscription(tmp_path: Path) -> None:
    result, calls = run_hook(
        tmp_path,
        ready_after=3,
        EVENTGRID_DEADLETTER_STORAGE_ID="/subscriptions/s/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/st",
        EVENTGRID_DEADLETTER_CONTAINER="eventgrid-deadletter",
    )
    assert result.returncode == 0, result.stderr
    lines = calls.splitlines()
    assert all(line.startswith("functionapp function show") for line in lines[:3])
    assert "--function-name on_run_event" in lines[0]
    (deploy,) = deployments(calls)
    assert deploy.startswith(
        f"deployment group create --subscription {HOOK_ENV['AZURE_SUBSCRIPTION_ID']}"
        " --resource-group rg-ml "
    )
    assert f"--template-file {ROOT}/scripts/../infra/eventgrid-subscription.bicep" in deploy
    assert f"functionAppId={HOOK_ENV['AZURE_FUNCTION_APP_ID']}" in deploy
    assert "functionName=on_run_event" in deploy
    assert "systemTopicName=evgt-mlgov-abc" in deploy
    assert "deadLetterContainerName=eventgrid-deadletter" in deploy
    template_params = set(params(SUBSCRIPTION))
    passed = set(re.findall(r" (\w+)=", deploy))
    assert passed <= template_params
    assert {name for name, (_, d) in params(SUBSCRIPTION).items() if d is None} <= passed


def test_postdeploy_without_dead_letter_passes_no_empty_parameters(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, ready_after=1)
    assert result.returncode == 0, result.stderr
    assert "deadLetter" not in calls


def test_postdeploy_gives_up_when_the_function_never_appears(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, ready_after=99, MLGOV_POSTDEPLOY_WAIT_ATTEMPTS="2")
    assert result.returncode == 1
    assert "on_run_event not found" in result.stderr
    assert "deployment group create" not in calls


def test_postdeploy_refuses_a_workspace_without_its_system_topic(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, ready_after=1, topics="")
    assert result.returncode == 2
    assert "mlw-team has no system topic yet" in result.stderr
    assert not deployments(calls)


def test_postprovision_deploys_workspace_access_into_the_workspace_group(tmp_path: Path) -> None:
    result, calls = run_hook(
        tmp_path, 1, POSTPROVISION, topics="", EVENTGRID_DEADLETTER_CONTAINER="eventgrid-deadletter"
    )
    assert result.returncode == 0, result.stderr
    (deploy,) = deployments(calls)
    assert deploy.startswith(
        f"deployment group create --subscription {HOOK_ENV['AZURE_SUBSCRIPTION_ID']}"
        " --resource-group rg-ml "
    )
    assert f"--template-file {ROOT}/scripts/../infra/workspace-access.bicep" in deploy
    passed = dict(re.findall(r" (\w+)=(\S+)", deploy))
    assert passed == {
        "workspaceName": "mlw-team",
        "appPrincipalId": HOOK_ENV["AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID"],
        "systemTopicName": "evgt-mlgov-abc",
        "appSubscriptionId": HOOK_ENV["AZURE_SUBSCRIPTION_ID"],
        "appResourceGroupName": "rg-dev",
        "storageAccountName": "stmlgovabc",
        "deadLetterContainerName": "eventgrid-deadletter",
    }
    assert set(passed) <= set(params(WORKSPACE_ACCESS))
    required = {name for name, (_, default) in params(WORKSPACE_ACCESS).items() if default is None}
    assert required <= set(passed)
    # A new topic: nothing to carry over, so the existing topic is not read.
    assert "system-topic show" not in calls


def test_postdeploy_names_missing_outputs(tmp_path: Path) -> None:
    result, _ = run_hook(tmp_path, ready_after=1, AZURE_FUNCTION_APP_ID="")
    assert result.returncode == 2
    assert "AZURE_FUNCTION_APP_ID" in result.stderr


# --- azd --------------------------------------------------------------------------------------


def test_azure_yaml_service_matches_the_app_tag() -> None:
    project = yaml.safe_load(read(ROOT / "azure.yaml"))
    assert project["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert set(project["services"]) == {"api"}
    service = project["services"]["api"]
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert "var serviceName = 'api'" in code(MAIN)
    assert "serviceName: serviceName" in block(code(MAIN), "module functionApp")
    site = block(code(MODULES / "function-app.bicep"), "resource app 'Microsoft.Web/sites")
    assert "tags: union(tags, { 'azd-service-name': serviceName })" in site
    assert set(project["hooks"]) == {"postprovision", "postdeploy"}
    for event, hook in project["hooks"].items():
        assert hook["posix"]["run"] == f"./scripts/{event}.sh"
        assert hook["windows"]["run"] == f"./scripts/{event}.ps1"
        assert os.access(ROOT / "scripts" / f"{event}.sh", os.X_OK)
        assert (ROOT / "scripts" / f"{event}.ps1").is_file()


def test_parameters_file_maps_azd_environment_values() -> None:
    values = json.loads(read(INFRA / "main.parameters.json"))["parameters"]
    main_params = params(MAIN)
    assert set(values) <= set(main_params), sorted(set(values) - set(main_params))
    without_default = {name for name, (_, default) in main_params.items() if default is None}
    assert without_default <= set(values)
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    for name, entry in values.items():
        # azd's ${VAR=default}: a '}' inside the default would end the expression early.
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", entry["value"]), name
    for setting, parameter in governance_setting_params().items():
        if setting.startswith("GOVERNANCE_"):
            assert values[parameter]["value"].startswith("${" + setting), (setting, parameter)
    assert values["teamsWebhookUrl"]["value"] == "${GOVERNANCE_TEAMS_WEBHOOK_URL}"


def test_outputs_cover_what_azd_and_the_guide_use() -> None:
    outputs = set(re.findall(r"^output (\w+) ", code(MAIN), re.MULTILINE))
    needed = {
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_KEY_VAULT_NAME",
        "MLFLOW_TRACKING_URI",
        "EVENTGRID_SYSTEM_TOPIC_NAME",
    }
    assert needed <= outputs
    guide = read(ROOT / "docs" / "deploy.md")
    mentioned = set(re.findall(r"\b((?:AZURE|EVENTGRID)_[A-Z0-9_]+)\b", guide))
    not_known = (
        mentioned
        - outputs
        - set(re.findall(r"\$\{([A-Z0-9_]+)", read(INFRA / "main.parameters.json")))
    )
    not_known -= {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_SUBSCRIPTION_ID", "AZURE_PRINCIPAL_ID"}
    not_known -= {"EVENTGRID_MAX_DELIVERY_ATTEMPTS", "EVENTGRID_EVENT_TTL_MINUTES"}
    not_known -= set(app_settings())
    assert not sorted(not_known), "docs/deploy.md names values that nothing defines"


def test_funcignore_keeps_the_app_and_drops_the_rest() -> None:
    patterns = [
        line.strip().rstrip("/")
        for line in read(ROOT / ".funcignore").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        parts = path.split("/")
        return any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in patterns)

    for kept in [
        "function_app.py",
        "host.json",
        "requirements.txt",
        "shared/settings.py",
        "functions/run_events.py",
    ]:
        assert not ignored(kept), kept
    for dropped in [
        "tests/unit/x.py",
        "infra/main.bicep",
        ".venv/bin/python",
        ".venv-infra/bin/checkov",
        "local.settings.json",
        "shared/__pycache__/x.pyc",
        "docs/deploy.md",
        "requirements-dev.txt",
    ]:
        assert ignored(dropped), dropped


# --- checkov ----------------------------------------------------------------------------------


def test_checkov_skips_carry_a_reason() -> None:
    for path in bicep_files():
        for match in re.finditer(r"#checkov:skip=([^:\s]+)(?::(.*))?", read(path)):
            check, reason = match.group(1), (match.group(2) or "").strip()
            assert re.fullmatch(r"CKV2?_AZURE_\d+", check), f"{path.name}: {check}"
            assert len(reason) >= 20, f"{path.name}: {check} needs a reason"


def test_checkov_scan_is_clean() -> None:
    venv = Path(os.environ.get("INFRA_VENV", ROOT / ".venv-infra"))
    if not (venv / "bin" / "checkov").exists():
        pytest.skip(
            f"no checkov venv at {venv}: run scripts/scan_infra.sh --setup to enable the scan"
        )
    result = subprocess.run(
        ["bash", str(SCAN)],
        cwd=ROOT,
        env={**os.environ, "INFRA_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "failed 0" in result.stdout
