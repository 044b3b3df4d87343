//! `calamari install`: put this build (or a bundle) into `TentacleHome/Calamari/<version>/`,
//! `Success.txt` last.

use calamari::error::Outcome;
use std::path::PathBuf;

use calamari::self_install::{self, InstallOptions};

use crate::cli::Context;

/// Options of `install`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent's home directory (default: $TentacleHome); the install goes to HOME/Calamari/<version>.
    #[arg(long = "home", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Reinstall even when Success.txt says the version is complete.
    #[arg(long = "force")]
    force: bool,
    /// Install the version in this bundle (Calamari.<version>.tar.gz) instead of this build.
    #[arg(long = "bundle", value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// The bundle's expected SHA-256 (64 hex digits). Without it, FILE.sha256 is checked when present.
    #[arg(long = "sha256", value_name = "HEX", requires = "bundle")]
    sha256: Option<String>,
    /// How long to wait, in seconds, for another install of the same home to finish.
    #[arg(long = "lockTimeout", value_name = "SECONDS", default_value_t = 600)]
    lock_timeout: u64,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let home = self_install::resolve_home(args.home)?;
    let options = InstallOptions { force: args.force, lock_timeout: std::time::Duration::from_secs(args.lock_timeout) };
    match args.bundle {
        None => {
            let executable = self_install::CalamariExecutable::running()?;
            self_install::install_executable(&home, &executable, &options, &ctx.log)?;
        }
        Some(bundle) => {
            let sha256 = match args.sha256 {
                Some(hex) => Some(hex),
                None => sidecar_sha256(&bundle, ctx)?,
            };
            self_install::install_bundle_with(&home, &bundle, sha256.as_deref(), &options, &ctx.log)?;
        }
    }
    Ok(Outcome::Success)
}

/// The hash in `<bundle>.sha256` (`sha256sum` format), when that file exists.
fn sidecar_sha256(bundle: &std::path::Path, ctx: &Context) -> calamari::Result<Option<String>> {
    let mut sidecar = bundle.as_os_str().to_owned();
    sidecar.push(".sha256");
    let sidecar = PathBuf::from(sidecar);
    if !sidecar.is_file() {
        return Ok(None);
    }
    let text = calamari::fs::read_to_string(&sidecar)?;
    let hex = text.split_whitespace().next().unwrap_or_default().to_string();
    ctx.log.verbose(format!("Checking the bundle against {}", sidecar.display()));
    Ok(Some(hex))
}
