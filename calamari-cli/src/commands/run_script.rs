//! `calamari run-script`.

use crate::cli::Context;

/// Options of `run-script`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, _ctx: &Context) -> calamari::Result<i32> {
    Err(calamari::Error::command("run-script is not implemented yet"))
}
