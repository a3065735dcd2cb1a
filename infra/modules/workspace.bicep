// What lives beside the EXISTING Azure ML workspace (deployed into the workspace's resource
// group, which may differ from the app's): the app identity's role on the workspace and the
// Event Grid system topic on it. Reads the workspace's MLflow tracking URI for the app.

@description('Name of the existing Azure ML workspace.')
param workspaceName string

@description('Principal id of the Function App identity.')
param appPrincipalId string

@description('Name of the Event Grid system topic on the workspace (an existing one of that name is adopted).')
param systemTopicName string

@description('Tags for the system topic.')
param tags object = {}

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

// One system topic per source is allowed; it must sit in the source's region.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: workspace.location
  tags: tags
  // Its own identity writes dead-lettered events to blob storage (shared keys are off there).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

output workspaceId string = workspace.id
output workspaceLocation string = workspace.location
output mlflowTrackingUri string = workspace.properties.mlFlowTrackingUri
output systemTopicName string = systemTopic.name
output systemTopicId string = systemTopic.id
output systemTopicPrincipalId string = systemTopic.identity.principalId
