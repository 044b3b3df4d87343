//! `calamari prune`: delete all but the newest N complete installs, incomplete installs and
//! leftovers of interrupted runs; never the running one.

use calamari::error::Outcome;
use std::path::PathBuf;

use calamari::self_install;

use crate::cli::Context;

/// Options of `prune`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent's home directory (default: $TentacleHome).
    #[arg(long = "home", value_name = "DIR")]
    home: Option<PathBuf>,
    /// How many complete installs to keep (the newest by version).
    #[arg(long = "keep", value_name = "N")]
    keep: usize,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let home = self_install::resolve_home(args.home)?;
    let report = self_install::prune(&home, args.keep, &ctx.log)?;
    ctx.log.info(format!(
        "Kept {}; removed {} director{}",
        if report.kept.is_empty() { "none".to_string() } else { report.kept.join(", ") },
        report.removed.len(),
        if report.removed.len() == 1 { "y" } else { "ies" }
    ));
    Ok(Outcome::Success)
}
