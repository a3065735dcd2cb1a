# Shared by scripts/postprovision.sh and scripts/postdeploy.sh (sourced, POSIX sh): the governed
# workspaces and the Event Grid system topic of each.
#
# The estate is the workspace named by AZURE_ML_WORKSPACE_NAME / AZURE_ML_WORKSPACE_RESOURCE_GROUP
# (in AZURE_SUBSCRIPTION_ID) plus every ARM id in AZURE_ML_ADDITIONAL_WORKSPACE_IDS
# (comma-separated; each may be in another resource group or subscription).

lower() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]'
}

# One line per workspace: "<subscription> <resource group> <name> <default topic name>".
estate() {
  printf '%s %s %s %s\n' "$AZURE_SUBSCRIPTION_ID" "$AZURE_ML_WORKSPACE_RESOURCE_GROUP" \
    "$AZURE_ML_WORKSPACE_NAME" "$EVENTGRID_SYSTEM_TOPIC_NAME"
  old_ifs=$IFS
  IFS=','
  for id in ${AZURE_ML_ADDITIONAL_WORKSPACE_IDS:-}; do
    IFS=$old_ifs
    id=$(printf '%s' "$id" | tr -d ' ')
    [ -n "$id" ] || continue
    # /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<name>
    set -f
    IFS='/'
    # shellcheck disable=SC2086
    set -- $id
    IFS=$old_ifs
    set +f
    if [ "$#" -ne 9 ] || [ "$(lower "$2")" != subscriptions ] || [ "$(lower "$4")" != resourcegroups ] \
      || [ "$(lower "$7")" != microsoft.machinelearningservices ] || [ "$(lower "$8")" != workspaces ]; then
      echo "AZURE_ML_ADDITIONAL_WORKSPACE_IDS: not an Azure ML workspace id: $id" >&2
      return 2
    fi
    # System topic names allow letters, digits and hyphens; workspace names may hold underscores.
    printf '%s %s %s %s\n' "$3" "$5" "$9" "evgt-mlgov-$(printf '%s' "$9" | tr '_' '-')"
    IFS=','
  done
  IFS=$old_ifs
}

# topic_for SUB RG WORKSPACE DEFAULT: the name of the workspace's system topic. Only one system
# topic may exist per source, so an existing one (found by its source, in the workspace's
# resource group) is adopted whatever its name; a topic of the default name on another source is
# refused. Prints "<name> existing" or "<name> new"; returns 2 with a message on a conflict.
topic_for() {
  sub=$1 rg=$2 ws=$3 wanted=$4
  ws_id=$(lower "/subscriptions/$sub/resourceGroups/$rg/providers/Microsoft.MachineLearningServices/workspaces/$ws")
  listing=$(az eventgrid system-topic list --subscription "$sub" --resource-group "$rg" \
    --query "[].[name, source]" --output tsv) || return 1
  found="" clash=""
  tab=$(printf '\t')
  while IFS=$tab read -r name source; do
    [ -n "$name" ] || continue
    if [ "$(lower "$source")" = "$ws_id" ]; then
      found=$name
    elif [ "$name" = "$wanted" ]; then
      clash=$source
    fi
  done <<LISTING
$listing
LISTING
  if [ -n "$found" ]; then
    printf '%s existing\n' "$found"
  elif [ -n "$clash" ]; then
    echo "system topic $wanted in $rg already serves another source ($clash); set" \
      "EVENTGRID_SYSTEM_TOPIC_NAME_OVERRIDE (or rename) so the topic of $ws gets its own name" >&2
    return 2
  else
    printf '%s new\n' "$wanted"
  fi
}
