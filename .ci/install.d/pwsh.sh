#!/usr/bin/env bash
# PowerShell for the PowerShell tests (tests/integration/powershell.rs), which under CI fail
# rather than skip without it. In order: a pwsh >= 7.2 already on the PATH; the offline
# PowerShell 7.6 in ../shared/tools/pwsh (install.sh: /opt/calamari-pwsh-<version>, linked
# as /usr/local/bin/pwsh); `dotnet tool install --global PowerShell` where a .NET SDK is
# present; else how to install it by hand. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"

pwsh_ok() {
    command -v pwsh >/dev/null 2>&1 &&
        pwsh -NoLogo -NoProfile -NonInteractive -Command \
            'if ($PSVersionTable.PSVersion -ge [version]"7.2") { exit 0 } else { exit 1 }' >/dev/null 2>&1
}

# pwsh needs ICU (cultures) and OpenSSL 3 from the system.
if [ "$(id -u)" = 0 ] && ! ldconfig -p | grep -q 'libicuuc\.so'; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(apt-cache search --names-only '^libicu[0-9]+$' | awk 'NR==1{print $1}')" libssl3 >/dev/null
fi

if pwsh_ok; then
    echo "pwsh.sh: $(command -v pwsh) $(pwsh -NoLogo -NoProfile -NonInteractive -Command '$PSVersionTable.PSVersion.ToString()')"
    exit 0
fi
if [ -f "$root/../shared/tools/pwsh/install.sh" ]; then
    if [ "$(id -u)" = 0 ]; then
        bash "$root/../shared/tools/pwsh/install.sh"
    else
        PREFIX="$HOME/.local" bash "$root/../shared/tools/pwsh/install.sh"
        echo "pwsh.sh: make sure $HOME/.local/bin is on the PATH" >&2
    fi
elif command -v dotnet >/dev/null 2>&1 && dotnet --list-sdks 2>/dev/null | grep -q .; then
    dotnet tool install --global PowerShell
    export PATH="$PATH:$HOME/.dotnet/tools"
    if [ "$(id -u)" = 0 ]; then ln -sf "$HOME/.dotnet/tools/pwsh" /usr/local/bin/pwsh; fi
fi
if ! pwsh_ok; then
    echo "pwsh.sh: no PowerShell 7.2 or newer: install it (\"Installing PowerShell on Linux\" in Microsoft's PowerShell documentation) so that pwsh is on the PATH" >&2
    exit 1
fi
