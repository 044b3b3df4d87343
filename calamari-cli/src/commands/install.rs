//! `calamari install`: put this build (or a bundle) into `TentacleHome/Calamari/<version>/`,
//! `Success.txt` last.

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{CalamariExecutable, InstallRequest, resolve_home, self_install_commands as commands_lib};

use crate::context::Context;

/// Options of `install`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent's home directory; the install goes to DIR/Calamari/<version> [default: $TentacleHome]
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
    /// After installing, keep this many other complete versions (the newest) and remove the
    /// rest, never one that a process is running.
    #[arg(long = "keep", value_name = "N", default_value_t = calamari::DEFAULT_KEEP_OTHERS)]
    keep: usize,
    /// Keep every older version (no pruning after the install).
    #[arg(long = "noPrune", conflicts_with = "keep")]
    no_prune: bool,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let request = InstallRequest {
        home: resolve_home(args.home, &ctx.environment)?,
        bundle: args.bundle,
        sha256: args.sha256,
        force: args.force,
        lock_timeout: std::time::Duration::from_secs(args.lock_timeout),
        keep_others: (!args.no_prune).then_some(args.keep),
    };
    // This build installs itself only when no bundle is given.
    let executable = match request.bundle {
        None => Some(CalamariExecutable::running()?),
        Some(_) => None,
    };
    Ok(commands_lib::install(&request, executable.as_ref(), &ctx.log)?)
}
