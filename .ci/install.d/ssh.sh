#!/usr/bin/env bash
# The fleet tests start real sshd servers on loopback and drive them with the system ssh;
# the Ansible role tests (tests/integration/ansible.rs) and the fleet benchmarks need ansible-core.
# Idempotent: installs only what is missing.
set -euo pipefail
. "$(dirname "$0")/../pip-install.sh"

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v flock >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "ssh.sh: missing ${need[*]} (run as root to install them)" >&2
    exit 1
  fi
fi
# sshd started as root wants its privilege-separation directory.
if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd && chmod 0755 /run/sshd; fi

if ! command -v ansible-playbook >/dev/null; then
  pip_install ansible-core || echo "ssh.sh: ansible-core not installed (the Ansible role tests will skip)" >&2
fi
