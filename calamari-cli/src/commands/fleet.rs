//! `calamari fleet <command> [options] --host=DEST... | --hosts=FILE`: run a Calamari
//! command on many hosts over OpenSSH, pushing Calamari where it is missing.

use std::io::IsTerminal as _;

use calamari::{
    CalamariExecutable, FleetCommandArg, FleetFileKind, FleetOutput, Outcome, parse_fleet_arguments, run_fleet,
};

use crate::context::Context;

/// The fleet options, as `calamari fleet --help` shows them.
const FLEET_HELP: &str = "\
Fleet options (anywhere after the command):
  --host=DEST             a destination ssh accepts; repeatable
  --hosts=FILE            one destination per line, # comments
  --sshConfig=FILE        ssh -F FILE
  --instance=NAME         remote TentacleHome is $HOME/.octopus/NAME (default OctopusServer)
  --parallel=N            hosts at once (default 10)
  --batch=N|P%            rolling windows; the next starts only when the previous succeeded
  --maxFailPercentage=P   stop starting new hosts once more than P% failed (default 0)
  --report=FILE           JSON report: host, exitCode, pushedCalamari, seconds, outputVariables
  --serviceMessages       pass the agent protocol through, each line prefixed with the host
  --bundle=FILE           push this Calamari bundle instead of this build (another platform)
  --variablesPasswordFile=FILE|-   read the password here; each host gets it over stdin
  --noDelta               send whole packages, never a delta against an earlier cached version

<COMMAND> is any calamari command (deploy-package, run-script, clean, rollback, prune...) or
`check` (installed versions, this build's completeness, free disk space). Files named by
--package, --variables, --sensitiveVariables and --script are uploaded and the options
rewritten to the remote paths; packages go to the remote package cache and are not sent
again when it holds the same bytes; with an earlier version cached, a delta against it is
sent when it is under 70% of the package, and rebuilt remotely. Exit 0 when every host succeeded, else 1.";

/// Options of `fleet`.
#[derive(Debug, clap::Args)]
#[command(after_help = FLEET_HELP)]
pub(crate) struct Args {
    /// The command to run on every host, its options, and the fleet options below.
    #[arg(value_name = "COMMAND [OPTIONS]", trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    args: Vec<String>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let mut request = parse_fleet_arguments(&args.args, ctx.environment.working_directory()?)?;
    // Global options given before `fleet` apply too.
    let g = &ctx.globals;
    for path in &g.variables {
        request.command_args.push(FleetCommandArg::File {
            option: "variables",
            path: path.clone(),
            kind: FleetFileKind::Variables,
        });
    }
    request.password_inline = request.password_inline.or_else(|| g.variables_password.clone());
    request.password_file = request.password_file.or_else(|| g.variables_password_file.clone());
    let executable = CalamariExecutable::running().ok();
    let terminal = std::io::stdout().is_terminal() && ctx.environment.get("NO_COLOR").is_none_or(str::is_empty);
    let output = FleetOutput::new(std::io::stdout(), std::io::stderr(), terminal);
    Ok(run_fleet(&request, executable.as_ref(), &output)?.0)
}
