//! `calamari bundle`: write the pushable `Calamari.<version>.tar.gz` and its `.sha256`.

use std::path::PathBuf;

use calamari::error::Outcome;
use calamari::self_install;

use crate::cli::Context;

/// Options of `bundle`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory to write Calamari.<version>.tar.gz and Calamari.<version>.tar.gz.sha256 into.
    #[arg(long = "output", value_name = "DIR")]
    output: PathBuf,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let executable = self_install::CalamariExecutable::running()?;
    Ok(self_install::commands::bundle(&args.output, &executable, &ctx.log)?)
}
