//! `calamari installed-versions`: the complete installs of a home, newest first, one per line.

use calamari::error::Outcome;
use std::path::PathBuf;

use calamari::self_install;

use crate::cli::Context;

/// Options of `installed-versions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent's home directory (default: $TentacleHome).
    #[arg(long = "home", value_name = "DIR")]
    home: Option<PathBuf>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let home = self_install::resolve_home(args.home)?;
    let versions = self_install::installed_versions(&home)?;
    if versions.is_empty() {
        ctx.log.verbose(format!("No complete Calamari install in {}", self_install::calamari_dir(&home).display()));
    }
    for installed in versions {
        ctx.log.info(installed.version);
    }
    Ok(Outcome::Success)
}
