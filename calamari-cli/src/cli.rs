//! Argument parsing (clap) and the one place that maps results to exit codes.
//!
//! The contract an agent relies on: `calamari <command> [options]`, options spelled as the
//! reference spells them (`--camelCase`), both `--name=value` and `--name value`. An
//! unknown command or option is a user error (exit 1). `calamari help [<command>]` is
//! `--help`. Exit codes: the table is [`calamari::exit_code`]'s (the library decides them);
//! [`EXIT_CODES`] is its wording for `--help`. `NO_COLOR` (any non-empty value) turns colour off at a terminal.

use std::ffi::OsString;

use calamari::AgentEnvironment;
use calamari::Log;
use calamari::{ErrorKind, exit_code};
use clap::{Parser, Subcommand};

use crate::commands;
use crate::context::{Context, GlobalArgs};

/// The exit codes, as `calamari --help` lists them.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0        success
  1        a user error: a bad option, input file, password or variable, a failed step
  3        check-install: the version is missing or incomplete
  100      an unexpected failure (a bug, an I/O error nobody could foresee)
  101      a recursive variable definition
  128+N    stopped by signal N while a script ran or a package was extracted
           (130 for Ctrl-C / SIGINT, 143 for SIGTERM); nothing partial is left behind;
           also while waiting for the script isolation mutex
  N        run-script: the script's own exit code

Colour is used at a terminal unless NO_COLOR is set (to any non-empty value).";

/// Where a package lands without `--destination`, for the help of the commands that
/// extract one.
pub(crate) const STAGING_HELP: &str = "\
Where the package lands: the staging directory
  <root>/[<tenant>/]<environment>/<package id>/<version>[_N]
where <root> is the variable Octopus.Tentacle.Agent.ApplicationDirectoryPath, else
$HOME/Applications; <tenant> and <environment> come from Octopus.Deployment.Tenant.Name and
Octopus.Environment.Name, and _1, _2... are added when the version's directory exists.";

/// Calamari for Rust: the deployment executor an agent runs for every step.
#[derive(Debug, Parser)]
#[command(name = "calamari", version = calamari::VERSION, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) globals: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the version of this Calamari.
    Version,
    /// Install this build (or a bundle) into TentacleHome/Calamari/<version>, Success.txt last.
    Install(commands::install::Args),
    /// Write the pushable bundle Calamari.<version>.tar.gz and its SHA-256.
    Bundle(commands::bundle::Args),
    /// Exit 0 when TentacleHome/Calamari/<version>/Success.txt exists, else 3 with a warning.
    CheckInstall(commands::check_install::Args),
    /// List the complete installs, newest first.
    InstalledVersions(commands::installed_versions::Args),
    /// Delete all but the newest N complete installs, and incomplete ones.
    Prune(commands::prune::Args),
    /// Extract a package to a directory (the staging directory by default).
    #[command(after_help = STAGING_HELP)]
    ExtractPackage(commands::extract_package::Args),
    /// Find a package (or its nearest earlier versions) in the package cache.
    FindPackage(commands::find_package::Args),
    /// Find a package in the package cache and register its use by a task, in one step.
    FindAndRegisterPackage(commands::find_package::AndRegisterArgs),
    /// Evaluate an Octostache template against the variables.
    Evaluate(commands::evaluate::Args),
    /// Substitute #{...} variables in files under a directory.
    #[command(after_help = commands::substitute_in_files::HELP)]
    SubstituteInFiles(commands::substitute_in_files::Args),
    /// Substitute #{...} variables in files of the current deployment's directory.
    #[command(after_help = commands::substitute_variables_in_files::HELP)]
    SubstituteVariablesInFiles(commands::substitute_variables_in_files::Args),
    /// Replace structured configuration variables in JSON, YAML, XML and properties files.
    #[command(after_help = commands::structured_config_variables::HELP)]
    StructuredConfigVariables(commands::structured_config_variables::Args),
    /// Run a bash, PowerShell or Python script with the Calamari helpers.
    RunScript(commands::run_script::Args),
    /// Deploy a package: extract, scripts, substitution, configuration, journal.
    #[command(after_help = STAGING_HELP)]
    DeployPackage(commands::deploy_package::Args),
    /// Apply the retention policy to deployments in the journal.
    Clean(commands::clean::Args),
    /// Copy the current deployment's package to Octopus.Action.Package.TransferPath.
    TransferPackage(commands::transfer_package::Args),
    /// Point a set's current link (Calamari.Release.CurrentLink) back at an earlier release.
    Rollback(commands::rollback::Args),
    /// Operator locks: hold a retention policy set so nobody deploys to it or rolls it back.
    Lock(commands::lock::Args),
    /// A retention policy set's releases, newest first; mark one bad or good again.
    Releases(commands::releases::Args),
    /// Rebuild a package from a basis package and an Octodiff delta into the package cache.
    ApplyDelta(commands::apply_delta::Args),
    /// Write Octodiff signatures and deltas.
    Delta(commands::delta::Args),
    /// Record that a task uses a cached package, and lock it for the task.
    RegisterPackage(commands::register_package::Args),
    /// Release a task's package locks, and expire stale ones.
    ReleasePackageLock(commands::release_package_lock::Args),
    /// Apply the machine package cache retention strategy to the package cache.
    CleanPackages(commands::clean_packages::Args),
    /// Download a package from a feed into the package cache, TentacleHome/Files/<feedId>.
    DownloadPackage(commands::download_package::Args),
    /// Download a package into the package cache and register its use by a task, in one step.
    DownloadAndRegisterPackage(commands::download_package::AndRegisterArgs),
    /// Run a command on many hosts over OpenSSH, pushing Calamari where it is missing.
    Fleet(commands::fleet::Args),
    /// The remote side of `fleet` (started on each host by the fleet itself).
    #[command(hide = true)]
    FleetAgent(commands::fleet::AgentArgs),
}

/// Parses `args`, runs the command and returns the process exit code.
pub(crate) fn run(args: Vec<OsString>) -> i32 {
    let parse = |args: Vec<OsString>| {
        <Cli as clap::CommandFactory>::command()
            .try_get_matches_from(args)
            .and_then(|matches| Ok((<Cli as clap::FromArgMatches>::from_arg_matches(&matches)?, matches)))
    };
    // Our own spelling parses as it is; another of the reference's (`-packageId=Blah`,
    // `/name:value`, any case) is rewritten and parsed again, so only those pay for it.
    let parsed = match parse(args.clone()) {
        Err(e) if !matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            parse(crate::option_spelling::normalise(args, &<Cli as clap::CommandFactory>::command()))
        }
        other => other,
    };
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => ErrorKind::User.exit_code(),
            };
            let _ = e.print();
            return code;
        }
    };
    crate::argv_scrub::scrub_passwords();
    let log = Log::stdio();
    let environment = AgentEnvironment::from_process();
    if environment.get("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        log.set_colour(false);
    }
    let ctx = Context { log, globals: cli.globals, environment };
    // Script isolation: the lock is held until the command has finished.
    let isolation = calamari::IsolationRequest {
        level: ctx.globals.script_isolation_level.clone(),
        mutex_name: ctx.globals.script_isolation_mutex_name.clone(),
        timeout: ctx.globals.script_isolation_timeout.clone(),
        command: matches.subcommand_name().unwrap_or_default().to_string(),
    };
    let isolation_guard = match calamari::enforce_isolation(&isolation, &ctx.environment, &ctx.log) {
        Ok(guard) => guard,
        Err(e) => {
            let result = Err(calamari::Error::from(e));
            if let Err(e) = &result {
                ctx.log.error(e.chain());
            }
            ctx.log.flush();
            return exit_code(&result);
        }
    };
    let result = match cli.command {
        Command::Version => {
            ctx.log.info(calamari::VERSION);
            Ok(calamari::Outcome::Success)
        }
        Command::Install(args) => commands::install::exec(args, &ctx),
        Command::Bundle(args) => commands::bundle::exec(args, &ctx),
        Command::CheckInstall(args) => commands::check_install::exec(args, &ctx),
        Command::InstalledVersions(args) => commands::installed_versions::exec(args, &ctx),
        Command::Prune(args) => commands::prune::exec(args, &ctx),
        Command::ExtractPackage(args) => commands::extract_package::exec(args, &ctx),
        Command::FindPackage(args) => commands::find_package::exec(args, &ctx),
        Command::FindAndRegisterPackage(args) => commands::find_package::exec_and_register(args, &ctx),
        Command::Evaluate(args) => commands::evaluate::exec(args, &ctx),
        Command::SubstituteInFiles(args) => commands::substitute_in_files::exec(args, &ctx),
        Command::SubstituteVariablesInFiles(args) => commands::substitute_variables_in_files::exec(args, &ctx),
        Command::StructuredConfigVariables(args) => commands::structured_config_variables::exec(args, &ctx),
        Command::RunScript(args) => commands::run_script::exec(args, &ctx),
        Command::DeployPackage(args) => commands::deploy_package::exec(args, &ctx),
        Command::Clean(args) => commands::clean::exec(args, &ctx),
        Command::TransferPackage(args) => commands::transfer_package::exec(args, &ctx),
        Command::Rollback(args) => commands::rollback::exec(args, &ctx),
        Command::Lock(args) => commands::lock::exec(args, &ctx),
        Command::Releases(args) => commands::releases::exec(args, &ctx),
        Command::ApplyDelta(args) => commands::apply_delta::exec(args, &ctx),
        Command::Delta(args) => commands::delta::exec(args, &ctx),
        Command::RegisterPackage(args) => commands::register_package::exec(args, &ctx),
        Command::ReleasePackageLock(args) => commands::release_package_lock::exec(args, &ctx),
        Command::CleanPackages(args) => commands::clean_packages::exec(args, &ctx),
        Command::DownloadPackage(args) => commands::download_package::exec(args, &ctx),
        Command::DownloadAndRegisterPackage(args) => commands::download_package::exec_and_register(args, &ctx),
        Command::Fleet(args) => commands::fleet::exec(args, &ctx),
        Command::FleetAgent(args) => Ok(commands::fleet::exec_agent(args)),
    };
    drop(isolation_guard);
    if let Err(e) = &result {
        ctx.log.error(e.chain());
    }
    ctx.log.flush();
    exit_code(&result)
}
