#!/usr/bin/env bash
# `calamari fleet deploy-package`, Ansible and an scp + ssh loop doing the same deployment on
# 1, 8 and 32 hosts over a slow network: each host is its own user with its own $HOME and
# sshd on 127.0.0.1, reached through a relay that holds every byte 25 ms each way and carries
# 100 Mbit/s per host and direction (benches/fleet/relay.rs; this kernel has no netem). Also
# the CPU the whole machine spends per host (driver, ssh, sshd, the remote calamari and
# scripts; the relay left out), the driver's peak memory and open files, and a 1 %-changed
# 100 MB package sent as a delta against the whole file. See benches/fleet/wan.py.
# Usage: [CALAMARI_BIN=...] [BENCH_TIMEOUT=seconds] benches/fleet-wan.sh [--hosts 1,8,32]
#        [--runs 3] [--tools calamari,ansible,loop] [--delta-mb 100] [--delay-ms 25] [--rate-mbit 100]
# Needs root (users, cgroups), sshd and ansible-core (bash .ci/install.d/ssh.sh) and rustc.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CALAMARI_BIN:-$PWD/target/release/calamari}"
[ -x "$bin" ] || cargo build --release -p calamari-cli
out=$(mktemp -d /tmp/calamari-relay.XXXXXX)
trap 'rm -rf "$out"' EXIT
rustc --edition 2021 -O -o "$out/relay" benches/fleet/relay.rs
# The whole run is bounded: the harness cleans up (users, cgroups, processes) on SIGTERM.
timeout --kill-after=60 "${BENCH_TIMEOUT:-3600}" python3 benches/fleet/wan.py --calamari "$bin" --relay "$out/relay" "$@"
