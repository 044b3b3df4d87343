//! `calamari substitute-variables-in-files --filesToTarget=GLOBS`: substitute variables in
//! the files the globs (separated by newlines or `;`) match, relative to the current
//! deployment's directory (`OctopusOriginalPackageDirectoryPath`, else the working
//! directory), as the reference's `SubstituteVariablesInFilesCommand` does.

use calamari::{Outcome, substitute_variables_in_files};

use crate::context::Context;

/// What `--help` says after the options.
pub(crate) const HELP: &str = "\
The globs are relative to the directory in the variable OctopusOriginalPackageDirectoryPath,
else to the working directory. With OctopusShouldFailDeploymentOnSubstitutionFails=True a
template error fails the command (exit 1) and no file is changed.";

/// Options of `substitute-variables-in-files`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Globs of the files to substitute in, separated by newlines or `;`.
    #[arg(long = "filesToTarget", value_name = "GLOBS")]
    files_to_target: String,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    let working_directory = ctx.environment.working_directory()?;
    substitute_variables_in_files(&args.files_to_target, working_directory, &variables, &ctx.log)?;
    Ok(Outcome::Success)
}
