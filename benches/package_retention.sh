#!/usr/bin/env bash
# `calamari clean-packages` over a machine package cache of 10,000 packages (1,000 ids x 10
# versions, one small file each) and a PackageRetentionJournal.json with 10,000 entries of
# the reference's shape (three usages each, no locks). Three runs of each case, each on a
# freshly generated cache; prints the wall time of every run. Goal: under a second.
#
#   Quantities (keep 5 versions): sorts by last use, deletes 5,000 files, rewrites the journal.
#   FreeSpace at 100 %: ranks all 10,000 least-frequently-used-with-aging, deletes them all.
#   register-package into the 10,000-entry journal (read, update, atomic rewrite).
#
#   bash benches/package_retention.sh     # needs: python3, bc
#   CALAMARI=path/to/calamari bash benches/package_retention.sh   # an existing build
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$root/target/bench-package-retention}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${CALAMARI:-}" ]; then
  cargo build --release --manifest-path "$root/Cargo.toml" -p calamari-cli -q
fi
calamari=${CALAMARI:-$CARGO_TARGET_DIR/release/calamari}
export TentacleHome="$work/home"

prepare() {
  rm -rf "$work" && mkdir -p "$work/home/Files/feeds-1"
  python3 - "$work/home" <<'PY'
import json, os, sys
home = sys.argv[1]
files = os.path.join(home, "Files", "feeds-1")
entries, age = [], 0
for v in range(10):
    for i in range(1000):
        path = os.path.join(files, f"Package{i}.1.0.{v}.zip")
        with open(path, "wb") as f:
            f.write(b"p")
        usages = []
        for u in range(3):
            age += 1
            usages.append({"CacheAgeAtUsage": {"Value": age},
                           "DateTime": f"2026-0{1 + v % 9}-{10 + u:02d}T{i % 24:02d}:00:00.0000000+00:00",
                           "DeploymentTaskId": {"Value": f"ServerTasks-{age}"}})
        entries.append({"Package": {"PackageId": {"Value": f"Package{i}"},
                                    "Version": {"Version": f"1.0.{v}", "Format": "Semver"},
                                    "Path": {"Value": path}},
                        "usages": usages, "locks": [], "FileSizeBytes": 1})
with open(os.path.join(home, "PackageRetentionJournal.json"), "w") as f:
    json.dump({"JournalEntries": entries, "Cache": {"CacheAge": {"Value": age}}}, f)
PY
}

vars() {
  python3 -c 'import json,sys; print(json.dumps([{"k":k,"v":v,"s":False} for k,v in zip(sys.argv[1::2], sys.argv[2::2])]))' "$@" > "$work/../package-retention-vars.json"
}

timed() {
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null
  end=$(date +%s.%N)
  printf '%-40s %6.3f s  (%s files left)\n' "$label" "$(echo "$end - $start" | bc)" "$(find "$work/home/Files" -type f | wc -l)"
}

for run in 1 2 3; do
  prepare
  vars MachinePackageCacheRetentionStrategy Quantities MachinePackageCacheRetentionQuantityOfVersionsToKeep 5
  timed "clean-packages Quantities (run $run)" "$calamari" clean-packages --variables="$work/../package-retention-vars.json"
done
for run in 1 2 3; do
  prepare
  vars MachinePackageCacheRetentionStrategy FreeSpace OctopusPackageRetentionPercentFreeDiskSpace 100
  timed "clean-packages FreeSpace 100% (run $run)" "$calamari" clean-packages --variables="$work/../package-retention-vars.json"
done
prepare
for run in 1 2 3; do
  timed "register-package into 10,000 (run $run)" "$calamari" register-package --packageId=Package1 --packageVersion=1.0.1 \
    --packagePath="$work/home/Files/feeds-1/Package1.1.0.1.zip" --taskId="ServerTasks-bench-$run"
done
