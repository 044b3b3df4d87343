#!/usr/bin/env bash
# The nginx feature's tests (tests/integration/nginx.rs) start a real nginx on loopback with
# their own prefix and configuration. Debian's nginx-light is enough (http, ssl, proxy).
# Idempotent: installs only what is missing; never starts the system's nginx service.
set -euo pipefail

if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "nginx.sh: nginx is missing (run as root to install it)" >&2
  exit 1
fi
apt-get update -qq
# policy-rc.d keeps the package's postinst from starting the system service on port 80.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
[ -z "$created_policy" ] || rm -f "$policy"
