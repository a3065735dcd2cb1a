#!/bin/sh
# azd postprovision hook: what mlgov needs beside each governed workspace.
#
# For every workspace of the estate (scripts/post_common.sh) it deploys
# infra/workspace-access.bicep into that workspace's resource group (and subscription):
# AzureML Data Scientist for the app's identity on the workspace, the Event Grid system topic on
# the workspace, and the topic's right to write dead-letters. It is a separate deployment on
# purpose: azd's own deployment then never touches a workspace's resource group, so `azd down`
# cannot count it among the groups to delete.
#
# An existing system topic on a workspace is adopted. A deployment PUTs the whole topic, so its
# user-assigned identities and tags are read first and passed back in: another subscriber's
# identity and tags survive. Idempotent; inputs are azd outputs of infra/main.bicep.
set -eu

# Outside azd (run by hand), read the environment's values from azd.
if [ -z "${AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID:-}" ] && command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values)"
fi

missing=""
for name in AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_STORAGE_ACCOUNT_NAME \
  AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID AZURE_ML_WORKSPACE_NAME \
  AZURE_ML_WORKSPACE_RESOURCE_GROUP EVENTGRID_SYSTEM_TOPIC_NAME; do
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
. "$here/post_common.sh"

workspaces=$(estate) || exit 2
# fd 3 carries the list, so nothing the loop runs can read it from stdin.
while read -r sub rg ws default_topic <&3; do
  found=$(topic_for "$sub" "$rg" "$ws" "$default_topic") || exit 2
  topic=${found% *}

  set -- \
    "workspaceName=$ws" \
    "appPrincipalId=$AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID" \
    "systemTopicName=$topic" \
    "appSubscriptionId=$AZURE_SUBSCRIPTION_ID" \
    "appResourceGroupName=$AZURE_RESOURCE_GROUP" \
    "storageAccountName=$AZURE_STORAGE_ACCOUNT_NAME"
  if [ -n "${EVENTGRID_DEADLETTER_CONTAINER:-}" ]; then
    set -- "$@" "deadLetterContainerName=$EVENTGRID_DEADLETTER_CONTAINER"
  fi

  if [ "${found#* }" = existing ]; then
    identities=$(az eventgrid system-topic show --subscription "$sub" --resource-group "$rg" \
      --name "$topic" --query identity.userAssignedIdentities --output json)
    tags=$(az eventgrid system-topic show --subscription "$sub" --resource-group "$rg" \
      --name "$topic" --query tags --output json)
    case $identities in '' | null) identities='{}' ;; esac
    case $tags in '' | null) tags='{}' ;; esac
    echo "postprovision: adopting system topic $topic on $ws (its identities and tags are kept)"
    [ "$topic" = "$default_topic" ] || [ "$ws" != "$AZURE_ML_WORKSPACE_NAME" ] \
      || echo "postprovision: note: the outputs name $default_topic; azd env set" \
        "EVENTGRID_SYSTEM_TOPIC_NAME_OVERRIDE $topic makes them name the adopted topic"
    set -- "$@" "existingTopicUserAssignedIdentities=$identities" "existingTopicTags=$tags"
  fi

  echo "postprovision: granting access to $ws and creating system topic $topic"
  az deployment group create \
    --subscription "$sub" \
    --resource-group "$rg" \
    --name "mlgov-workspace-$(printf '%s' "${AZURE_ENV_NAME:-default}" | cut -c1-16)-$(printf '%s' "$ws" | cut -c1-31)" \
    --template-file "$template" \
    --parameters "$@" \
    --query properties.outputs.systemTopicId.value \
    --output tsv
done 3<<WORKSPACES
$workspaces
WORKSPACES
echo "postprovision: workspace access and system topics in place"
