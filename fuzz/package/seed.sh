#!/usr/bin/env bash
# Seeds the extract_archive corpus with the project's fixture packages (first byte selects
# the format, see NAMES in fuzz_targets/extract_archive.rs).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/extract_archive
F=../../fixtures/packages
i=0
for pair in "0 zip" "1 nupkg" "2 tar" "3 tar.gz" "4 tbz" "5 tar.xz" "6 tar.zst" "7 jar"; do
    set -- $pair
    src=$(ls $F/*.$2 | head -1)
    { printf "\\x$(printf %02x "$1")"; cat "$src"; } > corpus/extract_archive/seed-$2
    i=$((i+1))
done
echo "seeded $i inputs"
