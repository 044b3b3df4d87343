# Calamari for Rust: the PowerShell bootstrap, filled in per step and dot-sourced by pwsh.
#
# It defines the reference's helper functions (same names, parameters and service messages),
# loads $OctopusParameters and the legacy local variables, imports the script modules, logs
# the environment, and dot-sources the step's script with its parameters.
#
# The variables are never code here: Variables.bin holds "name NUL value NUL ..." and
# Locals.bin "variable NUL name NUL ..." (UTF-8), both 0600 in the step's 0700 directory,
# which Calamari removes when the step ends. Parameters are parsed only when the script is
# invoked, so a parameter string that does not parse fails with its own message.

$ErrorActionPreference = 'Stop'
$PSNativeCommandArgumentPassing = 'Legacy'
if ($PSVersionTable.PSVersion.Major -lt 7 -or ($PSVersionTable.PSVersion.Major -eq 7 -and $PSVersionTable.PSVersion.Minor -lt 2)) {
    [System.Console]::Error.WriteLine("PowerShell $($PSVersionTable.PSVersion) (pwsh) is too old to run Calamari's PowerShell steps: PowerShell 7.2 or newer is needed.")
    exit 1
}
# Agents read logs, not terminals: no ANSI colour sequences in error records or formatting.
$PSStyle.OutputRendering = 'PlainText'

# -----------------------------------------------------------------
# Functions
# -----------------------------------------------------------------

# Calamari's own start-up logging writes to the console directly: every PowerShell statement
# costs on its first run, and these run once per step (the formatting system that
# `$PSVersionTable | Out-String` would load costs about 150 ms).
function Log-VersionTable
{
    # The rows `$PSVersionTable | Out-String` prints, in its order, in one statement.
    $t = $PSVersionTable
    $n = [System.Environment]::NewLine
    [System.Console]::Out.WriteLine('##octopus[stdout-verbose]' + $n + $n +
        'Name                           Value' + $n +
        '----                           -----' + $n +
        'PSVersion                      ' + $t.PSVersion + $n +
        'PSEdition                      ' + $t.PSEdition + $n +
        'GitCommitId                    ' + $t.GitCommitId + $n +
        'OS                             ' + $t.OS + $n +
        'Platform                       ' + $t.Platform + $n +
        'PSCompatibleVersions           {' + [string]::Join(', ', $t.PSCompatibleVersions) + '}' + $n +
        'PSRemotingProtocolVersion      ' + $t.PSRemotingProtocolVersion + $n +
        'SerializationVersion           ' + $t.SerializationVersion + $n +
        'WSManStackVersion              ' + $t.WSManStackVersion + $n +
        '##octopus[stdout-default]')
}

function Log-EnvironmentInformation
{
    if ($OctopusParameters['Octopus.Action.Script.SuppressEnvironmentLogging'] -eq 'True')
    {
        return
    }
    $e = [System.Environment]
    $n = $e::NewLine
    $bits = 'x86'
    if ($e::Is64BitOperatingSystem) { $bits = 'x64' }
    [System.Console]::Out.WriteLine('##octopus[stdout-verbose]' + $n +
        'PowerShell Environment Information:' + $n +
        '  OperatingSystem: ' + $e::OSVersion + $n +
        '  OsBitVersion: ' + $bits + $n +
        '  Is64BitProcess: ' + $e::Is64BitProcess + $n +
        '  CurrentUser: ' + $e::UserName + $n +
        '  MachineName: ' + $e::MachineName + $n +
        '  ProcessorCount: ' + $e::ProcessorCount + $n +
        '  CurrentDirectory: ' + $e::CurrentDirectory + $n +
        '  CurrentLocation: ' + $ExecutionContext.SessionState.Path.CurrentLocation + $n +
        '  TempDirectory: ' + [System.IO.Path]::GetTempPath() + $n +
        '  HostProcess: ' + [System.IO.Path]::GetFileName($e::ProcessPath) + ' (' + $PID + ')' + $n +
        '##octopus[stdout-default]')
}

# The last error as the reference prints it: category and message, position, stack, details.
function Write-LastError
{
    $record = $error[0]
    [System.Console]::Error.WriteLine("$($record.CategoryInfo.Category): $($record.Exception.Message)")
    [System.Console]::Error.WriteLine($record.InvocationInfo.PositionMessage)
    [System.Console]::Error.WriteLine($record.ScriptStackTrace)
    if ($null -ne $record.ErrorDetails)
    {
        [System.Console]::Error.WriteLine($record.ErrorDetails.Message)
    }
}

function Import-ScriptModule([string]$moduleName, [string]$moduleFilePath)
{
    try
    {
        Write-Verbose "Importing Script Module '$moduleName' from '$moduleFilePath'"
        Import-Module -DisableNameChecking $moduleFilePath
    }
    catch
    {
        [System.Console]::Error.WriteLine("Failed to import Script Module '$moduleName' from '$moduleFilePath'")
        Write-LastError
        exit 1
    }
}

function Convert-ServiceMessageValue([string]$value)
{
    return [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($value))
}

function Set-OctopusVariable([string]$name, [string]$value, [switch]$sensitive)
{
    $name = Convert-ServiceMessageValue($name)
    $value = Convert-ServiceMessageValue($value)
    if ($sensitive)
    {
        Write-Host "##octopus[setVariable name='$name' value='$value' sensitive='$(Convert-ServiceMessageValue 'True')']"
    }
    else
    {
        Write-Host "##octopus[setVariable name='$name' value='$value']"
    }
}

function Set-EnvironmentState([string]$key, [string]$value, [switch]$sensitive, [string]$type = 'State')
{
    $key = Convert-ServiceMessageValue($key)
    $value = Convert-ServiceMessageValue($value)
    $type = Convert-ServiceMessageValue($type)
    if ($sensitive)
    {
        Write-Host "##octopus[set-environmentstate key='$key' value='$value' sensitive='$(Convert-ServiceMessageValue 'True')' type='$type']"
    }
    else
    {
        Write-Host "##octopus[set-environmentstate key='$key' value='$value' type='$type']"
    }
}

function Set-EnvironmentUrl([string]$key, [string]$url)
{
    Set-EnvironmentState -Key $key -Value $url -Type 'Url'
}

function Convert-ToServiceMessageParameter([string]$name, [string]$value)
{
    return "$name='$(Convert-ServiceMessageValue($value))'"
}

function Remove-OctopusTarget([string]$targetIdOrName)
{
    Write-Host "##octopus[delete-target $(Convert-ToServiceMessageParameter -name 'machine' -value $targetIdOrName)]"
}

function New-OctopusTarget
{
    [CmdletBinding()]
    param(
        [Parameter(ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true, Mandatory = $true)]
        [string]$Name,
        [Parameter(ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true, Mandatory = $true)]
        [string]$TargetId,
        [Parameter(ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true, Mandatory = $true)]
        [string]$Inputs,
        [Parameter(ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true, Mandatory = $true)]
        [string]$Roles,
        [Parameter(ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [string]$WorkerPoolIdOrName = '',
        [Parameter(ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [switch]$UpdateIfExisting
    )
    process
    {
        # The leading space is the reference's: it joins onto an empty string.
        $parameters = ''
        foreach ($pair in @(
                @('name', $Name), @('targetId', $TargetId), @('inputs', $Inputs), @('octopusRoles', $Roles),
                @('octopusDefaultWorkerPoolIdOrName', $WorkerPoolIdOrName), @('updateIfExisting', $UpdateIfExisting)))
        {
            $parameters = $parameters, (Convert-ToServiceMessageParameter -name $pair[0] -value $pair[1]) -join ' '
        }
        Write-Host "##octopus[createStepPackageTarget $parameters]"
    }
}

function Fail-Step([string]$message)
{
    if ($message)
    {
        Write-Host "##octopus[resultMessage message='$(Convert-ServiceMessageValue($message))']"
    }
    exit -1
}

function New-OctopusArtifact
{
    [CmdletBinding()]
    param(
        [Parameter(ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [Alias('fullname')]
        [Alias('path')]
        [string]$fullpath,
        [Parameter(ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [string]$name = '"'
    )
    process
    {
        if ((Test-Path $fullpath) -eq $false)
        {
            Write-Verbose "There is no file at '$fullpath' right now. Writing the service message just in case the file is available when the artifacts are collected at a later point in time."
        }
        if ($name -eq '"')
        {
            $name = [System.IO.Path]::GetFileName($fullpath)
        }
        $length = ([System.IO.FileInfo]$fullpath).Length
        if (!$length)
        {
            $length = 0
        }
        $fullpath = [System.IO.Path]::GetFullPath($ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($fullpath))
        Write-Verbose "Artifact $name will be collected from $fullpath after this step completes"
        Write-Host "##octopus[createArtifact path='$(Convert-ServiceMessageValue($fullpath))' name='$(Convert-ServiceMessageValue($name))' length='$(Convert-ServiceMessageValue($length.ToString()))']"
    }
}

function Report-KubernetesManifest
{
    [CmdletBinding()]
    param (
        [Parameter(ValueFromPipeline = $true)][string]$manifest,
        [string]$namespace
    )
    process
    {
        # One message per YAML document; "---" with any trailing spaces and one line break ends one.
        foreach ($document in ($manifest -split "---\s*[\r|\n|\r\n]?"))
        {
            if ([string]::IsNullOrWhiteSpace($document))
            {
                continue
            }
            $message = "##octopus[k8s-manifest-applied manifest='$(Convert-ServiceMessageValue($document))'"
            if (![string]::IsNullOrWhiteSpace($namespace))
            {
                $message = "$message ns='$(Convert-ServiceMessageValue($namespace))'"
            }
            Write-Host "$message]"
        }
    }
}

function Report-KubernetesManifestFile
{
    [CmdletBinding()]
    param (
        [Parameter(ValueFromPipeline = $true)][string]$path,
        [string]$namespace
    )
    process
    {
        if ((Test-Path $path) -eq $false)
        {
            Write-Verbose "No Kubernetes manifest file was found at '$path'."
            return
        }
        Report-KubernetesManifest -manifest (Get-Content -Path $path -Raw) -namespace $namespace
    }
}

function Update-Progress
{
    [CmdletBinding()]
    param(
        [int]$percentage,
        [Parameter(ValueFromPipeline = $true)][string]$message
    )
    process
    {
        Write-Host "##octopus[progress percentage='$(Convert-ServiceMessageValue($percentage))' message='$(Convert-ServiceMessageValue($message))']"
    }
}

# The log levels: each call is one block between a level message and stdout-default.
function Write-Debug
{
    [CmdletBinding()]
    param([Parameter(ValueFromPipeline = $true)][string]$message)
    process { Write-Verbose $message }
}

function Write-Verbose
{
    [CmdletBinding()]
    param([Parameter(ValueFromPipeline = $true)][string]$message)
    begin { Write-Host '##octopus[stdout-verbose]' }
    process { Write-Host $message }
    end { Write-Host '##octopus[stdout-default]' }
}

function Write-Highlight
{
    [CmdletBinding()]
    param([Parameter(ValueFromPipeline = $true)][string]$message)
    begin { Write-Host '##octopus[stdout-highlight]' }
    process { Write-Host $message }
    end { Write-Host '##octopus[stdout-default]' }
}

function Write-Wait
{
    [CmdletBinding()]
    param([Parameter(ValueFromPipeline = $true)][string]$message)
    begin { Write-Host '##octopus[stdout-wait]' }
    process { Write-Host $message }
    end { Write-Host '##octopus[stdout-default]' }
}

function Write-Warning
{
    [CmdletBinding()]
    param([Parameter(ValueFromPipeline = $true)][string]$message)
    begin { Write-Host '##octopus[stdout-warning]' }
    process
    {
        if ($WarningPreference -ne 'SilentlyContinue')
        {
            Write-Host $message
        }
    }
    end { Write-Host '##octopus[stdout-default]' }
}

function Initialize-ProxySettings
{
    # The reference's rules: Tentacle's own proxy settings first, else HTTP_PROXY (with the
    # credentials it may carry), else the system default; $OctopusProxy for scripts that
    # build their own HttpClient.
    $proxyUri = $null
    $proxyUsername = $env:TentacleProxyUsername
    $proxyPassword = $env:TentacleProxyPassword
    $proxyHost = $env:TentacleProxyHost
    [int]$proxyPort = $env:TentacleProxyPort
    if (![string]::IsNullOrEmpty($proxyHost))
    {
        $proxyUri = [System.Uri]::new("http://${proxyHost}:$proxyPort")
    }
    $useDefaultProxy = $true
    if (![string]::IsNullOrEmpty($env:TentacleUseDefaultProxy))
    {
        $useDefaultProxy = [System.Convert]::ToBoolean($env:TentacleUseDefaultProxy)
    }
    $useCustomProxy = ![string]::IsNullOrEmpty($proxyHost)
    $hasCredentials = ![string]::IsNullOrEmpty($proxyUsername)

    if ($useDefaultProxy -and !$useCustomProxy -and ![string]::IsNullOrEmpty($env:HTTP_PROXY))
    {
        if (![System.Uri]::TryCreate($env:HTTP_PROXY, [System.UriKind]::Absolute, [ref]$proxyUri))
        {
            $proxyUri = $env:HTTP_PROXY
        }
        if (-not $hasCredentials -and $proxyUri -is [System.Uri])
        {
            $credentials = $proxyUri.UserInfo.Split(':')
            if ($credentials.Length -gt 1)
            {
                $hasCredentials = $true
                $proxyUsername = [System.Uri]::UnescapeDataString($credentials[0])
                $proxyPassword = [System.Uri]::UnescapeDataString($credentials[1])
            }
        }
    }

    if ($useCustomProxy)
    {
        $proxy = [System.Net.WebProxy]::new($proxyUri)
        if ($hasCredentials)
        {
            $proxy.Credentials = [System.Net.NetworkCredential]::new($proxyUsername, $proxyPassword)
        }
        else
        {
            $proxy.Credentials = [System.Net.NetworkCredential]::new('', '')
        }
    }
    elseif ($useDefaultProxy)
    {
        if ($null -ne $proxyUri)
        {
            $proxy = [System.Net.WebProxy]::new($proxyUri)
        }
        else
        {
            # No system proxy configured: as if there were no proxy.
            $proxy = [System.Net.WebProxy]::new()
        }
        if ($hasCredentials)
        {
            $proxy.Credentials = [System.Net.NetworkCredential]::new($proxyUsername, $proxyPassword)
        }
        else
        {
            $proxy.Credentials = [System.Net.CredentialCache]::DefaultCredentials
        }
    }
    else
    {
        $proxy = [System.Net.WebProxy]::new()
    }
    $global:OctopusProxy = $proxy
    [System.Net.WebRequest]::DefaultWebProxy = $proxy
    [System.Net.Http.HttpClient]::DefaultProxy = $proxy
}

function Execute-WithRetry([ScriptBlock]$command, [int]$maxFailures = 3, [int]$sleepBetweenFailures = 1)
{
    $attemptCount = 0
    $operationIncomplete = $true
    while ($operationIncomplete -and $attemptCount -lt $maxFailures)
    {
        $attemptCount = $attemptCount + 1
        if ($attemptCount -ge 2)
        {
            Write-Host "Waiting for $sleepBetweenFailures seconds before retrying..."
            Start-Sleep -s $sleepBetweenFailures
            Write-Host 'Retrying...'
        }
        try
        {
            & $command
            $operationIncomplete = $false
        }
        catch [System.Exception]
        {
            if ($attemptCount -lt $maxFailures)
            {
                Write-Host ("Attempt $attemptCount of $maxFailures failed: " + $_.Exception.Message)
            }
            else
            {
                throw
            }
        }
    }
}

function Import-CalamariModules
{
    $paths = $OctopusParameters['Octopus.Calamari.Bootstrapper.ModulePaths']
    if ([string]::IsNullOrEmpty($paths))
    {
        return
    }
    foreach ($path in $paths.Split(';', [StringSplitOptions]'RemoveEmptyEntries'))
    {
        if ($path.EndsWith('.psd1'))
        {
            $took = Measure-Command -Expression { Import-Module -Name $path }
            Write-Verbose "Spent $($took.TotalSeconds) seconds importing the Powershell module $path"
        }
        else
        {
            $env:PSModulePath = $path + [System.IO.Path]::PathSeparator + $env:PSModulePath
        }
    }
}

function ConvertTo-QuotedString([string]$arg)
{
    "`"$arg`""
}

function ConvertTo-ConsoleEscapedArgument([string]$arg)
{
    # Double the backslashes before each ", escape each ", and double trailing backslashes.
    $arg = $arg -replace "(\\+)+`"", '$1$1"'
    $arg = $arg.Replace("`"", "\`"")
    $arg = $arg -replace "(\\+)+$", '$1$1"'
    return $arg
}

function ConvertTo-PowershellEscapedArgument([string]$arg)
{
    # Escape `, [ and $ with a backtick so PowerShell reads them literally.
    $arg = $arg.Replace('`', '``')
    $arg = $arg.Replace('[', '`[')
    $arg = $arg.Replace('$', '`$')
    return $arg
}

Log-VersionTable

# -----------------------------------------------------------------
# Variables
# -----------------------------------------------------------------
$MaximumVariableCount = 32768
$OctopusParameters = [System.Collections.Generic.Dictionary[String,String]]::new([System.StringComparer]::OrdinalIgnoreCase)
$__octopusParts = [System.IO.File]::ReadAllText('{{VARIABLES_FILE}}', [System.Text.UTF8Encoding]::new($false)).Split([char]0)
for ($__octopusIndex = 0; $__octopusIndex + 1 -lt $__octopusParts.Length; $__octopusIndex += 2)
{
    $OctopusParameters[$__octopusParts[$__octopusIndex]] = $__octopusParts[$__octopusIndex + 1]
}
# Every variable whose name has no '[' is also a PowerShell variable, named by its letters
# and digits (legacy) and by its letters, digits and '_', unless a variable of that name
# exists already (so $Host stays PowerShell's).
$__octopusVariables = $ExecutionContext.SessionState.PSVariable
$__octopusParts = [System.IO.File]::ReadAllText('{{LOCALS_FILE}}', [System.Text.UTF8Encoding]::new($false)).Split([char]0)
for ($__octopusIndex = 0; $__octopusIndex + 1 -lt $__octopusParts.Length; $__octopusIndex += 2)
{
    if ($null -eq $__octopusVariables.Get($__octopusParts[$__octopusIndex]))
    {
        $__octopusVariables.Set($__octopusParts[$__octopusIndex], $OctopusParameters[$__octopusParts[$__octopusIndex + 1]])
    }
}
# (No cmdlets on the start-up path: the first one of a module loads the module, 100+ ms.)
$__octopusParts = $__octopusIndex = $__octopusVariables = $null

# -----------------------------------------------------------------
# Script modules, after the variables
# -----------------------------------------------------------------
{{SCRIPT_MODULES}}
# -----------------------------------------------------------------
# Defaults
# -----------------------------------------------------------------
if ([string]::IsNullOrEmpty($env:TentacleProxyHost) -and [string]::IsNullOrEmpty($env:TentacleProxyUsername) -and
    [string]::IsNullOrEmpty($env:HTTP_PROXY) -and [string]::IsNullOrEmpty($env:http_proxy) -and
    [string]::IsNullOrEmpty($env:HTTPS_PROXY) -and [string]::IsNullOrEmpty($env:https_proxy) -and
    [string]::IsNullOrEmpty($env:ALL_PROXY) -and [string]::IsNullOrEmpty($env:all_proxy))
{
    # No proxy anywhere: .NET's default proxies already mean "none", which is what the
    # reference's empty WebProxy sets them to, so only $OctopusProxy is made (setting the
    # defaults loads the HTTP stack: 50 ms for a step that may never use it).
    $global:OctopusProxy = [System.Net.WebProxy]::new()
    if ([string]::IsNullOrEmpty($env:TentacleUseDefaultProxy) -or [System.Convert]::ToBoolean($env:TentacleUseDefaultProxy))
    {
        $global:OctopusProxy.Credentials = [System.Net.CredentialCache]::DefaultCredentials
    }
}
else
{
    Initialize-ProxySettings
}
Log-EnvironmentInformation
Import-CalamariModules
{{SCRIPT_FUNCTIONS}}
# -----------------------------------------------------------------
# The target script
# -----------------------------------------------------------------
$__octopusScript = '{{SCRIPT}}'
$__octopusScriptParameters = '{{PARAMETERS}}'
try
{
    $__octopusInvocation = [ScriptBlock]::Create('{{PSDEBUG}}' + ". '" + $__octopusScript.Replace("'", "''") + "' " + $__octopusScriptParameters)
}
catch
{
    [System.Console]::Error.WriteLine("The script parameters for '$__octopusScript' are not valid PowerShell: $($_.Exception.InnerException.Message)")
    [System.Console]::Error.WriteLine("Script parameters: $__octopusScriptParameters")
    exit 1
}
try
{
    . $__octopusInvocation
}
catch
{
{{PSDEBUG_OFF}}
    Write-LastError
    exit 1
}

{{PSDEBUG_OFF}}
# Exit with whatever exit code the last native command had, else 0 (as the reference's
# command line does after it).
if ($null -ne $global:LASTEXITCODE)
{
    exit $global:LASTEXITCODE
}
exit 0
