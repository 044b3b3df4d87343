//! `calamari extract-package`: extract a package, to `--destination` or to the staging
//! directory the variables choose, and report where as output variables.

use std::path::PathBuf;

use calamari::package::{self, ExtractOptions};
use calamari::variables::names;

use crate::cli::Context;

/// Options of `extract-package`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The package file.
    #[arg(long = "package", value_name = "FILE")]
    package: PathBuf,
    /// Extract here (must not exist) instead of the staging directory.
    #[arg(long = "destination", value_name = "DIR")]
    destination: Option<PathBuf>,
    /// Expected SHA-1 of the package; a mismatch fails before anything is written.
    #[arg(long = "packageHash", value_name = "SHA1")]
    package_hash: Option<String>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<i32> {
    let variables = ctx.variables()?;
    let cwd = std::env::current_dir().map_err(|e| calamari::Error::command(format!("No working directory: {e}")))?;
    let package_path = cwd.join(&args.package);
    if !package_path.is_file() {
        return Err(calamari::Error::command(format!("Could not find package file: {}", package_path.display())));
    }
    if let Some(hash) = args.package_hash.as_deref().filter(|h| !h.trim().is_empty()) {
        package::hash::verify_sha1(&package_path, hash)?;
    }
    let (directory, file_count) = match args.destination {
        Some(destination) => {
            let destination = cwd.join(destination);
            let options = ExtractOptions::from_variables(&variables)?;
            ctx.log.verbose(format!("Extracting package to: {}", destination.display()));
            let summary = package::extract(&package_path, &destination, &options, &ctx.log)?;
            ctx.log.verbose(format!("Extracted {} files", summary.file_count));
            (destination, summary.file_count)
        }
        None => {
            let staged = package::extract_to_staging(&package_path, &variables, &ctx.log)?;
            (staged.directory, staged.file_count)
        }
    };
    let directory = directory.to_string_lossy();
    ctx.log.output_variable(names::INSTALLATION_DIRECTORY_PATH, &directory, false);
    ctx.log.output_variable(names::PACKAGE_INSTALLATION_DIRECTORY_PATH, &directory, false);
    ctx.log.output_variable(names::PACKAGE_EXTRACTED_FILE_COUNT, &file_count.to_string(), false);
    Ok(0)
}
