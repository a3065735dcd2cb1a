# Shared by scripts/postprovision.ps1 and scripts/postdeploy.ps1 (dot-sourced): the governed
# workspaces and the Event Grid system topic of each. Same rules as scripts/post_common.sh.

function Get-Estate {
    # The workspace of AZURE_ML_WORKSPACE_NAME / _RESOURCE_GROUP (in AZURE_SUBSCRIPTION_ID), then
    # every ARM id in AZURE_ML_ADDITIONAL_WORKSPACE_IDS (comma-separated).
    $estate = @([pscustomobject]@{
        Subscription = $env:AZURE_SUBSCRIPTION_ID
        ResourceGroup = $env:AZURE_ML_WORKSPACE_RESOURCE_GROUP
        Name = $env:AZURE_ML_WORKSPACE_NAME
        DefaultTopic = $env:EVENTGRID_SYSTEM_TOPIC_NAME
    })
    foreach ($id in ("$($env:AZURE_ML_ADDITIONAL_WORKSPACE_IDS)" -split ',')) {
        $id = $id.Trim()
        if (-not $id) { continue }
        $parts = $id -split '/'
        if ($parts.Count -ne 9 -or $parts[1] -ne 'subscriptions' -or $parts[3] -ne 'resourceGroups' -or
            $parts[6] -ne 'Microsoft.MachineLearningServices' -or $parts[7] -ne 'workspaces') {
            Write-Error "AZURE_ML_ADDITIONAL_WORKSPACE_IDS: not an Azure ML workspace id: $id"
            exit 2
        }
        $estate += [pscustomobject]@{
            Subscription = $parts[2]
            ResourceGroup = $parts[4]
            Name = $parts[8]
            # System topic names allow letters, digits and hyphens.
            DefaultTopic = 'evgt-mlgov-' + ($parts[8] -replace '_', '-')
        }
    }
    return $estate
}

function Get-WorkspaceTopic($Workspace) {
    # Only one system topic per source: an existing one (by source, in the workspace's resource
    # group) is adopted whatever its name; the default name on another source is refused.
    $wsId = "/subscriptions/$($Workspace.Subscription)/resourceGroups/$($Workspace.ResourceGroup)" +
        "/providers/Microsoft.MachineLearningServices/workspaces/$($Workspace.Name)"
    $topics = az eventgrid system-topic list --subscription $Workspace.Subscription `
        --resource-group $Workspace.ResourceGroup --query '[].{name: name, source: source}' --output json |
        ConvertFrom-Json
    if ($LASTEXITCODE -ne 0) { exit 1 }
    $found = $topics | Where-Object { $_.source -ieq $wsId } | Select-Object -First 1
    if ($found) { return [pscustomobject]@{ Name = $found.name; Existing = $true } }
    $clash = $topics | Where-Object { $_.name -eq $Workspace.DefaultTopic } | Select-Object -First 1
    if ($clash) {
        Write-Error ("system topic $($Workspace.DefaultTopic) in $($Workspace.ResourceGroup) already serves " +
            "another source ($($clash.source)); set EVENTGRID_SYSTEM_TOPIC_NAME_OVERRIDE (or rename) so " +
            "the topic of $($Workspace.Name) gets its own name")
        exit 2
    }
    return [pscustomobject]@{ Name = $Workspace.DefaultTopic; Existing = $false }
}

function Get-DeploymentName($Prefix, $Workspace) {
    $envName = if ($env:AZURE_ENV_NAME) { $env:AZURE_ENV_NAME } else { 'default' }
    return "$Prefix-" + $envName.Substring(0, [Math]::Min(16, $envName.Length)) + '-' +
        $Workspace.Name.Substring(0, [Math]::Min(31, $Workspace.Name.Length))
}
