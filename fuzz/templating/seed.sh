#!/usr/bin/env bash
# Seeds the variables_file and structured corpora from the project's fixtures (small inputs;
# the generated corpora are not committed). First byte of each input selects the mode or
# format (see MODES in fuzz_targets/variables_file.rs, FORMATS in fuzz_targets/structured.rs).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/variables_file corpus/structured
n=0
for f in ../../fixtures/sample/variables.json ../../fixtures/structured/*/variables.json; do
    for mode in 0 3; do
        { printf "\\x$(printf %02x $mode)"; cat "$f"; } > "corpus/variables_file/seed-$n-$mode"
    done
    n=$((n+1))
done
printf '\x01{"Legacy":"v","Null":null}' > corpus/variables_file/seed-legacy
printf '\x04{"Legacy":"v"}' > corpus/variables_file/seed-legacy-enc
m=0
for f in ../../fixtures/structured/*/input.*; do
    case "$f" in
        *.json) sel=0 ;; *.yaml|*.yml) sel=1 ;; *.xml|*.config) sel=2 ;; *.properties) sel=3 ;; *) continue ;;
    esac
    [ "$(wc -c < "$f")" -le 4096 ] || continue
    { printf "\\x$(printf %02x $sel)"; cat "$f"; } > "corpus/structured/seed-$m"
    m=$((m+1))
done
echo "seeded $((n*2+2)) variables_file and $m structured inputs"
