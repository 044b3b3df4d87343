#!/usr/bin/env bash
# Releases: the cost of the current-link switch, and a `calamari deploy-package` with
# Calamari.Release.CurrentLink against the same work by hand the way Capistrano does it
# (tar xzf into releases/<ts>, `ln -s` a temporary link, `mv -T` it over `current`).
# Goal: no slower than by hand.
#
#   bash benches/release.sh            # needs: GNU tar, GNU coreutils; hyperfine if installed
#   RUNS=50 bash benches/release.sh    # more iterations of the fallback timer
#
# Without hyperfine, each variant runs RUNS times, interleaved (so load affects all alike),
# timed with `date +%s%N`; mean and min are printed in milliseconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$root/target/bench-release}
runs=${RUNS:-30}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
cargo build --release -j 2 --manifest-path "$root/Cargo.toml" -q
calamari="${CARGO_TARGET_DIR:-$root/target}/release/calamari"

# A package of 200 small files and a 1 MB one.
mkdir -p src/files
for i in $(seq 1 200); do echo "file $i" > "src/files/f$i.txt"; done
head -c 1000000 /dev/urandom > src/blob.bin
echo 1.0.0 > src/marker.txt
tar czf Acme.Web.1.0.0.tar.gz -C src .

vars() { # $1 = file, $2 = "link" to set the current link
  local link=""
  [ "$2" = link ] && link=",{\"k\":\"Calamari.Release.CurrentLink\",\"v\":\"$work/srv/current\",\"s\":false}"
  cat > "$1" <<JSON
[
 {"k":"Octopus.Tentacle.Agent.ApplicationDirectoryPath","v":"$work/apps","s":false},
 {"k":"Octopus.Environment.Name","v":"Bench","s":false},
 {"k":"OctopusRetentionPolicySet","v":"bench","s":false}$link
]
JSON
}
vars with-link.json link
vars no-link.json none
cat > by-hand.sh <<'SH'
#!/bin/bash
# Capistrano's way: a new release directory, then an atomic switch of `current`.
set -euo pipefail
w=$1
r=$w/by-hand/releases/$(date +%Y%m%d%H%M%S%N)
mkdir -p "$r"
tar xzf "$w/Acme.Web.1.0.0.tar.gz" -C "$r"
ln -s "$r" "$w/by-hand/current.tmp"
mv -T "$w/by-hand/current.tmp" "$w/by-hand/current"
SH
cat > switch.sh <<'SH'
#!/bin/bash
set -euo pipefail
ln -sfn "$2" "$1/switch.tmp" && mv -T "$1/switch.tmp" "$1/switch"
SH
mkdir -p switch-a switch-b

export TentacleHome="$work/home"
cmd_link="$calamari deploy-package --package=$work/Acme.Web.1.0.0.tar.gz --variables=$work/with-link.json"
cmd_plain="$calamari deploy-package --package=$work/Acme.Web.1.0.0.tar.gz --variables=$work/no-link.json"
cmd_hand="bash $work/by-hand.sh $work"
cmd_switch="bash $work/switch.sh $work $work/switch-a"

if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs "$runs" --export-markdown release-results.md \
    -n 'calamari, current link' "$cmd_link" \
    -n 'calamari, no link' "$cmd_plain" \
    -n 'by hand: tar + ln -s + mv -T' "$cmd_hand" \
    -n 'ln -s + mv -T alone' "$cmd_switch"
  cat release-results.md
  exit 0
fi

now() { date +%s%N; }
declare -A total min
names=(link plain hand switch)
for n in "${names[@]}"; do total[$n]=0; min[$n]=999999999999; done
for i in $(seq 1 "$runs"); do
  for n in "${names[@]}"; do
    case $n in
      link) c=$cmd_link ;; plain) c=$cmd_plain ;; hand) c=$cmd_hand ;; switch) c=$cmd_switch ;;
    esac
    t0=$(now); $c >/dev/null; t1=$(now)
    d=$((t1 - t0)); total[$n]=$((total[$n] + d)); [ "$d" -lt "${min[$n]}" ] && min[$n]=$d
  done
done
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
printf '| variant | mean (ms) | min (ms) |\n|---|---|---|\n'
for n in "${names[@]}"; do
  case $n in
    link) label='calamari deploy-package, current link' ;; plain) label='calamari deploy-package, no link' ;;
    hand) label='by hand: tar xzf + ln -s + mv -T' ;; switch) label='ln -s + mv -T alone' ;;
  esac
  printf '| %s | %s | %s |\n' "$label" "$(ms $((total[$n] / runs)))" "$(ms "${min[$n]}")"
done
echo
echo "switch cost inside calamari (current link minus no link, mean): $(ms $(( (total[link] - total[plain]) / runs ))) ms"
echo "ratio by hand / calamari with link (mean): $(awk -v a="${total[hand]}" -v b="${total[link]}" 'BEGIN { printf "%.2f", a / b }')x"
# Every deployment left `current` at a complete release.
test "$(cat "$work/srv/current/marker.txt")" = 1.0.0
