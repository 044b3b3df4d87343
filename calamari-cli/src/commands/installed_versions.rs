//! `calamari installed-versions`: the complete installs of a home, newest first, one per line.

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{resolve_home, self_install_commands as commands_lib};

use crate::context::Context;

/// Options of `installed-versions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent's home directory [default: $TentacleHome]
    #[arg(long = "home", value_name = "DIR")]
    home: Option<PathBuf>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let home = resolve_home(args.home, &ctx.environment)?;
    Ok(commands_lib::list(&home, &ctx.log)?)
}
