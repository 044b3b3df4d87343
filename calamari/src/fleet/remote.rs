//! What runs on a host first: two small POSIX `sh` scripts, each run as `sh -c '<script>'
//! calamari-fleet '<arg>'...` ([`super::quote::sh_command`]), so they work whatever the login
//! shell is and every value arrives as a quoted argument. Their arguments are built from
//! the structs here ([`Boot`], [`Check`]), one named field per positional argument.
//!
//! [`BOOT`] starts every run: when this version is complete it `exec`s the agent
//! (`calamari fleet-agent`, `agent.rs`) at once (no other process); otherwise it
//! pushes and installs the bundle under the remote push lock first, then `exec`s the agent
//! in the same session. Pushing needs `mkdir`, `mktemp`, `head`, `wc`, `tar`, `uname`, and
//! `flock` for the lock (without it two drivers may both push; the install itself is still
//! locked by Calamari). [`CHECK`] is `calamari fleet check`.
//!
//! A line on stderr that starts with [`FLEET_PREFIX`] is the scripts' or the agent's own
//! error; exit status [`SCRIPT_FAILED`] says they (not the command) failed.

use super::protocol::{HAVE, INSTALLED, NEED, PREFIX};
use super::quote::sh_command;

/// The remote TentacleHome, relative to the remote `$HOME`.
pub(crate) const OCTOPUS_DIR: &str = ".octopus";
/// Exit status of a remote script or agent that failed before the command ran.
pub(crate) const SCRIPT_FAILED: i32 = 97;
/// Prefix of the scripts' and the agent's own error lines.
pub(crate) const FLEET_PREFIX: &str = "calamari-fleet: ";

/// `$1` instance, `$2` version, then the package file names for the agent. When
/// `Calamari/<version>/Success.txt` is missing: under the push lock, prints the control
/// line `need <uname -m>` (or `have` when another driver installed it meanwhile), reads
/// `<sha256> <size>` and exactly that many bytes of bundle from stdin, installs it with the
/// calamari inside it and prints `installed`. Then `exec`s the agent with the package names.
pub(crate) const BOOT: &str = r#"H="$HOME/.octopus/$1"; V="$2"; shift 2
if [ ! -f "$H/Calamari/$V/Success.txt" ]; then
  mkdir -p "$H/Calamari" "$H/Work" || exit 97
  if command -v flock >/dev/null 2>&1; then exec 9>>"$H/.calamari-push.lock" && flock 9 || exit 97; fi
  if [ -f "$H/Calamari/$V/Success.txt" ]; then echo '{HAVE}'; else
    echo "{NEED} $(uname -m)"
    read -r S N || { echo 'calamari-fleet: the bundle did not arrive' >&2; exit 97; }
    T=$(mktemp -d "$H/Work/push-XXXXXXXX") || exit 97
    trap 'rm -rf "$T"' EXIT
    head -c "$N" > "$T/bundle.tar.gz" || exit 97
    if [ "$(wc -c < "$T/bundle.tar.gz")" -ne "$N" ]; then echo 'calamari-fleet: the bundle arrived incomplete' >&2; exit 97; fi
    tar -xzf "$T/bundle.tar.gz" -C "$T" calamari || exit 97
    "$T/calamari" install --home "$H" --bundle "$T/bundle.tar.gz" --sha256 "$S" >/dev/null || exit 97
    rm -rf "$T"; trap - EXIT
    echo '{INSTALLED}'
  fi
  exec 9>&-
fi
exec "$H/Calamari/$V/calamari" fleet-agent --home="$H" --calamari="$H/Calamari/$V/calamari" -- "$@"
"#;

/// [`BOOT`]'s arguments.
#[derive(Debug, Clone)]
pub(crate) struct Boot<'a> {
    /// The remote TentacleHome is `$HOME/.octopus/<instance>`.
    pub(crate) instance: &'a str,
    /// The Calamari version the host must have.
    pub(crate) version: &'a str,
    /// The packages' file names (the agent sends their cached hashes).
    pub(crate) packages: Vec<&'a str>,
}

impl Boot<'_> {
    /// The remote command line.
    pub(crate) fn command(&self) -> String {
        let mut args = vec![self.instance, self.version];
        args.extend(&self.packages);
        sh_command(&boot_script(), &args)
    }
}

/// [`BOOT`] with its control lines filled in.
fn boot_script() -> String {
    BOOT.replace("{HAVE}", &format!("{PREFIX}{HAVE}]"))
        .replace("{NEED}", &format!("{PREFIX}{NEED}]"))
        .replace("{INSTALLED}", &format!("{PREFIX}{INSTALLED}]"))
}

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

/// [`CHECK`]'s arguments.
#[derive(Debug, Clone)]
pub(crate) struct Check<'a> {
    /// The remote TentacleHome is `$HOME/.octopus/<instance>`.
    pub(crate) instance: &'a str,
}

impl Check<'_> {
    /// The remote command line.
    pub(crate) fn command(&self) -> String {
        sh_command(CHECK, &[self.instance])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)]

    use super::*;

    #[test]
    fn the_boot_script_execs_the_agent_when_the_version_is_complete() {
        let home = tempfile::tempdir().unwrap();
        let version_dir = home.path().join(".octopus/Inst/Calamari/9.9.9");
        std::fs::create_dir_all(&version_dir).unwrap();
        std::fs::write(version_dir.join("Success.txt"), b"").unwrap();
        // A stand-in agent that prints its arguments.
        let agent = version_dir.join("calamari");
        std::fs::write(&agent, "#!/bin/sh\nprintf '[%s]' \"$@\"\n").unwrap();
        std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let line = Boot { instance: "Inst", version: "9.9.9", packages: vec!["a b.tar"] }.command();
        let out = std::process::Command::new("sh").arg("-c").arg(&line).env("HOME", home.path()).output().unwrap();
        let h = home.path().join(".octopus/Inst");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!(
                "[fleet-agent][--home={}][--calamari={}/Calamari/9.9.9/calamari][--][a b.tar]",
                h.display(),
                h.display()
            )
        );
        // Missing: the push starts, announcing the host's machine.
        let line = Boot { instance: "Inst", version: "1.0.0", packages: vec![] }.command();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .env("HOME", home.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("##calamari-fleet[need] "), "{out:?}");
        assert_eq!(out.status.code(), Some(SCRIPT_FAILED));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "calamari-fleet: the bundle did not arrive\n");
    }
}
