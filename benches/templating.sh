#!/usr/bin/env bash
# Side-by-side: `calamari substitute-in-files` vs GNU `envsubst` on the same files
# (ours use #{VAR}, envsubst's the same text rewritten to ${VAR}), in ONE hyperfine run.
#   * tree: ~50 MB of config files (200 files x 256 KB), 2,000 variables
#   * big:  one 100 MB file with a reference on every line
# Usage: benches/templating.sh [path-to-calamari] [baseline-calamari]
#   (default: target/release/calamari; a baseline build, say of main, joins the same
#   hyperfine run, to compare two versions of ours)
# Prints the throughput ratio and, when /usr/bin/time is there, the max RSS of each side.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-$PWD/target/release/calamari}"
BASE="${2:-}"
[ -x "$BIN" ] || cargo build --release -p calamari-cli
WORK="${BENCH_DIR:-$(mktemp -d /tmp/templating-bench.XXXXXX)}"
mkdir -p "$WORK"
echo "work dir: $WORK"

python3 - "$WORK" <<'PY'
import json, os, sys
work = sys.argv[1]
nvars = 2000
names = [f"App_Setting_{i:04d}" for i in range(nvars)]
json.dump([{"k": n, "v": f"value-{i}-" + "x" * 20, "s": False} for i, n in enumerate(names)],
          open(os.path.join(work, "vars.json"), "w"))
with open(os.path.join(work, "vars.env"), "w") as f:
    for i, n in enumerate(names):
        f.write(f"export {n}='value-{i}-{'x' * 20}'\n")
def write_pair(rel, lines):
    for kind, fmt in (("octo", "#{%s}"), ("env", "${%s}")):
        p = os.path.join(work, kind + "-src", rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            for i, (text, var) in enumerate(lines):
                f.write(text.replace("@", fmt % names[var]))
# tree: 200 files x ~256 KB; one reference every 4 lines
for fi in range(200):
    lines = []
    size = 0
    i = 0
    while size < 256 * 1024:
        if i % 4 == 0:
            t = f'    <add key="setting{i}" value="@" />\n'
        else:
            t = f'    <!-- plain configuration text line {i} with nothing to replace -->\n'
        lines.append((t, (fi * 131 + i) % nvars))
        size += len(t) + (len("#{App_Setting_0000}") - 1 if "@" in t else 0)
        i += 1
    write_pair(f"tree/dir{fi % 10}/app{fi}.config", lines)
# big: 100 MB, a reference on every line
lines = []
size = 0
i = 0
while size < 100 * 1024 * 1024:
    t = f"line {i} connection=@;timeout=30\n"
    lines.append((t, i % nvars))
    size += len(t) + len("#{App_Setting_0000}") - 1
    i += 1
write_pair("big/big.txt", lines)
PY
du -sh "$WORK/octo-src/tree" "$WORK/octo-src/big"

# shellcheck disable=SC1091
source "$WORK/vars.env"
ENVSUBST_TREE="cd $WORK/env-work/tree && find . -name '*.config' | while read -r f; do envsubst < \"\$f\" > \"\$f.tmp\" && mv \"\$f.tmp\" \"\$f\"; done"
ENVSUBST_BIG="cd $WORK/env-work/big && envsubst < big.txt > big.txt.tmp && mv big.txt.tmp big.txt"
OURS_TREE="$BIN substitute-in-files --variables=$WORK/vars.json --path=$WORK/octo-work/tree --targetFiles='**/*.config'"
OURS_BIG="$BIN substitute-in-files --variables=$WORK/vars.json --path=$WORK/octo-work/big --targetFiles=big.txt"
PREP="rm -rf $WORK/octo-work $WORK/env-work && cp -r $WORK/octo-src $WORK/octo-work && cp -r $WORK/env-src $WORK/env-work"
BASELINE=()
if [ -n "$BASE" ]; then
  BASELINE=(-n "baseline tree" "${OURS_TREE/#$BIN/$BASE}" -n "baseline big" "${OURS_BIG/#$BIN/$BASE}")
fi

hyperfine --warmup 1 --runs "${RUNS:-5}" --prepare "$PREP" --export-json "$WORK/hyperfine.json" \
  -n "calamari tree" "$OURS_TREE" -n "envsubst tree" "$ENVSUBST_TREE" \
  -n "calamari big" "$OURS_BIG" -n "envsubst big" "$ENVSUBST_BIG" "${BASELINE[@]}"

python3 - "$WORK/hyperfine.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
for what in ("tree", "big"):
    ours, theirs = r[f"calamari {what}"], r[f"envsubst {what}"]
    print(f"{what}: calamari {ours:.3f}s, envsubst {theirs:.3f}s -> calamari throughput = {theirs / ours:.2f}x envsubst")
    if f"baseline {what}" in r:
        base = r[f"baseline {what}"]
        print(f"{what}: baseline {base:.3f}s -> calamari takes {ours / base:.2f}x the baseline's time")
PY

# Correctness: both sides produce the same text.
bash -c "$PREP"
eval "$OURS_BIG" > /dev/null
bash -c "$ENVSUBST_BIG"
cmp "$WORK/octo-work/big/big.txt" "$WORK/env-work/big/big.txt" && echo "outputs identical (big)"

if [ -x /usr/bin/time ]; then
  bash -c "$PREP"
  /usr/bin/time -v bash -c "$OURS_BIG" 2> "$WORK/time-ours.txt" > /dev/null
  /usr/bin/time -v bash -c "$ENVSUBST_BIG" 2> "$WORK/time-env.txt"
  echo "max RSS calamari big: $(grep 'Maximum resident' "$WORK/time-ours.txt" | awk '{print $NF}') KB"
  echo "max RSS envsubst big: $(grep 'Maximum resident' "$WORK/time-env.txt" | awk '{print $NF}') KB"
fi
[ -n "${BENCH_DIR:-}" ] || rm -rf "$WORK"
