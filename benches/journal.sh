#!/usr/bin/env bash
# The deployment journal at 100,000 entries (issue 20, goal 1): the real binary's
# `deploy-package` and `clean` against an empty journal and against a 100,000-entry one
# (38 MB, what a busy agent accumulates), interleaved, with medians, the ratio and the peak
# RSS of each run (wait4's ru_maxrss). Goals: a deploy at 100,000 entries within 10x of one
# at 0, under 64 MB; `clean` over 100,000 entries under 1 s.
#
#   bash benches/journal.sh              # needs: python3 (timing via wait4), awk
#   RUNS=31 bash benches/journal.sh      # more runs per variant (default 21)
#   CALAMARI_BIN=path/to/calamari bash benches/journal.sh   # skip the release build
#
# The big journal is generated in the reference's exact format: 100 retention policy sets
# (Projects-0..99) of 1,000 entries each, one package per entry, one in seven failed,
# InstalledOn spread over the last 1,000 hours. Its extraction directories do not exist, so
# `clean` measures the journal work (the directory deletions it would do are the same at 0
# and at 100,000 entries). The deployment's retention set is Projects-7 (1,000 entries of
# history); each timed `clean --releases=3` works on a set of its own (about 997 of its
# 1,000 entries go), so every run does a full-sized removal. A last section times the worst
# case: one set holding all 100,000 entries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$root/target/bench-journal}
runs=${RUNS:-21}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
if [ -n "${CALAMARI_BIN:-}" ]; then
  calamari=$CALAMARI_BIN   # an already built binary (the release build takes long on 2 cores)
else
  cargo build --release -j 2 --manifest-path "$root/Cargo.toml" -q -p calamari-cli
  calamari="${CARGO_TARGET_DIR:-$root/target}/release/calamari"
fi

# A small package: three files.
mkdir -p pkg
for i in 1 2 3; do echo "file $i" > "pkg/f$i.txt"; done
tar czf Acme.Web.1.0.0.tar.gz -C pkg .

# journal FILE SETS PER_SET: the reference's bytes (BOM, declaration, two-space indent).
journal() {
  awk -v sets="$2" -v per="$3" -v now="$(date -u +%s)" 'BEGIN {
    printf "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Deployments>"
    n = sets * per
    for (i = 0; i < n; i++) {
      p = i % sets; v = int(i / sets)
      t = now - (n - i) * 36
      ok = (i % 7 == 0) ? "False" : "True"
      id = sprintf("%08x-%04x-4%03x-8%03x-%012x", i, p, v % 4096, i % 4096, i * 7919)
      set = sprintf("Environments-1/Projects-%d/Step-A/Machines-1/&lt;default&gt;", p)
      dir = sprintf("/home/tentacle/Applications/Prod/Acme.Web%d/1.0.%d", p, v)
      printf "\n  <Deployment Id=\"%s\" EnvironmentId=\"Environments-1\" TenantId=\"\" ProjectId=\"Projects-%d\" InstalledOn=\"%s\" RetentionPolicySet=\"%s\" ExtractedTo=\"%s\" CustomInstallationDirectory=\"\" WasSuccessful=\"%s\">", id, p, strftime("%Y-%m-%d %H:%M:%S", t, 1), set, dir, ok
      printf "\n    <Package PackageId=\"Acme.Web%d\" PackageVersion=\"1.0.%d\" DeployedFrom=\"/home/tentacle/Files/Acme.Web%d.1.0.%d.zip\" />\n  </Deployment>", p, v, p, v
    }
    printf "\n</Deployments>"
  }' > "$1"
}
mkdir -p home-0 home-100k home-oneset
journal home-100k/DeploymentJournal.xml 100 1000
journal home-oneset/DeploymentJournal.xml 1 100000
echo "journal: $(stat -c %s home-100k/DeploymentJournal.xml) bytes, $(grep -c '<Deployment ' home-100k/DeploymentJournal.xml) entries"

for home in home-0 home-100k; do
  cat > "$home.vars.json" <<JSON
[
 {"k":"Octopus.Tentacle.Agent.ApplicationDirectoryPath","v":"$work/apps-$home","s":false},
 {"k":"Octopus.Environment.Name","v":"Production","s":false},
 {"k":"Octopus.Environment.Id","v":"Environments-1","s":false},
 {"k":"Octopus.Project.Id","v":"Projects-7","s":false},
 {"k":"OctopusRetentionPolicySet","v":"Environments-1/Projects-7/Step-A/Machines-1/<default>","s":false}
]
JSON
done

export CALAMARI="$calamari" WORK="$work" RUNS="$runs"
python3 - <<'PY'
import os, statistics, subprocess, time

calamari, work, runs = os.environ["CALAMARI"], os.environ["WORK"], int(os.environ["RUNS"])

def run(home, args):
    """Runs calamari with TentacleHome=home; returns (wall ms, peak RSS in MB, CPU ms)."""
    env = dict(os.environ, TentacleHome=os.path.join(work, home))
    start = time.perf_counter_ns()
    p = subprocess.Popen([calamari] + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    ms = (time.perf_counter_ns() - start) / 1e6
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"calamari {' '.join(args)} failed in {home}: {err}")
    return ms, usage.ru_maxrss / 1024, (usage.ru_utime + usage.ru_stime) * 1000

def deploy(home):
    return run(home, ["deploy-package", f"--package={work}/Acme.Web.1.0.0.tar.gz", f"--variables={work}/{home}.vars.json"])

def clean(home, project):
    return run(home, ["clean", f"--retentionPolicySet=Environments-1/Projects-{project}/Step-A/Machines-1/<default>", "--releases=3"])

def show(name, samples):
    times = [t for t, _, _ in samples]
    rss = [m for _, m, _ in samples]
    cpu = [c for _, _, c in samples]
    print(f"  {name:<40} median {statistics.median(times):8.1f} ms  (min {min(times):7.1f}, max {max(times):8.1f})  CPU {statistics.median(cpu):7.1f} ms  peak RSS {max(rss):5.1f} MB")
    return statistics.median(times)

# The first run against a journal without an index builds it (one streaming pass).
first_deploy = deploy("home-100k")
first_clean = clean("home-100k", 99)
print(f"first run after an upgrade (the index is built): deploy {first_deploy[0]:.0f} ms / {first_deploy[1]:.1f} MB, clean {first_clean[0]:.0f} ms / {first_clean[1]:.1f} MB")
print(f"load average before the timed runs: {os.getloadavg()[0]:.1f}")
deploy("home-0")

samples = {k: [] for k in ["deploy 0", "deploy 100k", "clean 0", "clean 100k", "clean 100k, nothing to remove"]}
for i in range(runs):
    samples["deploy 0"].append(deploy("home-0"))
    samples["deploy 100k"].append(deploy("home-100k"))
    samples["clean 0"].append(clean("home-0", 10 + i))
    samples["clean 100k"].append(clean("home-100k", 10 + i))
    samples["clean 100k, nothing to remove"].append(clean("home-100k", 10 + i))
print(f"{runs} interleaved runs each:")
d0 = show("deploy-package, empty journal", samples["deploy 0"])
d1 = show("deploy-package, 100,000 entries", samples["deploy 100k"])
c0 = show("clean --releases=3, empty journal", samples["clean 0"])
c1 = show("clean --releases=3, 100,000 entries", samples["clean 100k"])
show("clean again (nothing left to remove)", samples["clean 100k, nothing to remove"])
print(f"load average after the timed runs: {os.getloadavg()[0]:.1f}")
print(f"deploy ratio 100,000 / 0 entries: {d1 / d0:.2f}x (goal: within 10x)")
print(f"clean at 100,000 entries: {c1:.0f} ms (goal: under 1,000 ms)")

worst = [clean("home-oneset", 0)]
print("worst case, one set of 100,000 entries (99,997 removed):")
show("clean --releases=3, one set of 100,000", worst)
PY
ls -la home-100k | sed 's/^/  /'
