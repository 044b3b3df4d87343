#!/usr/bin/env bash
# End-to-end: a full `calamari deploy-package` of a real package (npm's typescript tarball,
# repacked with a substitution target and PreDeploy/Deploy/PostDeploy scripts) against the
# same work done by hand in one bash script (tar xzf, envsubst, three bash calls), side by
# side in one hyperfine run. Prints the ratio. Goal: no slower than the hand-written script.
#
#   bash benches/deploy.sh            # needs: npm, hyperfine, envsubst, GNU tar
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$root/target/bench-deploy}
mkdir -p "$work"
cd "$work"
cargo build --release --manifest-path "$root/Cargo.toml" -q
calamari="$root/target/release/calamari"

if [ ! -f typescript-5.9.3.tgz ]; then
  npm pack typescript@5.9.3 --silent >/dev/null
fi
rm -rf src && mkdir -p src && tar xzf typescript-5.9.3.tgz -C src
cat > src/app.config <<'CFG'
name=#{AppName}
env=#{Environment}
version=#{Version}
CFG
for stage in PreDeploy Deploy PostDeploy; do
  printf '#!/bin/bash\necho "%s: $(ls | wc -l) entries"\n' "$stage" > "src/$stage.sh"
done
tar czf typescript.5.9.3.tar.gz -C src .
# The peer's copy of the config uses ${VAR} syntax for envsubst.
sed -e 's/#{\([A-Za-z]*\)}/${\1}/g' src/app.config > envsubst.config

cat > vars.json <<JSON
[
 {"k":"Octopus.Tentacle.Agent.ApplicationDirectoryPath","v":"$work/apps","s":false},
 {"k":"Octopus.Action.EnabledFeatures","v":"Octopus.Features.SubstituteInFiles","s":false},
 {"k":"Octopus.Action.SubstituteInFiles.TargetFiles","v":"app.config","s":false},
 {"k":"AppName","v":"TypeScript","s":false},
 {"k":"Environment","v":"Bench","s":false},
 {"k":"Version","v":"5.9.3","s":false}
]
JSON
cat > by-hand.sh <<'SH'
#!/bin/bash
set -euo pipefail
d=$1/by-hand/typescript/5.9.3
mkdir -p "$d"
tar xzf "$1/typescript.5.9.3.tar.gz" -C "$d"
AppName=TypeScript Environment=Bench Version=5.9.3 envsubst < "$1/envsubst.config" > "$d/app.config.tmp"
mv "$d/app.config.tmp" "$d/app.config"
cd "$d"
for stage in PreDeploy Deploy PostDeploy; do bash "$stage.sh"; rm "$stage.sh"; done
SH

export TentacleHome="$work/home"
hyperfine -N --warmup 2 --runs 15 \
  --prepare "rm -rf $work/apps $work/by-hand $work/home" \
  --export-markdown deploy-results.md \
  -n calamari "$calamari deploy-package --package=$work/typescript.5.9.3.tar.gz --variables=$work/vars.json" \
  -n by-hand "bash $work/by-hand.sh $work"
cat deploy-results.md
