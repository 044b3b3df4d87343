#!/usr/bin/env bash
# Peak memory (and time) of substituting one 100 MB file, streamed (issue 20, goal: under
# 64 MB at no loss of speed), for `calamari substitute-in-files` and for the substitution
# step of `calamari deploy-package` (a .tar.gz holding the same file). Runs are interleaved
# (ours, the baseline's, ours, ...) and the medians printed; peak RSS comes from
# getrusage(RUSAGE_CHILDREN) of each run (the same figure as `/usr/bin/time -v`'s "Maximum
# resident set size"), wall time from a monotonic clock around it.
#
# Usage: benches/substitution_memory.sh [calamari] [baseline-calamari]
#   calamari            default target/release/calamari (built when missing)
#   baseline-calamari   optional: another build (say of main) measured in the same runs
#   RUNS=5 (default)    runs of each command
#   BENCH_DIR=dir       keep the generated data there (default: a temp dir, removed)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-$PWD/target/release/calamari}"
BASE="${2:-}"
[ -x "$BIN" ] || cargo build --release -p calamari-cli
WORK="${BENCH_DIR:-$(mktemp -d /tmp/substitution-memory.XXXXXX)}"
mkdir -p "$WORK"
echo "work dir: $WORK"

python3 - "$WORK" <<'PY'
import json, os, sys
work = sys.argv[1]
nvars = 2000
names = [f"App_Setting_{i:04d}" for i in range(nvars)]
vars_ = [{"k": n, "v": f"value-{i}-" + "x" * 20, "s": False} for i, n in enumerate(names)]
json.dump(vars_, open(os.path.join(work, "vars.json"), "w"))
deploy = vars_ + [
    {"k": "Octopus.Tentacle.Agent.ApplicationDirectoryPath", "v": os.path.join(work, "apps"), "s": False},
    {"k": "Octopus.Action.EnabledFeatures", "v": "Octopus.Features.SubstituteInFiles", "s": False},
    {"k": "Octopus.Action.SubstituteInFiles.TargetFiles", "v": "big.txt", "s": False},
]
json.dump(deploy, open(os.path.join(work, "deploy-vars.json"), "w"))
os.makedirs(os.path.join(work, "src"), exist_ok=True)
# The same shape as benches/templating.sh's big file: 100 MB, a reference on every line.
with open(os.path.join(work, "src", "big.txt"), "w") as f:
    size = i = 0
    while size < 100 * 1024 * 1024:
        t = f"line {i} connection=#{{{names[i % nvars]}}};timeout=30\n"
        f.write(t)
        size += len(t)
        i += 1
PY
tar czf "$WORK/big.1.0.0.tar.gz" -C "$WORK/src" big.txt
ls -l "$WORK/src/big.txt" "$WORK/big.1.0.0.tar.gz"

python3 - "$WORK" "${RUNS:-5}" "$BIN" "$BASE" <<'PY'
import os, resource, shutil, statistics, subprocess, sys, time
work, runs, ours, base = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
bins = [("calamari", ours)] + ([("baseline", base)] if base else [])

def prepare():
    for d in ("work", "apps", "home"):
        shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    os.makedirs(os.path.join(work, "work"))
    shutil.copy(os.path.join(work, "src", "big.txt"), os.path.join(work, "work", "big.txt"))

def commands(binary):
    return {
        "substitute-in-files": [binary, "substitute-in-files", f"--variables={work}/vars.json",
                                f"--path={work}/work", "--targetFiles=big.txt"],
        "deploy-package": [binary, "deploy-package", f"--package={work}/big.1.0.0.tar.gz",
                           f"--variables={work}/deploy-vars.json"],
    }

env = dict(os.environ, TentacleHome=os.path.join(work, "home"))
results = {}
for _ in range(runs):
    for name, binary in bins:
        for what, cmd in commands(binary).items():
            prepare()
            # A fresh child per run: RUSAGE_CHILDREN's maxrss is the largest of all children
            # so far, so each measurement runs under its own python.
            probe = ("import resource, subprocess, sys, time; t = time.monotonic(); "
                     "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
                     "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            out = subprocess.run([sys.executable, "-c", probe] + cmd, env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            results.setdefault((name, what), []).append((float(out[0]), int(out[1])))

# The last run was a deploy-package: its copy of the file is substituted too.
deployed = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(work, "apps")) for f in fs if f == "big.txt"]
assert len(deployed) == 1 and b"#{" not in open(deployed[0], "rb").read(), deployed
print("deploy-package substituted its copy")

print(f"\n{runs} interleaved runs each, medians (min-max):")
print(f"| command | binary | wall time | peak RSS |")
print(f"|---|---|---|---|")
for (name, what), rs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    t = [r[0] for r in rs]
    m = [r[1] / 1024 for r in rs]
    print(f"| {what} | {name} | {statistics.median(t):.3f} s ({min(t):.3f}-{max(t):.3f}) "
          f"| {statistics.median(m):.0f} MB ({min(m):.0f}-{max(m):.0f}) |")
PY

# Correctness: the streamed output is what envsubst gives for the same file.
bash -c "rm -rf $WORK/work && mkdir -p $WORK/work && cp $WORK/src/big.txt $WORK/work/"
"$BIN" substitute-in-files --variables="$WORK/vars.json" --path="$WORK/work" --targetFiles=big.txt > /dev/null
python3 - "$WORK" <<'PY'
import json, os, sys
work = sys.argv[1]
env = {v["k"]: v["v"] for v in json.load(open(os.path.join(work, "vars.json")))}
sed = open(os.path.join(work, "src", "big.txt")).read().replace("#{", "${")
open(os.path.join(work, "expected.txt.env"), "w").write(sed)
PY
env -i $(python3 -c "import json,sys; print(' '.join(f\"{v['k']}={v['v']}\" for v in json.load(open(sys.argv[1]))))" "$WORK/vars.json") \
  envsubst < "$WORK/expected.txt.env" > "$WORK/expected.txt"
cmp "$WORK/work/big.txt" "$WORK/expected.txt" && echo "streamed output identical to envsubst's"
[ -n "${BENCH_DIR:-}" ] || rm -rf "$WORK"
