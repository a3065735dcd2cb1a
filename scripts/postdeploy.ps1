# azd postdeploy hook (Windows): same steps as scripts/postdeploy.sh.
# Subscribe on_run_event to the workspace's run events once the function exists.
$ErrorActionPreference = 'Stop'
$FunctionName = 'on_run_event'

if (-not $env:AZURE_FUNCTION_APP_NAME -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (azd env get-values)) {
        if ($line -match '^([^=]+)="?(.*?)"?$') {
            Set-Item -Path "env:$($Matches[1])" -Value $Matches[2]
        }
    }
}

$required = 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_APP_ID',
    'EVENTGRID_SYSTEM_TOPIC_NAME', 'EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP'
$missing = $required | Where-Object { -not [Environment]::GetEnvironmentVariable($_) }
if ($missing) {
    Write-Error "postdeploy: not set: $($missing -join ' ') (run 'azd provision' first)"
    exit 2
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Error 'postdeploy: the Azure CLI (az) is required to create the Event Grid subscription'
    exit 2
}

$template = Join-Path $PSScriptRoot '..' 'infra' 'eventgrid-subscription.bicep'
$attempts = if ($env:MLGOV_POSTDEPLOY_WAIT_ATTEMPTS) { [int]$env:MLGOV_POSTDEPLOY_WAIT_ATTEMPTS } else { 30 }
$delay = if ($env:MLGOV_POSTDEPLOY_WAIT_SECONDS) { [int]$env:MLGOV_POSTDEPLOY_WAIT_SECONDS } else { 10 }

for ($attempt = 1; ; $attempt++) {
    az functionapp function show --resource-group $env:AZURE_RESOURCE_GROUP `
        --name $env:AZURE_FUNCTION_APP_NAME --function-name $FunctionName `
        --query name --output tsv 2>$null | Out-Null
    if ($LASTEXITCODE -eq 0) { break }
    if ($attempt -ge $attempts) {
        Write-Error ("postdeploy: $FunctionName not found on $($env:AZURE_FUNCTION_APP_NAME) after $attempts tries; " +
            "check the deployment ('az functionapp function list'), then run scripts/postdeploy.ps1 again")
        exit 1
    }
    Write-Host "postdeploy: waiting for $FunctionName on $($env:AZURE_FUNCTION_APP_NAME) ($attempt/$attempts)"
    Start-Sleep -Seconds $delay
}

$maxAttempts = if ($env:EVENTGRID_MAX_DELIVERY_ATTEMPTS) { $env:EVENTGRID_MAX_DELIVERY_ATTEMPTS } else { '30' }
$ttl = if ($env:EVENTGRID_EVENT_TTL_MINUTES) { $env:EVENTGRID_EVENT_TTL_MINUTES } else { '1440' }
$parameters = @(
    "systemTopicName=$($env:EVENTGRID_SYSTEM_TOPIC_NAME)",
    "functionAppId=$($env:AZURE_FUNCTION_APP_ID)",
    "functionName=$FunctionName",
    "maxDeliveryAttempts=$maxAttempts",
    "eventTimeToLiveInMinutes=$ttl"
)
if ($env:EVENTGRID_DEADLETTER_STORAGE_ID -and $env:EVENTGRID_DEADLETTER_CONTAINER) {
    $parameters += "deadLetterStorageAccountId=$($env:EVENTGRID_DEADLETTER_STORAGE_ID)"
    $parameters += "deadLetterContainerName=$($env:EVENTGRID_DEADLETTER_CONTAINER)"
}
$envName = if ($env:AZURE_ENV_NAME) { $env:AZURE_ENV_NAME } else { 'default' }
$deploymentName = 'mlgov-eventgrid-' + $envName.Substring(0, [Math]::Min(48, $envName.Length))

Write-Host "postdeploy: subscribing $($env:AZURE_FUNCTION_APP_NAME)/$FunctionName to $($env:EVENTGRID_SYSTEM_TOPIC_NAME)"
az deployment group create --resource-group $env:EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP `
    --name $deploymentName --template-file $template --parameters @parameters `
    --query properties.outputs.endpointResourceId.value --output tsv
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host 'postdeploy: Event Grid subscription in place'
