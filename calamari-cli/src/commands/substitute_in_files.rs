//! `calamari substitute-in-files --path=DIR [--targetFiles=GLOBS]`: substitute variables
//! in the files under DIR matched by the globs (newline-separated; default: the
//! `Octopus.Action.SubstituteInFiles.TargetFiles` variable), as the deploy pipeline does.

use calamari::error::{Outcome, UsageError};
use std::path::PathBuf;

use calamari::substitution;

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
    if !args.path.is_dir() {
        return Err(UsageError::DirectoryNotFound(args.path).into());
    }
    let targets: Vec<String> = match &args.target_files {
        Some(t) => t.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
        None => variables.get_paths(substitution::TARGET_FILES)?,
    };
    if targets.is_empty() {
        ctx.log.info("No substitution target files were given; nothing to do");
        return Ok(Outcome::Success);
    }
    let summary = substitution::substitute_in_files(&args.path, &targets, &variables, &ctx.log)?;
    ctx.log.verbose(format!(
        "Substituted variables in {} of {} matched file(s)",
        summary.substituted.len(),
        summary.files.len()
    ));
    Ok(Outcome::Success)
}
