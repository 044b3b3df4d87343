//! The Python bootstrap (`bootstrap/Bootstrap.py`): standard library only. It loads the
//! variables file, defines the helpers and runs the script as `__main__`.

use std::path::{Path, PathBuf};

use super::workspace::StepDir;

/// The bootstrap, run as `python3 -u Bootstrap.py <variables file> <script> [params...]`.
pub const BOOTSTRAP: &str = include_str!("bootstrap/Bootstrap.py");

/// Writes the bootstrap into the step directory and returns its path.
pub fn write(step: &StepDir) -> crate::fs::Result<PathBuf> {
    step.write("Bootstrap.py", BOOTSTRAP.as_bytes())
}

/// The arguments after the interpreter.
pub fn arguments(
    bootstrap: &Path,
    variables_file: &Path,
    script: &Path,
    parameters: &[String],
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["-u".into(), bootstrap.into(), variables_file.into(), script.into()];
    args.extend(parameters.iter().map(Into::into));
    args
}
