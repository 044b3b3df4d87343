//! `calamari check-install`: the agent's health check. Exit 0 when
//! `HOME/Calamari/<version>/Success.txt` exists, else exit 3 with the agent's warning.

use calamari::error::Outcome;
use std::path::PathBuf;

use calamari::self_install::{self, InstallState};

use crate::cli::Context;

/// Options of `check-install`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent's home directory (default: $TentacleHome).
    #[arg(long = "home", value_name = "DIR")]
    home: Option<PathBuf>,
    /// The version that should be installed.
    #[arg(long = "version", value_name = "VERSION")]
    version: String,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let home = self_install::resolve_home(args.home)?;
    self_install::validate_version(&args.version)?;
    let dir = self_install::version_dir(&home, &args.version);
    match self_install::check_install(&home, &args.version) {
        InstallState::Complete => {
            ctx.log.info(format!("Calamari {} is installed at {}", args.version, dir.display()));
            Ok(Outcome::Success)
        }
        InstallState::Missing => {
            ctx.log
                .warn(format!("Not running latest version of Calamari. Directory does not exist: {}", dir.display()));
            Ok(Outcome::OutOfDate)
        }
        InstallState::Incomplete => {
            ctx.log.warn(format!(
                "Not running latest version of Calamari. Directory is incomplete (no Success.txt): {}",
                dir.display()
            ));
            Ok(Outcome::OutOfDate)
        }
    }
}
