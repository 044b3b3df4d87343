//! `calamari substitute-in-files (--targetPathVariable=NAME | --path=DIR)
//! [--filesToTarget=GLOB... | --targetFiles=GLOBS]`: substitute variables in the files
//! under a directory that the globs match (default: the
//! `Octopus.Action.SubstituteInFiles.TargetFiles` variable), as the deploy pipeline does.
//! `--targetPathVariable` and `--filesToTarget` are the reference's inputs; `--path` and
//! `--targetFiles` are ours.

use std::path::PathBuf;

use calamari::{Outcome, TargetDirectory, substitute_in_files_command};

use crate::context::Context;

/// What `--help` says after the options.
pub(crate) const HELP: &str = "\
Without --filesToTarget or --targetFiles, the globs are those of the variable
Octopus.Action.SubstituteInFiles.TargetFiles (one per line). With
OctopusShouldFailDeploymentOnSubstitutionFails=True a template error fails the command
(exit 1) and no file is changed.";

/// Options of `substitute-in-files`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("directory").required(true).args(["target_path_variable", "path"]))]
pub(crate) struct Args {
    /// The variable whose raw value is the directory the globs are relative to.
    #[arg(long = "targetPathVariable", value_name = "NAME")]
    target_path_variable: Option<String>,
    /// The directory the globs are relative to.
    #[arg(long = "path", value_name = "DIR")]
    path: Option<PathBuf>,
    /// A glob (`*`, `**`, `?`, `{a,b}`, `[...]`) of files to substitute in; repeatable.
    #[arg(long = "filesToTarget", value_name = "GLOB", conflicts_with = "target_files")]
    files_to_target: Vec<String>,
    /// Newline-separated globs [default: the Octopus.Action.SubstituteInFiles.TargetFiles
    /// variable]
    #[arg(long = "targetFiles", value_name = "GLOBS")]
    target_files: Option<String>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    let directory = match (args.target_path_variable, args.path) {
        (Some(name), _) => TargetDirectory::Variable(name),
        (None, Some(path)) => TargetDirectory::Path(path),
        (None, None) => unreachable!("clap requires --targetPathVariable or --path"),
    };
    let targets = match (args.files_to_target, args.target_files) {
        (files, _) if !files.is_empty() => Some(files),
        (_, Some(lines)) => Some(lines.lines().map(str::to_string).collect()),
        (_, None) => None,
    };
    let working_directory = ctx.environment.working_directory()?;
    substitute_in_files_command(&directory, targets, working_directory, &variables, &ctx.log)?;
    Ok(Outcome::Success)
}
