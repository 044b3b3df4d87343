#!/usr/bin/env bash
# PowerShell steps side by side, in ONE run with the variants interleaved (pwsh's start-up
# swings by ±50 ms from run to run on this machine; interleaving and medians keep the
# comparison fair):
#   1. `pwsh -NoLogo -NoProfile -NonInteractive -File trivial.ps1` (Write-Host hello)
#   2. `calamari run-script --script=trivial.ps1`, no variables (ExecuteWithoutProfile, so
#      pwsh gets -NoProfile as in 1): our overhead on top of pwsh (goal < 20 ms);
#   3. the same with 5,000 variables: the bootstrap's own cost (goal < 30 ms);
#   4. 5,000 variables, 1,000 `$OctopusParameters[...]` reads timed inside pwsh (goal < 50 ms).
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

BIN="$bin" RUNS="$runs" python3 - <<'PY'
import os, re, statistics, subprocess, time
bin, runs = os.environ["BIN"], int(os.environ["RUNS"])
variants = {
    "pwsh -File trivial.ps1": ["pwsh", "-NoLogo", "-NoProfile", "-NonInteractive", "-File", "trivial.ps1"],
    "calamari run-script trivial.ps1 (0 variables)": [bin, "run-script", "--script=trivial.ps1", "--variables=vars0.json"],
    "calamari run-script trivial.ps1 (5,000 variables)": [bin, "run-script", "--script=trivial.ps1", "--variables=vars5000.json"],
    "calamari run-script reads.ps1 (5,000 variables, 1,000 reads)": [bin, "run-script", "--script=reads.ps1", "--variables=vars5000.json"],
}
wall = {k: [] for k in variants}
since = {k: [] for k in variants}
reads = []
for r in range(runs + 1):
    for name, cmd in variants.items():
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        elapsed = (time.perf_counter() - start) * 1000
        if out.returncode != 0 or "hello" not in out.stdout and "reads-ms" not in out.stdout:
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
PY
