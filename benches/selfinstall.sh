#!/bin/sh
# Self-install side by side: `calamari install --bundle --force` (verify the bundle, stage,
# fsync every file, rename, Success.txt by temp+fsync+rename+fsync) against the minimal POSIX
# sh install an SSH push would do (tar -xzf into a temp dir, sync, mv -T, touch Success.txt),
# and `calamari check-install` against `test -f`. One hyperfine invocation each; prints ratios.
# Usage: benches/selfinstall.sh   (builds the release binary if missing)
set -eu
cd "$(dirname "$0")/.."
[ -x target/release/calamari ] || cargo build --release -p calamari-cli
bin="$PWD/target/release/calamari"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" bundle --output "$work/out" >/dev/null
version=$("$bin" version | grep -v '^##')
bundle="$work/out/Calamari.$version.tar.gz"
sha=$(cut -d' ' -f1 "$bundle.sha256")
mkdir -p "$work/peer/Calamari"
cat > "$work/peer.sh" <<PEER
set -e
rm -rf "$work/peer/Calamari/$version" "$work/peer/Calamari/.tmp"
mkdir "$work/peer/Calamari/.tmp"
tar -xzf "$bundle" -C "$work/peer/Calamari/.tmp"
sync
mv -T "$work/peer/Calamari/.tmp" "$work/peer/Calamari/$version"
touch "$work/peer/Calamari/$version/Success.txt"
sync
PEER
"$bin" install --home "$work/ours" --bundle "$bundle" >/dev/null
hyperfine -N --warmup 3 --runs 30 --export-json "$work/install.json" \
  -n calamari "$bin install --home $work/ours --bundle $bundle --sha256 $sha --force" \
  -n posix-sh "sh $work/peer.sh"
hyperfine -N --warmup 5 --runs 200 --export-json "$work/check.json" \
  -n calamari "$bin check-install --home $work/ours --version $version" \
  -n test-f "test -f $work/ours/Calamari/$version/Success.txt"
python3 - "$work/install.json" "$work/check.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = {x["command"]: x["mean"] for x in json.load(open(path))["results"]}
    (a, ta), (b, tb) = list(r.items())
    print(f"{a} {ta*1000:.2f} ms vs {b} {tb*1000:.2f} ms: ratio {ta/tb:.2f}")
PY
