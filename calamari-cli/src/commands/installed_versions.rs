//! `calamari installed-versions`.

use crate::cli::Context;

/// Options of `installed-versions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn exec(_args: Args, _ctx: &Context) -> calamari::Result<i32> {
    Err(calamari::Error::command("installed-versions is not implemented yet"))
}
