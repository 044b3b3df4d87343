#!/usr/bin/env bash
# PowerShell steps side by side, in ONE run with the variants interleaved (pwsh's start-up
# swings by ±50 ms from run to run on this machine; interleaving and medians keep the
# comparison fair):
#   1. `pwsh -NoLogo -NoProfile -NonInteractive -File trivial.ps1` (Write-Host hello)
#   2. `calamari run-script --script=trivial.ps1`, no variables (ExecuteWithoutProfile, so
#      pwsh gets -NoProfile as in 1): our overhead on top of pwsh (goal < 20 ms);
#   3. the same with 5,000 variables: the bootstrap's own cost (goal < 30 ms);
#   4. 5,000 variables, 1,000 `$OctopusParameters[...]` reads timed inside pwsh (goal < 50 ms);
#   5. an emulation of the reference's own bootstrap with 0 and 5,000 variables, run by pwsh
#      directly (no Calamari process at all), for the ratio against the reference.
# Besides wall-clock time, each run's script prints how long after pwsh's own start it began
# (from the process start time): for 1 that is pwsh's start-up, for 2 and 3 start-up plus
# the bootstrap, which isolates the bootstrap from Calamari's and pwsh's exits.
# Usage: benches/powershell.sh [RUNS]   (default 20; from anywhere; needs pwsh and python3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-20}
command -v pwsh >/dev/null || { echo "pwsh is not on the PATH (bash ../shared/tools/pwsh/install.sh)" >&2; exit 1; }
cargo build --release -q -p calamari-cli --manifest-path "$root/Cargo.toml"
bin="$root/target/release/calamari"
work="$root/target/bench-powershell"
mkdir -p "$work"
cd "$work"

since='[Console]::Out.WriteLine("since-start-ms " + ([DateTime]::Now - [Diagnostics.Process]::GetCurrentProcess().StartTime).TotalMilliseconds)'
printf '%s\n%s\n' "$since" 'Write-Host hello' > trivial.ps1
cat > reads.ps1 <<'S'
$watch = [System.Diagnostics.Stopwatch]::StartNew()
for ($i = 0; $i -lt 5000; $i += 5) { $x = $OctopusParameters["Project.Variable$i"] }
$watch.Stop()
Write-Host "reads-ms $($watch.Elapsed.TotalMilliseconds) last: $x"
S
python3 - <<'PY'
import json
profile = {"k": "Octopus.Action.PowerShell.ExecuteWithoutProfile", "v": "True", "s": False}
json.dump([profile], open("vars0.json", "w"))
json.dump([profile] + [{"k": "Project.Variable%d" % i, "v": "value number %d of the deployment" % i, "s": False} for i in range(5000)], open("vars5000.json", "w"))
PY

# An emulation of the reference's PowerShell bootstrap (Bootstrap.ps1 as PowerShellBootstrapper
# fills it), written here from its description for the side-by-side comparison: the variables
# AES-256-CBC encrypted into a here-string (one `base64(name)$base64(value)` line each) and
# decrypted with the key from the command line, one guarded assignment per local variable
# (`if (-Not (test-path variable:global:X)) { ${X} = $OctopusParameters[...] }`, twice where the
# legacy name differs), `$PSVersionTable | Out-String` through Write-Verbose, the environment
# block (with its Windows-only calls failing silently) and the proxy defaults.
if [ ! -f reference5000.ps1 ]; then
    python3 - <<'PY'
import base64, json, os, re, subprocess
key, iv = os.urandom(32), os.urandom(16)
open("reference.key", "w").write(base64.b64encode(key).decode())
b64 = lambda s: base64.b64encode(s.encode()).decode()
def emulate(variables, out):
    plain = "".join(f"{b64(v['k'])}${b64(v['v'])}\n" for v in variables).encode()
    cipher = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex(), "-base64"],
                            input=plain, capture_output=True, check=True).stdout.decode()
    locals_ = []
    for v in variables:
        name = v["k"]
        if "[" in name:
            continue
        legacy = "".join(c for c in name if c.isalnum())
        smart = "".join(c for c in name if c.isalnum() or c == "_")
        for k in ([legacy] if legacy != smart else []) + [smart]:
            if k:
                locals_.append(f"if (-Not (test-path variable:global:{k})) {{\n  ${{{k}}} = $OctopusParameters[[System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String(\"{b64(name)}\"))]\n}}\n")
    text = f"""param([string]$OctopusKey = "")
$ErrorActionPreference = 'Stop'
function Write-Verbose([Parameter(ValueFromPipeline = $true)][string]$message) {{ Write-Host "##octopus[stdout-verbose]"; Write-Host $message; Write-Host "##octopus[stdout-default]" }}
function Decrypt-Variables($iv, $Encrypted) {{
    $parameters = New-Object 'System.Collections.Generic.Dictionary[String,String]' (,[System.StringComparer]::OrdinalIgnoreCase)
    $algorithm = [System.Security.Cryptography.SymmetricAlgorithm](New-Object System.Security.Cryptography.AesCryptoServiceProvider)
    $algorithm.Mode = [System.Security.Cryptography.CipherMode]::CBC
    $algorithm.Padding = [System.Security.Cryptography.PaddingMode]::PKCS7
    $algorithm.KeySize = 256
    $algorithm.BlockSize = 128
    $algorithm.Key = [System.Convert]::FromBase64String($OctopusKey)
    $algorithm.IV = [System.Convert]::FromBase64String($iv)
    $decryptor = [System.Security.Cryptography.ICryptoTransform]$algorithm.CreateDecryptor()
    $memoryStream = new-Object IO.MemoryStream @(,[System.Convert]::FromBase64String($Encrypted))
    $cryptoStream = new-Object Security.Cryptography.CryptoStream $memoryStream,$decryptor,"Read"
    $streamReader = new-Object IO.StreamReader $cryptoStream
    while ($streamReader.EndOfStream -eq $false) {{
        $parts = $streamReader.ReadLine().Split("$")
        $parameters[[System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($parts[0]))] = [System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($parts[1])) -as [string]
    }}
    $streamReader.Dispose() | Out-Null
    return $parameters
}}
Write-Verbose ($PSVersionTable | Out-String -Width 200)
$OctopusParameters = Decrypt-Variables '{base64.b64encode(iv).decode()}' @'
{cipher}'@
{"".join(locals_)}
$proxy = New-Object System.Net.WebProxy
$proxy.Credentials = [System.Net.CredentialCache]::DefaultCredentials
$global:OctopusProxy = $proxy
[System.Net.WebRequest]::DefaultWebProxy = $proxy
[System.Net.Http.HttpClient]::DefaultProxy = $proxy
Write-Host "##octopus[stdout-verbose]"
Write-Host "PowerShell Environment Information:"
Write-Host "  OperatingSystem: $([System.Environment]::OSVersion.ToString())"
try {{ Write-Host "  CurrentUser: $([System.Security.Principal.WindowsIdentity]::GetCurrent().Name)" }} catch {{ }}
Write-Host "  CurrentDirectory: $([System.IO.Directory]::GetCurrentDirectory())"
Write-Host "  CurrentLocation: $(Get-Location)"
$process = [System.Diagnostics.Process]::GetCurrentProcess()
Write-Host "  HostProcess: $($process.ProcessName) ($($process.Id))"
try {{ $os = (Get-WmiObject Win32_OperatingSystem) }} catch {{ }}
Write-Host "##octopus[stdout-default]"
try {{ . '{os.getcwd()}/trivial.ps1' }} catch {{ [System.Console]::Error.WriteLine($_); exit 1 }}
if ((test-path variable:global:lastexitcode)) {{ exit $LastExitCode }}
"""
    open(out, "w", encoding="utf-8-sig").write(text)
emulate(json.load(open("vars0.json")), "reference0.ps1")
emulate(json.load(open("vars5000.json")), "reference5000.ps1")
PY
fi

BIN="$bin" RUNS="$runs" python3 - <<'PY'
import os, re, statistics, subprocess, time
bin, runs = os.environ["BIN"], int(os.environ["RUNS"])
key = open("reference.key").read()
reference = lambda f: ["pwsh", "-NoProfile", "-NoLogo", "-NonInteractive", "-ExecutionPolicy", "Unrestricted", "-Command",
                       f"Try {{. {{. '{os.getcwd()}/{f}' -OctopusKey '{key}'; if ((test-path variable:global:lastexitcode)) {{ exit $LastExitCode }}}};}} catch {{ throw }}"]
variants = {
    "pwsh -File trivial.ps1": ["pwsh", "-NoLogo", "-NoProfile", "-NonInteractive", "-File", "trivial.ps1"],
    "calamari run-script trivial.ps1 (0 variables)": [bin, "run-script", "--script=trivial.ps1", "--variables=vars0.json"],
    "calamari run-script trivial.ps1 (5,000 variables)": [bin, "run-script", "--script=trivial.ps1", "--variables=vars5000.json"],
    "calamari run-script reads.ps1 (5,000 variables, 1,000 reads)": [bin, "run-script", "--script=reads.ps1", "--variables=vars5000.json"],
    "reference bootstrap emulation (0 variables)": reference("reference0.ps1"),
    "reference bootstrap emulation (5,000 variables)": reference("reference5000.ps1"),
}
wall = {k: [] for k in variants}
since = {k: [] for k in variants}
reads = []
for r in range(runs + 1):
    for name, cmd in variants.items():
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        elapsed = (time.perf_counter() - start) * 1000
        if out.returncode != 0 or ("hello" not in out.stdout and "reads-ms" not in out.stdout):
            raise SystemExit(f"{name} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        if r == 0:
            continue  # warm-up round: page cache, first build of anything
        wall[name].append(elapsed)
        m = re.search(r"since-start-ms ([0-9.]+)", out.stdout)
        if m:
            since[name].append(float(m.group(1)))
        m = re.search(r"reads-ms ([0-9.]+)", out.stdout)
        if m:
            reads.append(float(m.group(1)))

med = lambda xs: statistics.median(xs)
print(f"{runs} interleaved runs each (after one warm-up round), medians; load average {os.getloadavg()[0]:.1f}\n")
print(f"| variant | wall ms (median) | wall ms (min) | script began after pwsh start, ms (median) |")
print(f"|---|---|---|---|")
for name in variants:
    s = f"{med(since[name]):.0f}" if since[name] else "-"
    print(f"| {name} | {med(wall[name]):.0f} | {min(wall[name]):.0f} | {s} |")
names = list(variants)
base, zero, full = names[0], names[1], names[2]
print()
print(f"overhead of calamari run-script over pwsh -File (wall, medians): {med(wall[zero]) - med(wall[base]):.0f} ms (goal < 20 ms)")
print(f"  of which before the script starts inside pwsh (bootstrap, 0 variables): {med(since[zero]) - med(since[base]):.0f} ms")
print(f"bootstrap with 5,000 variables, before the script starts inside pwsh: {med(since[full]) - med(since[base]):.0f} ms (goal < 30 ms)")
print(f"  wall-clock difference against pwsh -File: {med(wall[full]) - med(wall[base]):.0f} ms")
print(f"1,000 $OctopusParameters[...] reads inside pwsh: median {med(reads):.1f} ms, max {max(reads):.1f} ms (goal < 50 ms)")
ref0, ref5000 = names[4], names[5]
print(f"against the reference's bootstrap (emulated, pwsh only, no Calamari process): 0 variables {med(wall[ref0]):.0f} ms vs ours {med(wall[zero]):.0f} ms "
      f"({med(wall[ref0]) / med(wall[zero]):.2f}x); 5,000 variables {med(wall[ref5000]):.0f} ms vs ours {med(wall[full]):.0f} ms ({med(wall[ref5000]) / med(wall[full]):.2f}x)")
print(f"  bootstrap cost over pwsh -File: reference {med(wall[ref0]) - med(wall[base]):.0f} / {med(wall[ref5000]) - med(wall[base]):.0f} ms, "
      f"ours {med(wall[zero]) - med(wall[base]):.0f} / {med(wall[full]) - med(wall[base]):.0f} ms (0 / 5,000 variables)")
PY
