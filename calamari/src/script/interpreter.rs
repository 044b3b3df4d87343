//! What every syntax's module gets to build its interpreter command ([`Launch`]), and
//! finding the interpreter on the PATH before anything of the step is written.

use std::path::{Path, PathBuf};

use super::modules::ScriptModule;
use super::workspace::StepDir;
use super::{Error, ScriptSyntax};
use crate::{Log, VariableDictionary};

/// One script run, as the syntax modules see it.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    /// The interpreter, found on the PATH ([`find_interpreter`]).
    pub interpreter: &'a Path,
    /// The user's script (absolute).
    pub script: &'a Path,
    /// The parameters, trimmed; `None` when there are none.
    pub parameters: Option<&'a str>,
    /// The variables the bootstrap exposes to the script.
    pub variables: &'a VariableDictionary,
    /// The private directory for the bootstrap and variables file.
    pub step: &'a StepDir,
    /// The script modules written beside the script.
    pub modules: &'a [ScriptModule],
    /// Where the run's own messages go.
    pub log: &'a Log,
}

/// The interpreter of `syntax` from the PATH, or [`Error::InterpreterMissing`] naming it
/// and how to install it.
///
/// # Errors
/// When no executable interpreter is on the PATH.
pub(crate) fn find_interpreter(syntax: ScriptSyntax, script: &Path) -> Result<PathBuf, Error> {
    let interpreter = syntax.interpreter();
    find_program(interpreter.program).ok_or_else(|| Error::InterpreterMissing {
        program: interpreter.program,
        description: interpreter.description,
        install: interpreter.install,
        syntax,
        script: script.to_path_buf(),
    })
}

/// The first `name` on the PATH that is an executable file.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| crate::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}
