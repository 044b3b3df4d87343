#!/usr/bin/env bash
# pip_install PACKAGE...: installs Python packages for the tests' servers and tools with the
# python3 on PATH, on a Debian whose system Python refuses plain `pip install` (PEP 668) or
# has no pip yet. Sourced by the scripts in .ci/install.d.
pip_install() {
  if ! python3 -m pip --version >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
  fi
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
