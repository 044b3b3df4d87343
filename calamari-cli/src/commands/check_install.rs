//! `calamari check-install`: the agent's health check. Exit 0 when
//! `HOME/Calamari/<version>/Success.txt` exists, else exit 3 with the agent's warning.

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{resolve_home, self_install_commands as commands_lib};

use crate::context::Context;

/// Options of `check-install`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent's home directory [default: $TentacleHome]
    #[arg(long = "home", value_name = "DIR")]
    home: Option<PathBuf>,
    /// The version that should be installed.
    #[arg(long = "version", value_name = "VERSION")]
    version: String,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let home = resolve_home(args.home, &ctx.environment)?;
    Ok(commands_lib::check(&home, &args.version, &ctx.log)?)
}
