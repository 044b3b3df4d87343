#!/usr/bin/env bash
# Starts N sshd servers on 127.0.0.1 to deploy to, each with its own $HOME, for the README's
# demo and benches/fleet.sh (the tests have the same in tests/integration/sshd.rs).
# Usage: benches/fleet/local-hosts.sh DIR N
# Writes DIR/ssh_config (aliases host1..hostN: port, user, key, known_hosts), DIR/home-<i>
# (host i's $HOME: sshd sets HOME for its sessions with SetEnv) and DIR/sshd.pids
# (stop them with: kill $(cat DIR/sshd.pids)). Returns once every host answers.
set -euo pipefail
dir=$1; n=$2
[ -x /usr/sbin/sshd ] || { echo "needs /usr/sbin/sshd (bash .ci/install.d/ssh.sh)" >&2; exit 1; }
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
mkdir -p "$dir"; dir=$(cd "$dir" && pwd); chmod 755 "$dir"
[ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
[ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
cp "$dir/client_key.pub" "$dir/authorized_keys"
user=$(id -un)
: > "$dir/known_hosts"; : > "$dir/ssh_config"; : > "$dir/sshd.pids"
for i in $(seq 1 "$n"); do
  home="$dir/home-$i"; mkdir -p "$home"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/sshd_config-$i" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
MaxStartups 100:30:200
MaxSessions 50
SetEnv HOME=$home
Subsystem sftp internal-sftp
CFG
  /usr/sbin/sshd -D -e -f "$dir/sshd_config-$i" 2>"$dir/sshd-$i.log" </dev/null >/dev/null &
  echo $! >> "$dir/sshd.pids"
  echo "[127.0.0.1]:$port $(cat "$dir/host_key.pub")" >> "$dir/known_hosts"
  cat >> "$dir/ssh_config" <<CFG
Host host$i
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $dir/client_key
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile $dir/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  LogLevel ERROR

CFG
done
for i in $(seq 1 "$n"); do
  ok=0
  for _ in $(seq 1 500); do
    if ssh -F "$dir/ssh_config" -o BatchMode=yes "host$i" true 2>/dev/null; then ok=1; break; fi
    sleep 0.02
  done
  [ "$ok" = 1 ] || { echo "host$i did not answer: $(cat "$dir/sshd-$i.log")" >&2; exit 1; }
done
echo "$n hosts up: ssh -F $dir/ssh_config host1 ... host$n"
