//! `calamari structured-config-variables (--targetPathVariable=NAME | --path=DIR)`: replace
//! structured configuration variables (JSON, YAML, XML, properties) in the files that
//! `Octopus.Action.Package.JsonConfigurationVariablesTargets` names under the directory, as
//! the reference's `StructuredConfigVariablesCommand` does. `--path` is ours.

use std::path::PathBuf;

use calamari::{Outcome, TargetDirectory, structured_config_variables};

use crate::context::Context;

/// What `--help` says after the options.
pub(crate) const HELP: &str = "\
The files: the globs in the variable Octopus.Action.Package.JsonConfigurationVariablesTargets
(one per line), relative to the directory. Each is read as JSON, YAML, XML or Java properties
(by its extension, JSON first) and every variable whose name is a path into it (Key:Sub,
an XPath) replaces the value there. A file that parses as none of them fails the command
(exit 1) and no file is changed.";

/// Options of `structured-config-variables`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("directory").required(true).args(["target_path_variable", "path"]))]
pub(crate) struct Args {
    /// The variable whose raw value is the directory the target globs are relative to.
    #[arg(long = "targetPathVariable", value_name = "NAME")]
    target_path_variable: Option<String>,
    /// The directory the target globs are relative to.
    #[arg(long = "path", value_name = "DIR")]
    path: Option<PathBuf>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    let directory = match (args.target_path_variable, args.path) {
        (Some(name), _) => TargetDirectory::Variable(name),
        (None, Some(path)) => TargetDirectory::Path(path),
        (None, None) => unreachable!("clap requires --targetPathVariable or --path"),
    };
    let working_directory = ctx.environment.working_directory()?;
    structured_config_variables(&directory, working_directory, &variables, &ctx.log)?;
    Ok(Outcome::Success)
}
