//! `calamari bundle`: write the pushable `Calamari.<version>.tar.gz` and its `.sha256`.

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{CalamariExecutable, self_install_commands as commands_lib};

use crate::context::Context;

/// Options of `bundle`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory to write Calamari.<version>.tar.gz and Calamari.<version>.tar.gz.sha256 into.
    #[arg(long = "output", value_name = "DIR")]
    output: PathBuf,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let executable = CalamariExecutable::running()?;
    Ok(commands_lib::bundle(&args.output, &executable, &ctx.log)?)
}
