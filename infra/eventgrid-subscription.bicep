// The Event Grid subscription that delivers Azure ML run events to on_run_event. Deployed by
// scripts/postdeploy.sh into the workspace's resource group (where the system topic lives),
// after `azd deploy`: Event Grid checks that the function exists when the subscription is made.
// Idempotent: re-running updates the subscription in place.

@description('Name of the Event Grid system topic on the workspace (output EVENTGRID_SYSTEM_TOPIC_NAME).')
param systemTopicName string

@description('Resource id of the Function App (output AZURE_FUNCTION_APP_ID).')
param functionAppId string

@description('Name of the function that handles run events (a contract of the app).')
param functionName string = 'on_run_event'

@description('Name of the event subscription.')
@minLength(3)
@maxLength(64)
param subscriptionName string = 'mlgov-run-events'

@description('Azure ML event types delivered; others are not sent.')
param includedEventTypes array = [
  'Microsoft.MachineLearningServices.RunCompleted'
  'Microsoft.MachineLearningServices.RunStatusChanged'
]

@description('Delivery attempts before an event is dropped or dead-lettered.')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes Event Grid keeps retrying an event.')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

@description('Resource id of the storage account for dead-letters (output EVENTGRID_DEADLETTER_STORAGE_ID); empty: no dead-lettering.')
param deadLetterStorageAccountId string = ''

@description('Blob container for dead-letters (output EVENTGRID_DEADLETTER_CONTAINER).')
param deadLetterContainerName string = ''

var deadLetter = !empty(deadLetterStorageAccountId) && !empty(deadLetterContainerName)

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource runEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: systemTopic
  name: subscriptionName
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        // The Functions Event Grid trigger handles one event per invocation.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    // Filter on event type only: an advanced filter on data.runStatus would drop RunCompleted
    // (a missing key does not match). Status filtering happens in the app.
    filter: {
      includedEventTypes: includedEventTypes
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Dead-letter with the system topic's own identity (the storage account accepts no keys).
    deadLetterWithResourceIdentity: deadLetter ? {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    } : null
  }
}

output subscriptionId string = runEvents.id
output endpointResourceId string = '${functionAppId}/functions/${functionName}'
