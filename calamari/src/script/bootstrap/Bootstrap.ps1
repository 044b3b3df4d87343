# Calamari for Rust: the PowerShell bootstrap, generated per step.
# The variables file holds "name NUL value NUL ..." (UTF-8); it is 0600 in a 0700 per-step
# directory that Calamari removes when the step ends.

$ErrorActionPreference = 'Stop'

function Convert-ServiceMessageValue([string]$value) {
    if ($null -eq $value) { $value = '' }
    return [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($value))
}

function Write-OctopusServiceMessage([string]$name, [System.Collections.Specialized.OrderedDictionary]$attributes) {
    $text = "##octopus[$name"
    foreach ($key in $attributes.Keys) {
        $text += " $key='" + (Convert-ServiceMessageValue $attributes[$key]) + "'"
    }
    [Console]::Out.WriteLine($text + "]")
}

$OctopusParameters = New-Object 'System.Collections.Generic.Dictionary[String,String]' ([System.StringComparer]::OrdinalIgnoreCase)
$__octopusText = [System.IO.File]::ReadAllText('{{VARIABLES_FILE}}', (New-Object System.Text.UTF8Encoding $false))
$__octopusParts = $__octopusText.Split([char]0)
for ($__i = 0; $__i + 1 -lt $__octopusParts.Length; $__i += 2) {
    if ($__octopusParts[$__i] -ne '') { $OctopusParameters[$__octopusParts[$__i]] = $__octopusParts[$__i + 1] }
}
Remove-Variable __octopusText, __octopusParts, __i

function Set-OctopusVariable([string]$name, [string]$value, [switch]$sensitive) {
    $attributes = [ordered]@{}
    if ($name) { $attributes['name'] = $name }
    if ($value) { $attributes['value'] = $value }
    if ($sensitive) { $attributes['sensitive'] = 'True' }
    Write-OctopusServiceMessage 'setVariable' $attributes
}

function New-OctopusArtifact([string]$path, [string]$name = $null) {
    if (-not $name) { $name = [System.IO.Path]::GetFileName($path) }
    $fullPath = [System.IO.Path]::GetFullPath((Join-Path (Get-Location) $path))
    $length = 0
    if (Test-Path -LiteralPath $fullPath -PathType Leaf) {
        $length = (Get-Item -LiteralPath $fullPath).Length
    } else {
        Write-Warning "There is no file at '$fullPath' right now. Writing the service message just in case the file is available when the artifacts are collected at a later point in time."
    }
    Write-Verbose "Artifact $name will be collected from $fullPath after this step completes"
    Write-OctopusServiceMessage 'createArtifact' ([ordered]@{ path = $fullPath; name = $name; length = "$length" })
}

function Fail-Step([string]$message) {
    if ($message) { Write-OctopusServiceMessage 'resultMessage' ([ordered]@{ message = $message }) }
    exit -1
}

function Update-Progress([int]$percentage, [string]$message = '') {
    Write-OctopusServiceMessage 'progress' ([ordered]@{ percentage = "$percentage"; message = $message })
}

function Set-EnvironmentState([string]$key, [string]$value, [switch]$sensitive, [string]$type = 'State') {
    $attributes = [ordered]@{ key = $key; value = $value }
    if ($sensitive) { $attributes['sensitive'] = 'True' }
    $attributes['type'] = $type
    Write-OctopusServiceMessage 'set-environmentstate' $attributes
}

function Set-EnvironmentUrl([string]$key, [string]$url) {
    Set-EnvironmentState -key $key -value $url -type 'Url'
}

function Write-OctopusLevel([string]$level, [string]$message) {
    [Console]::Out.WriteLine("##octopus[stdout-$level]")
    [Console]::Out.WriteLine($message)
    [Console]::Out.WriteLine("##octopus[stdout-default]")
}

function Write-Verbose([Parameter(ValueFromPipeline = $true)][string]$Message) { process { Write-OctopusLevel 'verbose' $Message } }
function Write-Highlight([Parameter(ValueFromPipeline = $true)][string]$Message) { process { Write-OctopusLevel 'highlight' $Message } }
function Write-Wait([Parameter(ValueFromPipeline = $true)][string]$Message) { process { Write-OctopusLevel 'wait' $Message } }
function Write-Warning([Parameter(ValueFromPipeline = $true)][string]$Message) { process { Write-OctopusLevel 'warning' $Message } }

{{MODULES}}
$ErrorActionPreference = 'Continue'
try {
    . '{{SCRIPT}}' {{PARAMETERS}}
} catch {
    [Console]::Error.WriteLine($_.Exception.Message)
    [Console]::Error.WriteLine($_.InvocationInfo.PositionMessage)
    [Console]::Error.WriteLine($_.ScriptStackTrace)
    exit 1
}
if ((Test-Path variable:global:LASTEXITCODE)) { exit $LASTEXITCODE }
exit 0
