//! `calamari clean`.

use crate::cli::Context;

/// Options of `clean`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, _ctx: &Context) -> calamari::Result<i32> {
    Err(calamari::Error::command("clean is not implemented yet"))
}
