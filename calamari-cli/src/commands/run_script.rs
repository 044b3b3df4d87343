//! `calamari run-script`: run a bash, PowerShell or Python script (a file, or the inline
//! script from `Octopus.Action.Script.ScriptBody`) with the Calamari helpers. The exit code
//! is the script's own; `Octopus.Action.Script.ExitCode` is set as an output variable.

use calamari::Outcome;
use std::path::PathBuf;

use calamari::{RunScriptRequest, run_script};

use crate::context::Context;

/// Options of `run-script`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The script file (.sh, .ps1, .py). Without it, the script comes from
    /// Octopus.Action.Script.ScriptBody (+ .Syntax) or ScriptBody[<Syntax>].
    #[arg(long = "script", value_name = "FILE")]
    script: Option<PathBuf>,
    /// Parameters passed to the script (else Octopus.Action.Script.ScriptParameters).
    #[arg(long = "scriptParameters", value_name = "TEXT", allow_hyphen_values = true)]
    script_parameters: Option<String>,
    /// A package to extract (into ./staging) first; the script is looked for inside it.
    #[arg(long = "package", value_name = "FILE")]
    package: Option<PathBuf>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    if let Some(package) = &args.package {
        crate::context::check_package_option(package, ctx)?;
    }
    let mut variables = ctx.variables()?;
    let working_directory = ctx.environment.working_directory()?.to_path_buf();
    let request = RunScriptRequest {
        script: args.script,
        parameters: args.script_parameters,
        working_directory,
        package: args.package,
    };
    run_script(&request, &mut variables, &ctx.log)
}
