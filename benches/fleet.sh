#!/usr/bin/env bash
# `calamari fleet deploy-package` against Ansible and a plain scp + ssh loop, doing the same
# work on N local sshd hosts: unpack a package, substitute into index.html, run three
# scripts (PreDeploy, Deploy, PostDeploy). Every host is a real sshd on 127.0.0.1 with its
# own $HOME (benches/fleet/local-hosts.sh). Calamari is installed on the hosts by a first
# run (not timed); the package is the same each run, so calamari finds it in the remote
# cache, as it would for a re-run or a second step.
# Usage: [RUNS=5] [CALAMARI_BIN=...] benches/fleet.sh [HOSTS...]   (default: 3 8; builds the release binary if missing)
# Each tool runs RUNS times (default 5) per host count; prints means and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(3 8)
runs=${RUNS:-5}
bin="${CALAMARI_BIN:-$PWD/target/release/calamari}"   # CALAMARI_BIN: another build
[ -x "$bin" ] || cargo build --release -p calamari-cli
have_ansible=1; command -v ansible-playbook >/dev/null || { have_ansible=0; echo "ansible-playbook missing: skipped"; }
work=$(mktemp -d /tmp/calamari-fleet-bench.XXXXXX)
cleanup() { [ -f "$work/sshd.pids" ] && kill $(cat "$work/sshd.pids") 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
max=0; for n in "${counts[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
bash benches/fleet/local-hosts.sh "$work" "$max" >/dev/null

# The package: index.html with a substitution target, three scripts.
mkdir -p "$work/pkg"
printf 'Hello #{Name}\n' > "$work/pkg/index.html"
for s in PreDeploy Deploy PostDeploy; do printf 'echo "%s on $(hostname)"\n' "$s" > "$work/pkg/$s.sh"; done
tar -czf "$work/Acme.Web.1.0.0.tar.gz" -C "$work/pkg" .
cat > "$work/vars.json" <<'JSON'
[{"k":"Octopus.Action.EnabledFeatures","v":"Octopus.Features.SubstituteInFiles","s":false},
 {"k":"Octopus.Action.SubstituteInFiles.TargetFiles","v":"index.html","s":false},
 {"k":"Name","v":"Fleet","s":false}]
JSON

calamari_run() { # N
  local args=(); for i in $(seq 1 "$1"); do args+=("--host=host$i"); done
  "$bin" fleet deploy-package --package="$work/Acme.Web.1.0.0.tar.gz" --variables="$work/vars.json" \
    --sshConfig="$work/ssh_config" "${args[@]}" >/dev/null
}
loop_run() { # N: one scp and one ssh per host, one host after another
  for i in $(seq 1 "$1"); do
    scp -q -F "$work/ssh_config" "$work/Acme.Web.1.0.0.tar.gz" "host$i:/tmp/loop-$i.tar.gz"
    ssh -F "$work/ssh_config" "host$i" "set -e; d=\$HOME/Applications/loop/1.0.0; rm -rf \$d; mkdir -p \$d; cd \$d;
      tar -xzf /tmp/loop-$i.tar.gz; sed -i 's/#{Name}/Fleet/' index.html;
      sh PreDeploy.sh; sh Deploy.sh; sh PostDeploy.sh; rm -f /tmp/loop-$i.tar.gz" >/dev/null
  done
}
ansible_run() { # N
  local inv="$work/inventory-$1.ini"
  { echo "[targets]"; for i in $(seq 1 "$1"); do echo "host$i ansible_env_home=$work/home-$i"; done
    echo "[targets:vars]"; echo "ansible_python_interpreter=/usr/bin/python3"
    echo "ansible_ssh_common_args='-F $work/ssh_config'"; } > "$inv"
  ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_FORKS=10 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
    ansible-playbook -i "$inv" benches/fleet/playbook.yml -e "package=$work/Acme.Web.1.0.0.tar.gz" >/dev/null
}
mean() { # FUNCTION N: mean seconds over $runs runs
  local total=0 t0 t1
  for _ in $(seq 1 "$runs"); do
    t0=$(date +%s.%N); "$1" "$2"; t1=$(date +%s.%N)
    total=$(python3 -c "print($total + $t1 - $t0)")
  done
  python3 -c "print(f'{$total / $runs:.2f}')"
}

calamari_run "$max"  # first run: pushes Calamari to every host (not timed)
for n in "${counts[@]}"; do
  c=$(mean calamari_run "$n"); l=$(mean loop_run "$n")
  if [ "$have_ansible" = 1 ]; then a=$(mean ansible_run "$n"); else a=nan; fi
  python3 - "$n" "$c" "$l" "$a" <<'PY'
import sys
n, c, l, a = sys.argv[1], *map(float, sys.argv[2:])
print(f"{n} hosts: calamari fleet {c:.2f} s, scp+ssh loop {l:.2f} s ({l/c:.1f}x), ansible {a:.2f} s ({a/c:.1f}x)")
PY
done
