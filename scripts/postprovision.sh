#!/bin/sh
# azd postprovision hook: what mlgov needs in the workspace's resource group.
#
# Deploys infra/workspace-access.bicep there: AzureML Data Scientist for the app's identity on
# the workspace, the Event Grid system topic on the workspace, and the topic's right to write
# dead-letters. It is a separate deployment on purpose: azd's own deployment then never touches
# the workspace's resource group, so `azd down` cannot count it among the groups to delete.
# Idempotent; inputs are azd outputs of infra/main.bicep (azd passes them to hooks).
set -eu

# Outside azd (run by hand), read the environment's values from azd.
if [ -z "${AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID:-}" ] && command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values)"
fi

missing=""
for name in AZURE_RESOURCE_GROUP AZURE_STORAGE_ACCOUNT_NAME AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID \
  AZURE_ML_WORKSPACE_NAME AZURE_ML_WORKSPACE_RESOURCE_GROUP EVENTGRID_SYSTEM_TOPIC_NAME; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "postprovision: not set:$missing (run 'azd provision' first)" >&2
  exit 2
fi
if ! command -v az >/dev/null 2>&1; then
  echo "postprovision: the Azure CLI (az) is required for the workspace-side deployment" >&2
  exit 2
fi

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
template="$here/../infra/workspace-access.bicep"

set -- \
  "workspaceName=$AZURE_ML_WORKSPACE_NAME" \
  "appPrincipalId=$AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID" \
  "systemTopicName=$EVENTGRID_SYSTEM_TOPIC_NAME" \
  "appResourceGroupName=$AZURE_RESOURCE_GROUP" \
  "storageAccountName=$AZURE_STORAGE_ACCOUNT_NAME"
if [ -n "${EVENTGRID_DEADLETTER_CONTAINER:-}" ]; then
  set -- "$@" "deadLetterContainerName=$EVENTGRID_DEADLETTER_CONTAINER"
fi

echo "postprovision: granting access to $AZURE_ML_WORKSPACE_NAME and creating system topic $EVENTGRID_SYSTEM_TOPIC_NAME"
az deployment group create \
  --resource-group "$AZURE_ML_WORKSPACE_RESOURCE_GROUP" \
  --name "mlgov-workspace-$(printf '%s' "${AZURE_ENV_NAME:-default}" | cut -c1-48)" \
  --template-file "$template" \
  --parameters "$@" \
  --query properties.outputs.systemTopicId.value \
  --output tsv
echo "postprovision: workspace access and system topic in place"
