//! `calamari substitute-in-files --path=DIR [--targetFiles=GLOBS]`: substitute variables
//! in the files under DIR matched by the globs (newline-separated; default: the
//! `Octopus.Action.SubstituteInFiles.TargetFiles` variable), as the deploy pipeline does.

use calamari::Outcome;
use std::path::PathBuf;

use calamari::substitute_in_files_command;

use crate::cli::Context;

/// Options of `substitute-in-files`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The directory the target globs are relative to.
    #[arg(long = "path", value_name = "DIR")]
    path: PathBuf,
    /// Newline-separated globs (`*`, `**`, `?`, `{a,b}`, `[...]`); default: the
    /// `Octopus.Action.SubstituteInFiles.TargetFiles` variable.
    #[arg(long = "targetFiles", value_name = "GLOBS")]
    target_files: Option<String>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    substitute_in_files_command(&args.path, args.target_files.as_deref(), &variables, &ctx.log)
}
