// mlgov on Azure: a Flex Consumption Function App that governs MLflow tracking in an EXISTING
// Azure ML workspace. Deployed by `azd up`; the Event Grid subscription that feeds on_run_event
// is created after the code is deployed (scripts/postdeploy.sh deploys eventgrid-subscription.bicep),
// because Event Grid validates that the function exists; the workspace-side pieces are deployed
// by scripts/postprovision.sh (workspace-access.bicep).
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Environment (azd)
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds resource names and the resource group name.')
param environmentName string

@minLength(1)
@description('Region of the app, its storage, vault and monitoring (the system topic follows the workspace).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group for the app; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person running azd (AZURE_PRINCIPAL_ID): may set the Teams webhook secret. Empty: no role.')
param principalId string = ''

@description('Type of that principal.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

// ---------------------------------------------------------------------------------------------
// The existing Azure ML workspace
// ---------------------------------------------------------------------------------------------

@minLength(1)
@description('Name of the EXISTING Azure ML workspace to govern.')
param workspaceName string

@minLength(1)
@description('Resource group of that workspace (same subscription; may differ from the app\'s).')
param workspaceResourceGroupName string

@description('More workspaces to govern from this deployment: comma-separated ARM ids (/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<name>), each possibly in another resource group or subscription. Empty: only the workspace above.')
param additionalWorkspaceIds string = ''

@description('Optional scope whose workspaces are discovered at each sweep: /subscriptions/<sub> or /subscriptions/<sub>/resourceGroups/<rg>. The identity then needs read access and AzureML Data Scientist on that scope (not granted here: see docs/deploy.md). Empty: no discovery.')
param workspaceDiscoveryScope string = ''

// ---------------------------------------------------------------------------------------------
// Names (empty: derived from the environment)
// ---------------------------------------------------------------------------------------------

@description('Function App name; empty: func-mlgov-<token>.')
param functionAppName string = ''

@description('Storage account name; empty: stmlgov<token>.')
param storageAccountName string = ''

@description('Key Vault name; empty: kv-mlgov-<token>.')
param keyVaultName string = ''

@description('Event Grid system topic on the workspace; give the name of an existing one to adopt it (it must be in the workspace\'s resource group).')
param systemTopicName string = ''

// ---------------------------------------------------------------------------------------------
// Hosting
// ---------------------------------------------------------------------------------------------

@description('Python version of the Flex Consumption runtime (the code needs 3.11+; azure-functions 1.x supports up to 3.12).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

// 40 is Flex Consumption's documented lowest maximum (lower only in a regional preview, see
// docs/deploy.md); 1000 its highest.
@description('Most instances Flex Consumption scales out to (40-1000; bounds the load on the tracking servers).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Redundancy of the host storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Key Vault purge protection (irreversible; a deleted vault then stays reserved for its retention period).')
param keyVaultPurgeProtection bool = true

@description('Create a blob container for Event Grid dead-letters and let the system topic write to it.')
param enableDeadLetter bool = true

// ---------------------------------------------------------------------------------------------
// Governance events (CloudEvents out, azure-eventgrid)
// ---------------------------------------------------------------------------------------------

@description('Create an Event Grid custom topic (CloudEvents 1.0, Entra ID only) for governance events and let the app publish to it.')
param enableGovernanceEventsTopic bool = false

@description('GOVERNANCE_EVENTS_TOPIC_ENDPOINT of a topic that exists already (ignored when enableGovernanceEventsTopic is true); the app identity needs EventGrid Data Sender on it. Empty: no events.')
param governanceEventsTopicEndpoint string = ''

// ---------------------------------------------------------------------------------------------
// Teams webhook (secret)
// ---------------------------------------------------------------------------------------------

@secure()
@description('Teams Workflows webhook URL. Given: stored in Key Vault and referenced by GOVERNANCE_TEAMS_WEBHOOK_URL. Empty: no secret is written.')
param teamsWebhookUrl string = ''

@description('The webhook secret was put in the vault by hand (az keyvault secret set): reference it even though teamsWebhookUrl is empty.')
param teamsWebhookFromKeyVault bool = false

@description('Name of the Key Vault secret holding the Teams webhook URL.')
param teamsWebhookSecretName string = 'governance-teams-webhook-url'

// ---------------------------------------------------------------------------------------------
// mlgov settings (app settings; defaults are the product's defaults, see docs/deploy.md)
// ---------------------------------------------------------------------------------------------

@description('GOVERNANCE_DRY_RUN: decide and report, change nothing.')
@allowed([
  'true'
  'false'
])
param governanceDryRun string = 'false'

@description('GOVERNANCE_EXPERIMENTS: comma-separated experiment-name globs in scope.')
param governanceExperiments string = '*'

@description('Clean up runs at all. false sets GOVERNANCE_CLEANUP_STATUSES empty (cleanup off); an empty parameter value cannot, because azd then uses the default.')
param governanceCleanupEnabled bool = true

@description('GOVERNANCE_CLEANUP_STATUSES: run statuses to clean up.')
param governanceCleanupStatuses string = 'FAILED'

@description('GOVERNANCE_CLEANUP_AFTER_HOURS: grace period after the run ended.')
param governanceCleanupAfterHours string = '72'

@description('GOVERNANCE_CLEANUP_MAX_RUNS: more candidates than this in one sweep: delete none, alert.')
param governanceCleanupMaxRuns string = '100'

@description('GOVERNANCE_PROTECT_TAG: a run with this tag set to true is never deleted.')
param governanceProtectTag string = 'governance.keep'

@description('GOVERNANCE_REQUIRED_TAGS: comma-separated tag keys every finished run must carry (empty: off).')
param governanceRequiredTags string = ''

@description('GOVERNANCE_TAG_DEFAULTS: JSON object, tag -> value filled in when missing.')
param governanceTagDefaults string = '{}'

@description('GOVERNANCE_PROMOTION_METRIC: metric key that drives promotion (empty: off).')
param governancePromotionMetric string = ''

@description('GOVERNANCE_PROMOTION_THRESHOLD: required when the metric is set.')
param governancePromotionThreshold string = ''

@description('GOVERNANCE_PROMOTION_GOAL: maximize, or minimize (losses).')
@allowed([
  'maximize'
  'minimize'
])
param governancePromotionGoal string = 'maximize'

@description('GOVERNANCE_PROMOTION_MIN_IMPROVEMENT: margin a challenger must beat the champion by (absolute, in metric units).')
param governancePromotionMinImprovement string = '0'

@description('GOVERNANCE_PROMOTION_MODEL_NAME: registered model name template.')
param governancePromotionModelName string = '{experiment_name}'

@description('GOVERNANCE_PROMOTION_ARTIFACT_PATH: runs:/<run_id>/<path> is registered.')
param governancePromotionArtifactPath string = 'model'

@description('GOVERNANCE_PROMOTION_ALIAS: alias moved to the promoted version.')
param governancePromotionAlias string = 'champion'

@description('GOVERNANCE_SUMMARY_WINDOW_HOURS: what the summary covers.')
param governanceSummaryWindowHours string = '24'

@description('GOVERNANCE_CATCHUP_HOURS: how far back the sweep looks for runs whose event was missed.')
param governanceCatchupHours string = '24'

@description('GOVERNANCE_SWEEP_SCHEDULE: NCRONTAB (6 fields, UTC) of scheduled_sweep. Required by the host.')
@minLength(11)
param governanceSweepSchedule string = '0 */30 * * * *'

@description('GOVERNANCE_SUMMARY_SCHEDULE: NCRONTAB (6 fields, UTC) of scheduled_summary. Required by the host.')
@minLength(11)
param governanceSummarySchedule string = '0 0 8 * * 1-5'

@description('GOVERNANCE_POLICY_FILE: optional YAML of per-experiment overrides (path inside the deployed package).')
param governancePolicyFile string = ''

@description('GOVERNANCE_CONCURRENCY: at most this many tracking requests in flight at once, mutations and per-run checks (per instance; 8 from bench/RESULTS.md).')
param governanceConcurrency string = '8'

// ---------------------------------------------------------------------------------------------
// Names and shared values
// ---------------------------------------------------------------------------------------------

var serviceName = 'api' // must match the service name in azure.yaml
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'mlgov'
}
var appName = !empty(functionAppName) ? functionAppName : 'func-mlgov-${resourceToken}'
var deploymentContainerName = 'app-package-${take(toLower(appName), 32)}-${take(resourceToken, 7)}'
var deadLetterContainerName = enableDeadLetter ? 'eventgrid-deadletter' : ''
var topicName = !empty(systemTopicName) ? systemTopicName : 'evgt-mlgov-${resourceToken}'
var vaultName = !empty(keyVaultName) ? keyVaultName : 'kv-mlgov-${take(resourceToken, 12)}'
var useTeamsWebhookSecret = !empty(teamsWebhookUrl) || teamsWebhookFromKeyVault
// The sweep enqueues one message per workspace here; a queue trigger sweeps one workspace each.
var sweepQueueName = 'mlgov-sweep'
var additionalIds = empty(trim(additionalWorkspaceIds)) ? [] : split(replace(additionalWorkspaceIds, ' ', ''), ',')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'mlgov-identity'
  scope: rg
  params: {
    name: 'id-mlgov-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'mlgov-monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-mlgov-${resourceToken}'
    applicationInsightsName: 'appi-mlgov-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'mlgov-storage'
  scope: rg
  params: {
    name: !empty(storageAccountName) ? storageAccountName : 'stmlgov${take(resourceToken, 13)}'
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    queueNames: [
      sweepQueueName
    ]
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'mlgov-keyvault'
  scope: rg
  params: {
    name: vaultName
    location: location
    tags: tags
    enablePurgeProtection: keyVaultPurgeProtection
    teamsWebhookSecretName: teamsWebhookSecretName
    teamsWebhookUrl: teamsWebhookUrl
  }
}

// The EXISTING workspace is only read here (its MLflow tracking URI). What must live in its
// resource group (the app's role on it, the system topic) is deployed by scripts/postprovision.sh
// from workspace-access.bicep, so that this deployment, and `azd down`, never touch that group.
resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
  scope: resourceGroup(workspaceResourceGroupName)
}

module appAccess 'modules/app-access.bicep' = {
  name: 'mlgov-app-access'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    deadLetterContainerName: deadLetterContainerName
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module eventsTopic 'modules/events-topic.bicep' = if (enableGovernanceEventsTopic) {
  name: 'mlgov-events-topic'
  scope: rg
  params: {
    name: 'evgt-mlgov-events-${take(resourceToken, 13)}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'mlgov-function-app'
  scope: rg
  params: {
    planName: 'plan-mlgov-${resourceToken}'
    name: appName
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.primaryBlobEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    // Every setting mlgov reads. The timer schedules must exist or the host does not start.
    governanceSettings: {
      // The tracking URI as the workspace reports it, so the app needs no management-plane call
      // to start; the coordinates below let it resolve other workspaces, restore through
      // azure-ai-ml and name the events' source.
      MLFLOW_TRACKING_URI: workspace.properties.mlFlowTrackingUri
      AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
      AZURE_ML_WORKSPACE_RESOURCE_GROUP: workspaceResourceGroupName
      AZURE_ML_WORKSPACE_NAME: workspaceName
      // The estate, by ARM id (this workspace first); empty: this workspace alone, as before.
      GOVERNANCE_WORKSPACES: empty(additionalIds) ? '' : join(concat([workspace.id], additionalIds), ',')
      GOVERNANCE_WORKSPACE_SCOPE: workspaceDiscoveryScope
      GOVERNANCE_EVENTS_TOPIC_ENDPOINT: enableGovernanceEventsTopic ? eventsTopic.outputs.endpoint : governanceEventsTopicEndpoint
      GOVERNANCE_DRY_RUN: governanceDryRun
      GOVERNANCE_EXPERIMENTS: governanceExperiments
      GOVERNANCE_CLEANUP_STATUSES: governanceCleanupEnabled ? governanceCleanupStatuses : ''
      GOVERNANCE_CLEANUP_AFTER_HOURS: governanceCleanupAfterHours
      GOVERNANCE_CLEANUP_MAX_RUNS: governanceCleanupMaxRuns
      GOVERNANCE_PROTECT_TAG: governanceProtectTag
      GOVERNANCE_REQUIRED_TAGS: governanceRequiredTags
      GOVERNANCE_TAG_DEFAULTS: governanceTagDefaults
      GOVERNANCE_PROMOTION_METRIC: governancePromotionMetric
      GOVERNANCE_PROMOTION_THRESHOLD: governancePromotionThreshold
      GOVERNANCE_PROMOTION_GOAL: governancePromotionGoal
      GOVERNANCE_PROMOTION_MIN_IMPROVEMENT: governancePromotionMinImprovement
      GOVERNANCE_PROMOTION_MODEL_NAME: governancePromotionModelName
      GOVERNANCE_PROMOTION_ARTIFACT_PATH: governancePromotionArtifactPath
      GOVERNANCE_PROMOTION_ALIAS: governancePromotionAlias
      // A Key Vault reference, never the URL itself: the URL carries its credential.
      GOVERNANCE_TEAMS_WEBHOOK_URL: useTeamsWebhookSecret ? '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.teamsWebhookSecretUri})' : ''
      GOVERNANCE_SUMMARY_WINDOW_HOURS: governanceSummaryWindowHours
      GOVERNANCE_CATCHUP_HOURS: governanceCatchupHours
      GOVERNANCE_SWEEP_SCHEDULE: governanceSweepSchedule
      GOVERNANCE_SUMMARY_SCHEDULE: governanceSummarySchedule
      GOVERNANCE_POLICY_FILE: governancePolicyFile
      GOVERNANCE_CONCURRENCY: governanceConcurrency
    }
  }
  // Roles first: the host needs its storage role at start, the Key Vault reference its secret role.
  dependsOn: [
    appAccess
  ]
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd writes them to .azure/<env>/.env; scripts/postdeploy.sh and docs/deploy.md use them)
// ---------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_FUNCTION_APP_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_TEAMS_WEBHOOK_SECRET_NAME string = teamsWebhookSecretName
output AZURE_APPLICATION_INSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_ML_WORKSPACE_NAME string = workspaceName
output AZURE_ML_WORKSPACE_RESOURCE_GROUP string = workspaceResourceGroupName
output AZURE_ML_WORKSPACE_ID string = workspace.id
output AZURE_ML_ADDITIONAL_WORKSPACE_IDS string = join(additionalIds, ',')
output MLFLOW_TRACKING_URI string = workspace.properties.mlFlowTrackingUri
output AZURE_STORAGE_SWEEP_QUEUE string = sweepQueueName
output GOVERNANCE_EVENTS_TOPIC_ENDPOINT string = enableGovernanceEventsTopic ? eventsTopic.outputs.endpoint : governanceEventsTopicEndpoint
output EVENTGRID_SYSTEM_TOPIC_NAME string = topicName
output EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP string = workspaceResourceGroupName
output EVENTGRID_DEADLETTER_STORAGE_ID string = enableDeadLetter ? storage.outputs.id : ''
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
