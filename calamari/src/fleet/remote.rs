//! The remote side: small POSIX `sh` scripts, each run as `sh -c '<script>' calamari-fleet
//! '<arg>'...` ([`super::quote::sh_command`]), so they work whatever the login shell is
//! and every value arrives as a quoted argument. They need `sh`, `mkdir`, `mktemp`, `tar`,
//! `head`, `wc`, `sha256sum`, `df`, and `flock` for the push lock (without it two drivers
//! may both push; the install itself is still locked by Calamari).
//!
//! A line on stderr that starts with [`FLEET_PREFIX`] is the script's own error; exit
//! status [`SCRIPT_FAILED`] says the script (not the command) failed.

/// The remote TentacleHome, relative to the remote `$HOME`.
pub(crate) const OCTOPUS_DIR: &str = ".octopus";
/// Exit status of a remote script that failed before the command ran.
pub(crate) const SCRIPT_FAILED: i32 = 97;
/// Prefix of the scripts' own error lines.
pub(crate) const FLEET_PREFIX: &str = "calamari-fleet: ";
/// The line the run script prints right before it starts Calamari: everything sent has
/// arrived.
pub(crate) const READY_LINE: &str = "##calamari-fleet[ready]";

/// `$1` instance, `$2` version, then package file names. Prints `home H`, `calamari
/// complete|incomplete|missing`, `arch M`, `work W` (a new 0700 directory), and per
/// package `cached <sha256 or ->`, then `file <size> <name>` per file in the package cache
/// (when packages were named: the bases for deltas). Work directories older than a day
/// (left by a host that went away mid-run) are removed first.
pub(crate) const PROBE: &str = r#"H="$HOME/.octopus/$1"; V="$2"; shift 2
echo "home $H"
if [ -f "$H/Calamari/$V/Success.txt" ]; then echo "calamari complete"
elif [ -d "$H/Calamari/$V" ]; then echo "calamari incomplete"
else echo "calamari missing"; fi
echo "arch $(uname -m)"
mkdir -p "$H/Work" || exit 97
find "$H/Work" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} + 2>/dev/null
W=$(mktemp -d "$H/Work/run-XXXXXXXX") || exit 97
echo "work $W"
for p in "$@"; do
  if [ -f "$H/Files/$p" ]; then h=$(sha256sum < "$H/Files/$p" | cut -d' ' -f1); else h=-; fi
  echo "cached $h"
done
if [ $# -gt 0 ] && [ -d "$H/Files" ]; then
  for f in "$H/Files"/*; do [ -f "$f" ] && s=$(wc -c < "$f") && echo "file $((s)) ${f##*/}"; done
fi
exit 0
"#;

/// `$1` instance, `$2` version, `$3` bundle SHA-256, `$4` bundle size. Under the push lock:
/// prints `have` when the version is complete by now, else `need`, reads exactly `$4`
/// bytes of bundle from stdin, and installs it with the calamari inside it; prints
/// `installed`.
pub(crate) const PUSH: &str = r#"H="$HOME/.octopus/$1"; V="$2"; S="$3"; N="$4"
mkdir -p "$H/Calamari" "$H/Work" || exit 97
if command -v flock >/dev/null 2>&1; then exec 9>>"$H/.calamari-push.lock" && flock 9 || exit 97; fi
if [ -f "$H/Calamari/$V/Success.txt" ]; then echo have; exit 0; fi
echo need
T=$(mktemp -d "$H/Work/push-XXXXXXXX") || exit 97
trap 'rm -rf "$T"' EXIT
head -c "$N" > "$T/bundle.tar.gz" || exit 97
if [ "$(wc -c < "$T/bundle.tar.gz")" -ne "$N" ]; then echo "calamari-fleet: the bundle arrived incomplete" >&2; exit 97; fi
tar -xzf "$T/bundle.tar.gz" -C "$T" calamari || exit 97
"$T/calamari" install --home "$H" --bundle "$T/bundle.tar.gz" --sha256 "$S" >/dev/null || exit 97
echo installed
"#;

/// `$1` instance, `$2` version, `$3` work directory, `$4` 1 when a password line comes
/// first on stdin, `$5` N, then N package file names, then M and M pairs (a package
/// rebuilt from a delta, its cache name), then Calamari's arguments. Reads the
/// password line, extracts the tar stream on stdin into the work directory, moves the
/// packages into the package cache, prints [`READY_LINE`] and runs Calamari in the work
/// directory with TentacleHome set, the password on its stdin. The work directory is
/// removed on exit.
pub(crate) const RUN: &str = r###"H="$HOME/.octopus/$1"; V="$2"; W="$3"; P="$4"; n="$5"; shift 5
trap 'rm -rf "$W"' EXIT
umask 077
if [ "$P" = 1 ]; then IFS= read -r pw || { echo "calamari-fleet: the password did not arrive" >&2; exit 97; }; fi
tar --no-same-owner -xf - -C "$W" || exit 97
if [ "$n" -gt 0 ]; then mkdir -p "$H/Files" || exit 97; fi
while [ "$n" -gt 0 ]; do mv -f "$W/packages/$1" "$H/Files/$1" || exit 97; shift; n=$((n-1)); done
m="$1"; shift
while [ "$m" -gt 0 ]; do [ "$1" = "$H/Files/$2" ] || mv -f "$1" "$H/Files/$2" || exit 97; shift 2; m=$((m-1)); done
cd "$W" || exit 97
TentacleHome="$H"; export TentacleHome
echo "##calamari-fleet[ready]"
if [ "$P" = 1 ]; then printf '%s\n' "$pw" | "$H/Calamari/$V/calamari" "$@"; else "$H/Calamari/$V/calamari" "$@" </dev/null; fi
"###;

/// `$1` a work directory to remove (after a failure before the run script started).
pub(crate) const REMOVE_WORK: &str = r#"rm -rf "$1""#;

/// `$1` instance. Prints `home H`, one `version <name> complete|incomplete` per directory
/// under `Calamari/`, and `free <KiB>` available under the home (or its nearest existing
/// parent).
pub(crate) const CHECK: &str = r#"H="$HOME/.octopus/$1"
echo "home $H"
for d in "$H"/Calamari/*/; do
  [ -d "$d" ] || continue
  v=$(basename "$d")
  if [ -f "$d/Success.txt" ]; then echo "version $v complete"; else echo "version $v incomplete"; fi
done
d="$H"; while [ ! -d "$d" ]; do d=$(dirname "$d"); done
echo "free $(df -Pk "$d" | awk 'NR==2 {print $4}')"
"#;
