//! `calamari fleet <command> [options] --host=DEST... | --hosts=FILE`: run a Calamari
//! command on many hosts over OpenSSH, pushing Calamari where it is missing; and
//! `calamari fleet-agent`, its remote side (hidden: the fleet starts it on each host).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use calamari::{
    CalamariExecutable, FleetAgentRequest, FleetCommandArg, FleetFileKind, FleetOutput, Outcome, parse_fleet_arguments,
    run_fleet, run_fleet_agent,
};

use crate::context::Context;

/// The fleet options, as `calamari fleet --help` shows them.
const FLEET_HELP: &str = "\
Fleet options (anywhere after the command):
  --host=DEST             a destination ssh accepts; repeatable
  --hosts=FILE            one destination per line, # comments
  --retryFailed=REPORT    the hosts that failed or did not start in an earlier --report
                          (with --host/--hosts: only those of them)
  --sshConfig=FILE        ssh -F FILE
  --instance=NAME         remote TentacleHome is $HOME/.octopus/NAME (default OctopusServer)
  --parallel=N            hosts at once (default 10)
  --batch=N|P%            rolling windows; the next starts only when the previous succeeded
  --batchWait=SECONDS     with --batch: pause this long between windows
  --maxFailPercentage=P   stop starting new hosts once more than P% failed (default 0)
  --report=FILE           JSON report: host, result, exitCode, pushedCalamari, seconds,
                          outputVariables, packagesSent
  --events=FILE|-         one JSON object per line as things happen (host connected, pushed,
                          package sent, uploaded, output line counts, finished); with -, the
                          events go to stdout and everything else to stderr
  --serviceMessages       pass the agent protocol through, each line prefixed with the host
  --bundle=FILE           push this Calamari bundle instead of this build (another platform)
  --variablesPasswordFile=FILE|-   read the password here; each host gets it over stdin
  --noDelta               send whole packages, never a delta against an earlier cached version

<COMMAND> is any calamari command (deploy-package, run-script, clean, rollback, prune...) or
`check` (installed versions, this build's completeness, free disk space). Files named by
--package, --variables, --sensitiveVariables and --script are uploaded and the options
rewritten to the remote paths; packages go to the remote package cache and are not sent
again when it holds the same bytes; with an earlier version cached, a delta against it is
sent when it is under 70% of the package, and rebuilt remotely. One ssh connection per host.
Exit 0 when every host succeeded, else 1.";

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
    let colour = ctx.environment.get("NO_COLOR").is_none_or(str::is_empty);
    let output = if request.events.as_deref() == Some(Path::new("-")) {
        // Standard output is for the events alone; a person's lines go to stderr.
        FleetOutput::new(std::io::stderr(), std::io::stderr(), std::io::stderr().is_terminal() && colour)
            .with_events(std::io::stdout())
    } else {
        FleetOutput::new(std::io::stdout(), std::io::stderr(), std::io::stdout().is_terminal() && colour)
    };
    Ok(run_fleet(&request, executable.as_ref(), &output)?.0)
}

/// Options of `fleet-agent`, as the fleet's boot script passes them.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// The remote TentacleHome.
    #[arg(long = "home", value_name = "DIR")]
    home: PathBuf,
    /// The installed Calamari that runs the command.
    #[arg(long = "calamari", value_name = "PATH")]
    calamari: PathBuf,
    /// The file names of the packages the command names.
    #[arg(value_name = "PACKAGE", last = true)]
    packages: Vec<String>,
}

pub(crate) fn exec_agent(args: AgentArgs) -> Outcome {
    let request = FleetAgentRequest { home: args.home, calamari: args.calamari, packages: args.packages };
    let code =
        run_fleet_agent(&request, &mut std::io::stdin().lock(), &mut std::io::stdout().lock(), &mut std::io::stderr());
    Outcome::ScriptExited(code)
}
