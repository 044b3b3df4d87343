//! `calamari installed-versions`: the complete installs of a home, newest first, one per line.

use std::path::PathBuf;

use calamari::error::Outcome;
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
    let home = self_install::resolve_home(args.home, &ctx.environment)?;
    Ok(self_install::commands::list(&home, &ctx.log)?)
}
