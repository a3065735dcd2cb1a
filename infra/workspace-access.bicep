// What mlgov needs beside the EXISTING Azure ML workspace, in the workspace's resource group:
// the app identity's role on the workspace and the Event Grid system topic on it (+ the topic
// identity's right to write dead-letters into the app's storage).
//
// Deployed by scripts/postprovision.sh once per governed workspace, NOT by azd's main deployment:
// azd then never counts a workspace's resource group as its own (`azd down` deletes the resource
// groups it deployed to).
//
// Adopting an existing system topic: a deployment PUTs the whole topic, so identity and tags not
// in this template would be removed (another subscriber's user-assigned identity with them). The
// hook reads the existing topic first (az eventgrid system-topic show) and passes its
// user-assigned identities and tags in; they are deployed back unchanged, next to mlgov's own.

@description('Name of the existing Azure ML workspace.')
param workspaceName string

@description('Principal id of the Function App identity (output AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID).')
param appPrincipalId string

@description('Name of the Event Grid system topic on the workspace (an existing one of that name is adopted).')
param systemTopicName string

@description('Resource group of the app (output AZURE_RESOURCE_GROUP); holds the dead-letter container.')
param appResourceGroupName string

@description('Subscription of the app (output AZURE_SUBSCRIPTION_ID); the workspace may be in another one.')
param appSubscriptionId string = subscription().subscriptionId

@description('Host storage account of the app (output AZURE_STORAGE_ACCOUNT_NAME).')
param storageAccountName string

@description('Dead-letter container (output EVENTGRID_DEADLETTER_CONTAINER); empty: no dead-lettering.')
param deadLetterContainerName string = ''

@description('Tags for the system topic.')
param tags object = {
  application: 'mlgov'
}

@description('userAssignedIdentities of the existing topic being adopted (read by the hook); kept as they are. Empty: none.')
param existingTopicUserAssignedIdentities object = {}

@description('Tags of the existing topic being adopted (read by the hook); kept, mlgov\'s own added. Empty: none.')
param existingTopicTags object = {}

// AzureML Data Scientist: read runs and experiments, set tags, delete/restore runs and register
// model versions through the workspace's MLflow endpoint; no compute or workspace management.
var azureMLDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource appDataScientist 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appPrincipalId, azureMLDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', azureMLDataScientist)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

var keepUserAssigned = !empty(existingTopicUserAssignedIdentities)

// One system topic per source is allowed; it must sit in the source's region.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: workspace.location
  tags: union(existingTopicTags, tags)
  // Its own system identity writes dead-lettered events to blob storage (shared keys are off
  // there); user-assigned identities of an adopted topic stay.
  identity: keepUserAssigned ? {
    type: 'SystemAssigned, UserAssigned'
    userAssignedIdentities: existingTopicUserAssignedIdentities
  } : {
    type: 'SystemAssigned'
  }
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

module deadLetterWriter 'modules/deadletter-writer.bicep' = if (!empty(deadLetterContainerName)) {
  name: 'mlgov-deadletter-writer'
  scope: resourceGroup(appSubscriptionId, appResourceGroupName)
  params: {
    storageAccountName: storageAccountName
    containerName: deadLetterContainerName
    principalId: systemTopic.identity.principalId
  }
}

output systemTopicName string = systemTopic.name
output systemTopicId string = systemTopic.id
output workspaceId string = workspace.id
