#!/bin/sh
# azd postdeploy hook: subscribe on_run_event to the run events of every governed workspace.
#
# Event Grid validates an AzureFunction destination when the subscription is made, so this runs
# after `azd deploy`: it waits until the host has indexed on_run_event, then, for each workspace of
# the estate (scripts/post_common.sh), deploys infra/eventgrid-subscription.bicep into the
# resource group of that workspace's system topic (idempotent).
#
# Inputs are azd outputs of infra/main.bicep (azd passes them to hooks). Optional tuning:
#   EVENTGRID_MAX_DELIVERY_ATTEMPTS (1-30, default 30), EVENTGRID_EVENT_TTL_MINUTES (1-1440,
#   default 1440), MLGOV_POSTDEPLOY_WAIT_ATTEMPTS (default 30), MLGOV_POSTDEPLOY_WAIT_SECONDS (default 10).
set -eu

FUNCTION_NAME=on_run_event

# Outside azd (run by hand), read the environment's values from azd.
if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values)"
fi

missing=""
for name in AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_FUNCTION_APP_ID \
  AZURE_ML_WORKSPACE_NAME AZURE_ML_WORKSPACE_RESOURCE_GROUP EVENTGRID_SYSTEM_TOPIC_NAME; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "postdeploy: not set:$missing (run 'azd provision' first)" >&2
  exit 2
fi
if ! command -v az >/dev/null 2>&1; then
  echo "postdeploy: the Azure CLI (az) is required to create the Event Grid subscription" >&2
  exit 2
fi

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
template="$here/../infra/eventgrid-subscription.bicep"
. "$here/post_common.sh"
attempts=${MLGOV_POSTDEPLOY_WAIT_ATTEMPTS:-30}
delay=${MLGOV_POSTDEPLOY_WAIT_SECONDS:-10}

# Flex Consumption indexes the functions shortly after the package lands.
attempt=1
until az functionapp function show \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --name "$AZURE_FUNCTION_APP_NAME" \
  --function-name "$FUNCTION_NAME" \
  --query name --output tsv >/dev/null 2>&1; do
  if [ "$attempt" -ge "$attempts" ]; then
    echo "postdeploy: $FUNCTION_NAME not found on $AZURE_FUNCTION_APP_NAME after $attempts tries;" \
      "check the deployment ('az functionapp function list'), then run scripts/postdeploy.sh again" >&2
    exit 1
  fi
  echo "postdeploy: waiting for $FUNCTION_NAME on $AZURE_FUNCTION_APP_NAME ($attempt/$attempts)"
  attempt=$((attempt + 1))
  sleep "$delay"
done

workspaces=$(estate) || exit 2
while read -r sub rg ws default_topic <&3; do
  found=$(topic_for "$sub" "$rg" "$ws" "$default_topic") || exit 2
  topic=${found% *}
  if [ "${found#* }" != existing ]; then
    echo "postdeploy: $ws has no system topic yet; run scripts/postprovision.sh (azd provision) first" >&2
    exit 2
  fi

  set -- \
    "systemTopicName=$topic" \
    "functionAppId=$AZURE_FUNCTION_APP_ID" \
    "functionName=$FUNCTION_NAME" \
    "maxDeliveryAttempts=${EVENTGRID_MAX_DELIVERY_ATTEMPTS:-30}" \
    "eventTimeToLiveInMinutes=${EVENTGRID_EVENT_TTL_MINUTES:-1440}"
  if [ -n "${EVENTGRID_DEADLETTER_STORAGE_ID:-}" ] && [ -n "${EVENTGRID_DEADLETTER_CONTAINER:-}" ]; then
    set -- "$@" \
      "deadLetterStorageAccountId=$EVENTGRID_DEADLETTER_STORAGE_ID" \
      "deadLetterContainerName=$EVENTGRID_DEADLETTER_CONTAINER"
  fi

  echo "postdeploy: subscribing $AZURE_FUNCTION_APP_NAME/$FUNCTION_NAME to $topic ($ws)"
  az deployment group create \
    --subscription "$sub" \
    --resource-group "$rg" \
    --name "mlgov-eventgrid-$(printf '%s' "${AZURE_ENV_NAME:-default}" | cut -c1-16)-$(printf '%s' "$ws" | cut -c1-31)" \
    --template-file "$template" \
    --parameters "$@" \
    --query properties.outputs.endpointResourceId.value \
    --output tsv
done 3<<WORKSPACES
$workspaces
WORKSPACES
echo "postdeploy: Event Grid subscriptions in place"
