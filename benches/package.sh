#!/usr/bin/env bash
# Side-by-side package benchmarks: our binary against the usual peers, in ONE hyperfine
# invocation per input so the ratios are comparable on a noisy shared machine.
#
#   benches/package.sh            # everything (fetches and generates inputs on first run)
#   QUICK=1 benches/package.sh    # real packages only, fewer runs
#
# Inputs (cached under target/bench-fixtures/package/, never committed):
#   npm pack typescript@5.9.3, npm pack aws-sdk@2.1693.0       (.tgz, written by npm)
#   pip download --no-deps botocore==1.44.5                    (.whl = zip, written by pip/setuptools)
#   gen-small: ~500 MB in ~12 000 text-like files   (.tar.gz via GNU tar+gzip, .zip via Info-ZIP)
#   gen-large: ~500 MB in 8 files of 64 MB           (same)
#   hash.bin:  1 GiB random, for hashing
# Peers: GNU `tar xzf`, `bsdtar xf` (tar.gz); `unzip -q`, `bsdtar xf` (zip);
#        `sha1sum`, `openssl dgst -sha1`, `openssl dgst -sha256` (hashing; ours computes SHA-1
#        and SHA-256 in one pass through `find-package`, which hashes the cached file).
# Peak memory: /usr/bin/time -f %M for one run of ours on each input.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX=$ROOT/target/bench-fixtures/package
OUT=$FIX/out
BIN=$ROOT/target/release/calamari
RUNS=${RUNS:-5}
RUNS_BIG=${RUNS_BIG:-3}   # for the ~500 MB generated packages
QUICK=${QUICK:-}
[ -n "$QUICK" ] && RUNS=3

(cd "$ROOT" && cargo build --release -q -p calamari-cli)
mkdir -p "$FIX" "$FIX/results"
cd "$FIX"

[ -f typescript-5.9.3.tgz ] || npm pack -q typescript@5.9.3 >/dev/null
[ -f aws-sdk-2.1693.0.tgz ] || npm pack -q aws-sdk@2.1693.0 >/dev/null
[ -f botocore-1.44.5-py3-none-any.whl ] || pip download -q --no-deps botocore==1.44.5 -d . >/dev/null

generate() { # $1 = name, $2 = files, $3 = bytes per file
    local name=$1
    [ -f "$name.tar.gz" ] && [ -f "$name.zip" ] && return
    rm -rf "tree-$name" && mkdir "tree-$name"
    python3 - "tree-$name" "$2" "$3" <<'PY'
import os, sys, random
root, files, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) + b" " for _ in range(4000)]
block = b"".join(rng.choice(words) for _ in range(400000))  # ~2.2 MB of text-like data
for i in range(files):
    d = os.path.join(root, f"d{i % 97}", f"s{i % 13}")
    os.makedirs(d, exist_ok=True)
    start = rng.randrange(0, len(block) - 1)
    data = (block[start:] + block)[:size] if size <= len(block) else (block * (size // len(block) + 1))[:size]
    if size > len(block):
        data = bytes(b ^ (i & 0x1f) for b in data[:1 << 20]) + data[1 << 20:]
    with open(os.path.join(d, f"f{i}.txt"), "wb") as f:
        f.write(data)
PY
    (cd "tree-$name" && tar czf "../$name.tar.gz" . && zip -q -r "../$name.zip" .)
    rm -rf "tree-$name"
}
if [ -z "$QUICK" ]; then
    generate gen-small 12000 42000
    generate gen-large 8 67108864
    [ -f hash.bin ] || head -c 1073741824 /dev/urandom > hash.bin
fi
[ -n "${GENERATE_ONLY:-}" ] && exit 0

summary() { # hyperfine json -> median, user, sys, ratio to the named peer
    python3 - "$1" <<'PY'
import json, sys, statistics
r = json.load(open(sys.argv[1]))["results"]
ours = next(x for x in r if x["command"].startswith("calamari"))
med = lambda x: statistics.median(x["times"])
print(f"  {'command':<22}{'median s':>10}{'min s':>9}{'user s':>9}{'sys s':>9}{'ours faster by':>16}")
for x in r:
    ratio = med(x) / med(ours)
    print(f"  {x['command']:<22}{med(x):>10.3f}{min(x['times']):>9.3f}{x['user']:>9.3f}{x['system']:>9.3f}{ratio:>15.2f}x")
PY
}

peak() { # peak RSS of one run of ours, in MB
    rm -rf "$OUT" && mkdir -p "$OUT"
    /usr/bin/time -f %M "$@" >/dev/null 2>"$FIX/time.txt" || true
    echo "  peak RSS of ours: $(( $(tail -1 "$FIX/time.txt") / 1024 )) MB"
}

bench_tgz() {
    local f=$FIX/$1
    echo "== $1 ($(du -h "$f" | cut -f1))"
    hyperfine -S bash --style basic --warmup 1 --runs "$RUNS" --export-json "$FIX/results/$1.json" \
        --prepare "rm -rf $OUT && mkdir -p $OUT/x" \
        -n calamari "$BIN extract-package --package=$f --destination=$OUT/y" \
        -n "tar xzf" "tar xzf $f -C $OUT/x" \
        -n "bsdtar xf" "bsdtar xf $f -C $OUT/x" >/dev/null
    summary "$FIX/results/$1.json"
    peak "$BIN" extract-package --package="$f" --destination="$OUT/y"
}

bench_zip() {
    local f=$FIX/$1
    echo "== $1 ($(du -h "$f" | cut -f1))"
    hyperfine -S bash --style basic --warmup 1 --runs "$RUNS" --export-json "$FIX/results/$1.json" \
        --prepare "rm -rf $OUT && mkdir -p $OUT/x" \
        -n calamari "$BIN extract-package --package=$f --destination=$OUT/y" \
        -n "unzip -q" "unzip -q $f -d $OUT/x" \
        -n "bsdtar xf" "bsdtar xf $f -C $OUT/x" >/dev/null
    summary "$FIX/results/$1.json"
    peak "$BIN" extract-package --package="$f" --destination="$OUT/y"
}

bench_hash() {
    local home=$FIX/tentacle
    mkdir -p "$home/Files"
    ln -f "$FIX/hash.bin" "$home/Files/Hash.1.0.0.zip"
    local sha1
    sha1=$(openssl dgst -sha1 -r "$FIX/hash.bin" | cut -d' ' -f1)
    echo "== hashing 1 GiB"
    hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-json "$FIX/results/hash.json" \
        -n "calamari sha1+sha256" "env TentacleHome=$home $BIN find-package --packageId=Hash --packageVersion=1.0.0 --packageHash=$sha1" \
        -n "sha1sum" "sha1sum $FIX/hash.bin" \
        -n "openssl dgst -sha1" "openssl dgst -sha1 $FIX/hash.bin" \
        -n "openssl dgst -sha256" "openssl dgst -sha256 $FIX/hash.bin" >/dev/null
    summary "$FIX/results/hash.json"
    peak env TentacleHome="$home" "$BIN" find-package --packageId=Hash --packageVersion=1.0.0 --packageHash="$sha1"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
bench_tgz typescript-5.9.3.tgz
bench_tgz aws-sdk-2.1693.0.tgz
bench_zip botocore-1.44.5-py3-none-any.whl
if [ -z "$QUICK" ]; then
    RUNS=$RUNS_BIG
    bench_tgz gen-small.tar.gz
    bench_zip gen-small.zip
    bench_tgz gen-large.tar.gz
    bench_zip gen-large.zip
    bench_hash
fi
rm -rf "$OUT"
