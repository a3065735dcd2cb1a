# azd postprovision hook (Windows): same steps as scripts/postprovision.sh.
# For every governed workspace, deploys infra/workspace-access.bicep into that workspace's
# resource group (and subscription), outside azd's own deployment, so that `azd down` never
# counts it as its own. An existing system topic is adopted with its identities and tags kept.
$ErrorActionPreference = 'Stop'

if (-not $env:AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (azd env get-values)) {
        if ($line -match '^([^=]+)="?(.*?)"?$') {
            Set-Item -Path "env:$($Matches[1])" -Value $Matches[2]
        }
    }
}

$required = 'AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_STORAGE_ACCOUNT_NAME',
    'AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID', 'AZURE_ML_WORKSPACE_NAME',
    'AZURE_ML_WORKSPACE_RESOURCE_GROUP', 'EVENTGRID_SYSTEM_TOPIC_NAME'
$missing = $required | Where-Object { -not [Environment]::GetEnvironmentVariable($_) }
if ($missing) {
    Write-Error "postprovision: not set: $($missing -join ' ') (run 'azd provision' first)"
    exit 2
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Error 'postprovision: the Azure CLI (az) is required for the workspace-side deployment'
    exit 2
}

. (Join-Path $PSScriptRoot 'post_common.ps1')
$template = Join-Path $PSScriptRoot '..' 'infra' 'workspace-access.bicep'

foreach ($ws in (Get-Estate)) {
    $topic = Get-WorkspaceTopic $ws
    $parameters = @(
        "workspaceName=$($ws.Name)",
        "appPrincipalId=$($env:AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID)",
        "systemTopicName=$($topic.Name)",
        "appSubscriptionId=$($env:AZURE_SUBSCRIPTION_ID)",
        "appResourceGroupName=$($env:AZURE_RESOURCE_GROUP)",
        "storageAccountName=$($env:AZURE_STORAGE_ACCOUNT_NAME)"
    )
    if ($env:EVENTGRID_DEADLETTER_CONTAINER) {
        $parameters += "deadLetterContainerName=$($env:EVENTGRID_DEADLETTER_CONTAINER)"
    }
    if ($topic.Existing) {
        # A deployment PUTs the whole topic: read what it has, deploy it back unchanged.
        $existing = az eventgrid system-topic show --subscription $ws.Subscription `
            --resource-group $ws.ResourceGroup --name $topic.Name --output json | ConvertFrom-Json
        if ($LASTEXITCODE -ne 0) { exit 1 }
        $identities = if ($existing.identity.userAssignedIdentities) { $existing.identity.userAssignedIdentities } else { @{} }
        $tags = if ($existing.tags) { $existing.tags } else { @{} }
        $parameters += "existingTopicUserAssignedIdentities=$($identities | ConvertTo-Json -Compress -Depth 5)"
        $parameters += "existingTopicTags=$($tags | ConvertTo-Json -Compress -Depth 5)"
        Write-Host "postprovision: adopting system topic $($topic.Name) on $($ws.Name) (its identities and tags are kept)"
    }
    Write-Host "postprovision: granting access to $($ws.Name) and creating system topic $($topic.Name)"
    az deployment group create --subscription $ws.Subscription --resource-group $ws.ResourceGroup `
        --name (Get-DeploymentName 'mlgov-workspace' $ws) --template-file $template --parameters @parameters `
        --query properties.outputs.systemTopicId.value --output tsv
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
Write-Host 'postprovision: workspace access and system topics in place'
