# azd postprovision hook (Windows): same steps as scripts/postprovision.sh.
# Deploys infra/workspace-access.bicep into the workspace's resource group, outside azd's own
# deployment, so that `azd down` never counts that resource group as its own.
$ErrorActionPreference = 'Stop'

if (-not $env:AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (azd env get-values)) {
        if ($line -match '^([^=]+)="?(.*?)"?$') {
            Set-Item -Path "env:$($Matches[1])" -Value $Matches[2]
        }
    }
}

$required = 'AZURE_RESOURCE_GROUP', 'AZURE_STORAGE_ACCOUNT_NAME', 'AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID',
    'AZURE_ML_WORKSPACE_NAME', 'AZURE_ML_WORKSPACE_RESOURCE_GROUP', 'EVENTGRID_SYSTEM_TOPIC_NAME'
$missing = $required | Where-Object { -not [Environment]::GetEnvironmentVariable($_) }
if ($missing) {
    Write-Error "postprovision: not set: $($missing -join ' ') (run 'azd provision' first)"
    exit 2
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Error 'postprovision: the Azure CLI (az) is required for the workspace-side deployment'
    exit 2
}

$template = Join-Path $PSScriptRoot '..' 'infra' 'workspace-access.bicep'
$parameters = @(
    "workspaceName=$($env:AZURE_ML_WORKSPACE_NAME)",
    "appPrincipalId=$($env:AZURE_FUNCTION_APP_IDENTITY_PRINCIPAL_ID)",
    "systemTopicName=$($env:EVENTGRID_SYSTEM_TOPIC_NAME)",
    "appResourceGroupName=$($env:AZURE_RESOURCE_GROUP)",
    "storageAccountName=$($env:AZURE_STORAGE_ACCOUNT_NAME)"
)
if ($env:EVENTGRID_DEADLETTER_CONTAINER) {
    $parameters += "deadLetterContainerName=$($env:EVENTGRID_DEADLETTER_CONTAINER)"
}
$envName = if ($env:AZURE_ENV_NAME) { $env:AZURE_ENV_NAME } else { 'default' }
$deploymentName = 'mlgov-workspace-' + $envName.Substring(0, [Math]::Min(48, $envName.Length))

Write-Host "postprovision: granting access to $($env:AZURE_ML_WORKSPACE_NAME) and creating system topic $($env:EVENTGRID_SYSTEM_TOPIC_NAME)"
az deployment group create --resource-group $env:AZURE_ML_WORKSPACE_RESOURCE_GROUP `
    --name $deploymentName --template-file $template --parameters @parameters `
    --query properties.outputs.systemTopicId.value --output tsv
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host 'postprovision: workspace access and system topic in place'
