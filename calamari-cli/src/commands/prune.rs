//! `calamari prune`: delete all but the newest N complete installs, incomplete installs and
//! leftovers of interrupted runs; never the running one.

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{resolve_home, self_install_commands as commands_lib};

use crate::context::Context;

/// Options of `prune`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent's home directory [default: $TentacleHome]
    #[arg(long = "home", value_name = "DIR")]
    home: Option<PathBuf>,
    /// How many complete installs to keep (the newest by version).
    #[arg(long = "keep", value_name = "N")]
    keep: usize,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let home = resolve_home(args.home, &ctx.environment)?;
    Ok(commands_lib::prune_installs(&home, args.keep, &ctx.log)?)
}
