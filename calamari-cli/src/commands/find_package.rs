//! `calamari find-package`: look for a package (or its nearest earlier versions) in the
//! agent's package cache, `$TentacleHome/Files`, and report it with `foundPackage`
//! service messages.

use calamari::error::{Outcome, UsageError};

use calamari::env_vars::TENTACLE_HOME;
use calamari::package::Version;
use calamari::package::find::find_and_report;

use crate::cli::Context;

/// Options of `find-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package id.
    #[arg(long = "packageId", value_name = "ID")]
    package_id: Option<String>,
    /// The package version.
    #[arg(long = "packageVersion", value_name = "VERSION")]
    package_version: Option<String>,
    /// The package's SHA-1.
    #[arg(long = "packageHash", value_name = "SHA1")]
    package_hash: Option<String>,
    /// Version format: Semver (default), Maven, Docker, Octopus, Lexicographic.
    #[arg(long = "packageVersionFormat", value_name = "FORMAT", default_value = "Semver")]
    package_version_format: String,
    /// Only report an exact match, never earlier versions.
    #[arg(long = "exactMatch", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    exact_match: Option<String>,
}

fn required(value: Option<String>, option: &'static str, message: &str) -> calamari::Result<String> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| UsageError::BadOption { option, message: message.to_string() }.into())
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let _variables = ctx.variables()?;
    let id =
        required(args.package_id, "--packageId", "No package ID was specified. Please pass --packageId YourPackage")?;
    let raw_version = required(
        args.package_version,
        "--packageVersion",
        "No package version was specified. Please pass --packageVersion 1.0.0.0",
    )?;
    let hash = required(
        args.package_hash,
        "--packageHash",
        "No package hash was specified. Please pass --packageHash YourPackageHash",
    )?;
    let exact = match args.exact_match.as_deref().map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(UsageError::InvalidOption {
                option: "--exactMatch",
                value: v.to_string(),
                expected: "true or false",
            }
            .into());
        }
    };
    let format = args.package_version_format;
    let version = Version::parse(&raw_version).ok_or_else(|| UsageError::BadOption {
        option: "--packageVersion",
        message: format!(
            "Package version '{raw_version}' is not a valid {format} version string. Please pass --packageVersionFormat with a different version type."
        ),
    })?;
    let home = ctx.environment.tentacle_home().ok_or(UsageError::EnvironmentVariableNotSet(TENTACLE_HOME))?;
    let root = home.join("Files");
    find_and_report(&root, &id, &version, &hash, exact, &ctx.log)?;
    Ok(Outcome::Success)
}
