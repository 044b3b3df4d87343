#!/usr/bin/env bash
# Delta benchmark: a 100 MB package with 1 % of it changed.
#
#   benches/delta.sh              # SIZE_MB=100 CHANGED_PERCENT=1 RUNS=3 by default
#
# Inputs (under target/bench-fixtures/delta/, never committed): basis.zip, 100 MB of
# random bytes (a package's compressed entries look random); new.zip, the same with 1 % of
# it (100 regions of 10 KiB spread evenly) overwritten with other random bytes.
# Measures, for our release binary: `delta signature` of the basis, `delta create` of the
# new file against it, `apply-delta` (basis + delta -> the new package in
# $TentacleHome/Files, SHA-1 verified, fsync'd), each the best of RUNS, with user CPU and
# peak RSS from /usr/bin/time; the delta's size against the new file's; and, as the floor
# apply-delta is measured against, `cp basis` + `sha1sum` of the result (the least work
# that reads the basis, writes 100 MB and hashes it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/target/bench-fixtures/delta
BIN=$ROOT/target/release/calamari
SIZE_MB=${SIZE_MB:-100}
CHANGED_PERCENT=${CHANGED_PERCENT:-1}
RUNS=${RUNS:-3}

(cd "$ROOT" && cargo build --release -q -p calamari-cli)
mkdir -p "$FIX"
cd "$FIX"

if [ ! -f basis.zip ] || [ "$(stat -c %s basis.zip)" != $((SIZE_MB * 1000 * 1000)) ]; then
    head -c $((SIZE_MB * 1000 * 1000)) /dev/urandom > basis.zip
    rm -f new.zip
fi
if [ ! -f new.zip ]; then
    python3 - "$CHANGED_PERCENT" <<'PY'
import os, sys
data = bytearray(open("basis.zip", "rb").read())
changed = len(data) * float(sys.argv[1]) / 100
regions, size = 100, int(changed / 100)
step = len(data) // regions
for i in range(regions):
    at = i * step + step // 3
    data[at:at + size] = os.urandom(size)
open("new.zip", "wb").write(data)
PY
fi

# best of RUNS: prints "wall_s user_s maxrss_kb" of the fastest run of "$@"
best() {
    local best_line="" best_wall=999999
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %M" -o time.txt "$@" > /dev/null
        read -r wall user rss < time.txt
        if awk "BEGIN{exit !($wall < $best_wall)}"; then best_wall=$wall; best_line="$wall $user $rss"; fi
    done
    echo "$best_line"
}

export TentacleHome=$FIX/home
mkdir -p "$TentacleHome/Files"
HASH=$(sha1sum basis.zip | cut -d' ' -f1)
export BIN HASH
APPLY='rm -f "$TentacleHome"/Files/* && "$BIN" apply-delta --basisFileName=basis.zip --fileHash="$HASH" --deltaFileName=new.octodelta --newFileName=Bench.2.0.0.zip'
FLOOR='cp basis.zip copy.zip && sha1sum copy.zip'

sig=$(best "$BIN" delta signature basis.zip basis.octosig)
create=$(best "$BIN" delta create basis.octosig new.zip new.octodelta)
applied=$(best bash -c "$APPLY")
floor_t=$(best bash -c "$FLOOR")
rm -f copy.zip
cmp "$TentacleHome"/Files/Bench@S2.0.0@*.zip new.zip || { echo "apply-delta gave the wrong file" >&2; exit 1; }

new_bytes=$(stat -c %s new.zip)
delta_bytes=$(stat -c %s new.octodelta)
sig_bytes=$(stat -c %s basis.octosig)
echo "input: ${SIZE_MB} MB, ${CHANGED_PERCENT} % changed in 100 regions; best of $RUNS; load $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores"
printf '%-34s %8s %8s %10s\n' step "wall s" "user s" "peak RSS"
for row in "delta signature:$sig" "delta create:$create" "apply-delta:$applied" "floor (cp + sha1sum):$floor_t"; do
    name=${row%%:*}; read -r w u m <<< "${row#*:}"
    printf '%-34s %8s %8s %7s MB\n' "$name" "$w" "$u" $((m / 1024))
done
awk -v d="$delta_bytes" -v n="$new_bytes" -v s="$sig_bytes" 'BEGIN {
    printf "delta: %d bytes = %.2f %% of the new file (%d bytes); signature %d bytes\n", d, 100 * d / n, n, s }'
awk -v a="${applied%% *}" -v f="${floor_t%% *}" 'BEGIN { printf "apply-delta / floor: %.2f\n", a / f }'
