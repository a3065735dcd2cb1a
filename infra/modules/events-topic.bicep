// Optional Event Grid custom topic for mlgov's governance events (run deleted, model promoted, ...)
// published by the app with azure-eventgrid's EventGridPublisherClient and its managed identity.
// CloudEvents 1.0 input schema; local (key/SAS) auth disabled: Entra ID only.

@description('Name of the custom topic (3-50 characters).')
@minLength(3)
@maxLength(50)
param name string

@description('Azure region.')
param location string

@description('Tags for the topic.')
param tags object = {}

@description('Principal id of the Function App identity (publishes the events).')
param appPrincipalId string

// EventGrid Data Sender: publish events to this topic, nothing else.
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  #checkov:skip=CKV_AZURE_193:No virtual network in this deployment; the app publishes over the public endpoint. Keys and SAS are off (disableLocalAuth), so only Entra ID principals holding EventGrid Data Sender can publish.
  name: name
  location: location
  tags: tags
  // For subscribers that take delivery with the topic's identity (Service Bus, Storage queue, ...).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource appEventGridDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, appPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output name string = topic.name
output endpoint string = topic.properties.endpoint
