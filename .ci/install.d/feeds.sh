#!/usr/bin/env bash
# The servers the download-package tests (tests/integration/feeds.rs) start: pypiserver
# (with passlib, for its htpasswd option), verdaccio, and openssl for the test CA. Python 3
# serves the static NuGet, Maven, Helm and HTTP feeds (tests/integration/feeds/server.py).
# Idempotent: installs only what is missing.
set -euo pipefail
. "$(dirname "$0")/../pip-install.sh"

if ! python3 -c 'import pypiserver, passlib' >/dev/null 2>&1; then
    echo "feeds.sh: installing pypiserver and passlib"
    pip_install pypiserver passlib
fi

if ! command -v verdaccio >/dev/null 2>&1; then
    echo "feeds.sh: installing verdaccio"
    npm install --global --silent --no-fund --no-audit verdaccio
fi

if ! command -v openssl >/dev/null 2>&1; then
    echo "feeds.sh: installing openssl"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi
