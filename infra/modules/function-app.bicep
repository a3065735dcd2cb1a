// The Flex Consumption (FC1, Linux) plan and Function App running mlgov's three functions:
// on_run_event (Event Grid), scheduled_sweep and scheduled_summary (timers).
// On Flex the runtime lives in functionAppConfig.runtime: FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION must not be set as app settings (the platform rejects them).

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the Function App.')
param name string

@description('Azure region.')
param location string

@description('Tags for the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('azd service name in azure.yaml; azd finds the app by this tag.')
param serviceName string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (selects it for storage, App Insights and DefaultAzureCredential).')
param identityClientId string

@description('Name of the host storage account.')
param storageAccountName string

@description('Blob endpoint of the host storage account (ends with /).')
param storageBlobEndpoint string

@description('Container that receives the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('Python version of the Flex runtime (the code needs 3.11+: datetime.UTC; azure-functions 1.x stops at 3.12).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

// Flex Consumption documents 40 as the lowest maximum and 1000 as the highest; lower values are a
// regional preview only (Azure/azure-functions-host#10523), see docs/deploy.md.
@description('Most instances the platform scales out to (40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Application settings of mlgov itself (MLFLOW_TRACKING_URI, GOVERNANCE_*).')
param governanceSettings object

var appSettings = union(governanceSettings, {
  // Host storage through the managed identity (no connection string, shared keys are off).
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Telemetry with Entra ID auth (App Insights has local auth disabled).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // DefaultAzureCredential (azureml-mlflow, azure-ai-ml) picks the user-assigned identity.
  AZURE_CLIENT_ID: identityClientId
})

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption exists only in some regions; a missed timer run is caught up by the next sweep and Event Grid retries for 24 hours.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_17:No HTTP endpoints of its own; Event Grid cannot present client certificates.
  #checkov:skip=CKV_AZURE_213:No HTTP endpoints to probe; Flex Consumption replaces unhealthy instances itself.
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by design; instance counts are the platform's.
  #checkov:skip=CKV_AZURE_78:Flex Consumption offers no FTP(S) and rejects siteConfig.ftpsState (ARM error 51021, Azure/azure-cli#31414); deployment is by blob container only.
  #checkov:skip=CKV_AZURE_222:Event Grid reaches the app's Event Grid webhook over the public endpoint (no VNet in this deployment); the webhook needs the extension's system key.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity (default: system identity).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
      // Only properties Flex Consumption accepts: ftpsState, alwaysOn, linuxFxVersion,
      // use32BitWorkerProcess, preWarmedInstanceCount, functionAppScaleLimit and the other
      // deprecated site properties are rejected (ARM error 51021; tests/infra lists them with
      // their sources). FTP is unavailable on Flex anyway.
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
