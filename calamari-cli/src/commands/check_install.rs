//! `calamari check-install`: the agent's health check. Exit 0 when
//! `HOME/Calamari/<version>/Success.txt` exists, else exit 3 with the agent's warning.

use std::path::PathBuf;

use calamari::self_install::{self, InstallState};

use crate::cli::Context;

/// Exit code when the version is missing or incomplete.
const EXIT_NOT_INSTALLED: i32 = 3;

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

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<i32> {
    let home = self_install::resolve_home(args.home)?;
    self_install::validate_version(&args.version)?;
    let dir = self_install::version_dir(&home, &args.version);
    match self_install::check_install(&home, &args.version) {
        InstallState::Complete => {
            ctx.log.info(format!("Calamari {} is installed at {}", args.version, dir.display()));
            Ok(0)
        }
        InstallState::Missing => {
            ctx.log
                .warn(format!("Not running latest version of Calamari. Directory does not exist: {}", dir.display()));
            Ok(EXIT_NOT_INSTALLED)
        }
        InstallState::Incomplete => {
            ctx.log.warn(format!(
                "Not running latest version of Calamari. Directory is incomplete (no Success.txt): {}",
                dir.display()
            ));
            Ok(EXIT_NOT_INSTALLED)
        }
    }
}
