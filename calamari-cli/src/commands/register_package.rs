//! `calamari register-package`: record that a task uses a cached package, and lock it for
//! that task, in the package retention journal (reference `RegisterPackageUseCommand`).

use std::path::PathBuf;

use calamari::Outcome;
use calamari::{RegisterPackageRequest, register_package};

use crate::context::Context;

/// Options of `register-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package id.
    #[arg(long = "packageId", value_name = "ID")]
    package_id: Option<String>,
    /// Version format: Semver, Maven, Docker, Octopus, Lexicographic [default: Semver]
    #[arg(long = "packageVersionFormat", value_name = "FORMAT")]
    package_version_format: Option<String>,
    /// The package version.
    #[arg(long = "packageVersion", value_name = "VERSION")]
    package_version: Option<String>,
    /// The package file in the cache.
    #[arg(long = "packagePath", value_name = "PATH")]
    package_path: Option<PathBuf>,
    /// The task that uses the package.
    #[arg(long = "taskId", value_name = "ID")]
    task_id: Option<String>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    let request = RegisterPackageRequest {
        package_id: args.package_id,
        package_version_format: args.package_version_format,
        package_version: args.package_version,
        package_path: args.package_path,
        task_id: args.task_id,
    };
    register_package(&request, &variables, &ctx.log)
}
