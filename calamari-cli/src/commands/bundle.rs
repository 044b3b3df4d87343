//! `calamari bundle`: write the pushable `Calamari.<version>.tar.gz` and its `.sha256`.

use calamari::error::Outcome;
use std::path::PathBuf;

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
    let path = self_install::write_bundle(&args.output, &self_install::CalamariExecutable::running()?)?;
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".sha256");
    let sidecar = PathBuf::from(sidecar);
    let line = calamari::fs::read_to_string(&sidecar)?;
    ctx.log.info(format!("Wrote {}", path.display()));
    ctx.log.info(format!("SHA-256 {} (in {})", line.split_whitespace().next().unwrap_or_default(), sidecar.display()));
    Ok(Outcome::Success)
}
