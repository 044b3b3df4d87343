#!/usr/bin/env bash
# download-package against `curl -o`: the same 100 MB file from the same loopback HTTP
# server (python3 -m http.server), ours with its SHA-1 computed in the same pass and the
# fsync + rename into the cache, curl writing the file only. Also `curl -o` followed by
# `sync FILE` (the same durability as ours) and `curl | sha1sum` (the download plus a hash,
# as two processes). Prints the mean of each and the ratios ours / curl.
#
#   benches/download.sh               # 100 MB, 10 runs each
#   SIZE_MB=500 RUNS=5 benches/download.sh
#
# hyperfine is used when installed; otherwise a loop timed with `date +%s%N`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/calamari
SIZE_MB=${SIZE_MB:-100}
RUNS=${RUNS:-10}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# NO_BUILD=1 uses the release binary as it is.
[ -n "${NO_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p calamari-cli)
mkdir -p "$WORK/www" "$WORK/home"
head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/www/Bench.1.0.0.zip"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$PORT" >/dev/null 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT/Bench.1.0.0.zip"
for _ in $(seq 200); do curl -s -o /dev/null "$URL" && break; sleep 0.05; done

OURS="TentacleHome=$WORK/home $BIN download-package --packageId Bench --packageVersion 1.0.0 --feedType Http --feedId bench --feedUri $URL --forcePackageDownload --attempts 1 >/dev/null"
CURL="curl -s -o $WORK/curl.zip $URL"
CURL_SYNC="curl -s -o $WORK/curl.zip $URL && sync $WORK/curl.zip"
CURL_SHA="curl -s $URL | sha1sum >/dev/null"
PREPARE="rm -rf $WORK/home/Files $WORK/curl.zip"

# Check once that ours downloads the right bytes.
sh -c "$PREPARE"
out=$(TentacleHome=$WORK/home "$BIN" download-package --packageId Bench --packageVersion 1.0.0 --feedType Http --feedId bench --feedUri "$URL" --attempts 1)
echo "$out" | grep -q setVariable || { echo "download-package failed: $out" >&2; exit 1; }
cmp -s "$WORK/www/Bench.1.0.0.zip" "$WORK"/home/Files/bench/Bench@S1.0.0@*.zip || { echo "bytes differ" >&2; exit 1; }

mean_ms() { # $1 = command; prints the mean wall time in ms over RUNS, after one warm-up
    local total=0 start end
    sh -c "$PREPARE"; sh -c "$1"
    for _ in $(seq "$RUNS"); do
        sh -c "$PREPARE"
        start=$(date +%s%N); sh -c "$1"; end=$(date +%s%N)
        total=$((total + end - start))
    done
    echo $((total / RUNS / 1000000))
}

echo "download of ${SIZE_MB} MB from loopback, $RUNS runs each"
if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N --warmup 1 --runs "$RUNS" --prepare "$PREPARE" --export-json "$WORK/h.json" \
        -n download-package "sh -c '$OURS'" -n "curl -o" "$CURL" -n "curl -o + sync" "sh -c '$CURL_SYNC'" \
        -n "curl | sha1sum" "sh -c '$CURL_SHA'"
    python3 - "$WORK/h.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
print(f"ratio download-package / curl -o: {r['download-package'] / r['curl -o']:.2f}")
print(f"ratio download-package / curl -o + sync: {r['download-package'] / r['curl -o + sync']:.2f}")
PY
else
    ours=$(mean_ms "$OURS"); curl_ms=$(mean_ms "$CURL"); curl_sync=$(mean_ms "$CURL_SYNC"); curl_sha=$(mean_ms "$CURL_SHA")
    printf '%-18s %6s ms\n' download-package "$ours" "curl -o" "$curl_ms" "curl -o + sync" "$curl_sync" \
        "curl | sha1sum" "$curl_sha"
    python3 -c "print(f'ratio download-package / curl -o: {$ours / max($curl_ms, 1):.2f}')"
    python3 -c "print(f'ratio download-package / curl -o + sync: {$ours / max($curl_sync, 1):.2f}')"
fi
