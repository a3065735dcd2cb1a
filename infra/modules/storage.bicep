// Host storage for the Function App: Flex deployment package container, host leases/keys
// (timer triggers take blob leases), the sweep fan-out queue, and the optional Event Grid
// dead-letter container.
// Shared keys are disabled: everything reaches it through Entra ID (managed identities).

@description('Name of the storage account (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object = {}

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Blob container for Event Grid dead-letters; empty creates none.')
param deadLetterContainerName string = ''

@description('Storage queues to create (the sweep fan-out queue); the Functions runtime adds <queue>-poison itself.')
param queueNames array = []

@description('Storage redundancy.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_35:No virtual network in this deployment; Flex Consumption without VNet integration and Event Grid dead-lettering reach the account over its public endpoint. Access is Entra ID only (shared keys off).
  #checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: public endpoint kept, authentication is Entra ID only and anonymous blob access is off.
  #checkov:skip=CKV_AZURE_206:Host storage holds only leases, host keys, the deployment package and dead-letters, all reproducible; redundancy is a parameter (storageSkuName).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    // Identity-based access only: the Functions host uses AzureWebJobsStorage__credential.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (!empty(deadLetterContainerName)) {
  parent: blobService
  name: !empty(deadLetterContainerName) ? deadLetterContainerName : 'unused'
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

output id string = storage.id
output name string = storage.name
output primaryBlobEndpoint string = storage.properties.primaryEndpoints.blob
