# azd postdeploy hook (Windows): same steps as scripts/postdeploy.sh.
# Subscribe on_run_event to the run events of every governed workspace once the function exists.
$ErrorActionPreference = 'Stop'
$FunctionName = 'on_run_event'

if (-not $env:AZURE_FUNCTION_APP_NAME -and (Get-Command azd -ErrorAction SilentlyContinue)) {
    foreach ($line in (azd env get-values)) {
        if ($line -match '^([^=]+)="?(.*?)"?$') {
            Set-Item -Path "env:$($Matches[1])" -Value $Matches[2]
        }
    }
}

$required = 'AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_APP_ID',
    'AZURE_ML_WORKSPACE_NAME', 'AZURE_ML_WORKSPACE_RESOURCE_GROUP', 'EVENTGRID_SYSTEM_TOPIC_NAME'
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
. (Join-Path $PSScriptRoot 'post_common.ps1')

foreach ($ws in (Get-Estate)) {
    $topic = Get-WorkspaceTopic $ws
    if (-not $topic.Existing) {
        Write-Error "postdeploy: $($ws.Name) has no system topic yet; run scripts/postprovision.ps1 (azd provision) first"
        exit 2
    }
    $parameters = @(
        "systemTopicName=$($topic.Name)",
        "functionAppId=$($env:AZURE_FUNCTION_APP_ID)",
        "functionName=$FunctionName",
        "maxDeliveryAttempts=$maxAttempts",
        "eventTimeToLiveInMinutes=$ttl"
    )
    if ($env:EVENTGRID_DEADLETTER_STORAGE_ID -and $env:EVENTGRID_DEADLETTER_CONTAINER) {
        $parameters += "deadLetterStorageAccountId=$($env:EVENTGRID_DEADLETTER_STORAGE_ID)"
        $parameters += "deadLetterContainerName=$($env:EVENTGRID_DEADLETTER_CONTAINER)"
    }
    Write-Host "postdeploy: subscribing $($env:AZURE_FUNCTION_APP_NAME)/$FunctionName to $($topic.Name) ($($ws.Name))"
    az deployment group create --subscription $ws.Subscription --resource-group $ws.ResourceGroup `
        --name (Get-DeploymentName 'mlgov-eventgrid' $ws) --template-file $template --parameters @parameters `
        --query properties.outputs.endpointResourceId.value --output tsv
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
Write-Host 'postdeploy: Event Grid subscriptions in place'
