//! [`ScriptSyntax`]: the script languages we run, how file extensions and variables name
//! them, and which module builds each one's interpreter command.

use std::path::Path;
use std::process::Command;

use super::interpreter::Launch;
use super::{Error, bash, powershell, python};

/// A script language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptSyntax {
    /// `.sh`, run with bash.
    Bash,
    /// `.ps1`, run with `pwsh`.
    PowerShell,
    /// `.py`, run with `python3`.
    Python,
}

impl ScriptSyntax {
    /// The syntax named by a file's extension (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?;
        Self::preferred_order().iter().copied().find(|s| s.extension().eq_ignore_ascii_case(ext))
    }

    /// The extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            ScriptSyntax::Bash => "sh",
            ScriptSyntax::PowerShell => "ps1",
            ScriptSyntax::Python => "py",
        }
    }

    /// The order in which syntaxes are preferred on this platform (Linux: sh, py, ps1).
    pub fn preferred_order() -> &'static [ScriptSyntax] {
        &[ScriptSyntax::Bash, ScriptSyntax::Python, ScriptSyntax::PowerShell]
    }

    /// The name used by `Octopus.Action.Script.Syntax` and module languages.
    pub fn name(&self) -> &'static str {
        match self {
            ScriptSyntax::Bash => "Bash",
            ScriptSyntax::PowerShell => "PowerShell",
            ScriptSyntax::Python => "Python",
        }
    }

    /// Parses a syntax name (`Bash`, `PowerShell`, `Python`; any case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::preferred_order().iter().copied().find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The bytes of a script file of this syntax holding `text`: UTF-8, with a BOM for
    /// PowerShell, as the reference writes PowerShell files (pwsh reads them as UTF-8 either way).
    pub(crate) fn file_bytes(self, text: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(text.len() + 3);
        if self == ScriptSyntax::PowerShell {
            bytes.extend_from_slice(b"\xEF\xBB\xBF");
        }
        bytes.extend_from_slice(text.as_bytes());
        bytes
    }

    /// The program that runs scripts of this syntax, how messages name it, and how to
    /// install it.
    pub(crate) fn interpreter(self) -> Interpreter {
        match self {
            ScriptSyntax::Bash => Interpreter { program: bash::PROGRAM, description: "bash", install: "" },
            ScriptSyntax::PowerShell => Interpreter {
                program: powershell::PROGRAM,
                description: "PowerShell 7.2 or newer (pwsh)",
                install: powershell::INSTALL_HINT,
            },
            ScriptSyntax::Python => Interpreter {
                program: python::PROGRAM,
                description: "Python 3 (python3)",
                install: " Install Python 3 (Debian: apt-get install python3).",
            },
        }
    }

    /// The interpreter command for one run, built by the syntax's own module (which also
    /// writes its bootstrap and variables into the step directory).
    pub(super) fn command(self, launch: &Launch<'_>) -> Result<Command, Error> {
        match self {
            ScriptSyntax::Bash => bash::command(launch),
            ScriptSyntax::PowerShell => powershell::command(launch),
            ScriptSyntax::Python => python::command(launch),
        }
    }
}

/// The program a syntax runs with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interpreter {
    /// Looked up on the PATH.
    pub program: &'static str,
    /// How messages name it.
    pub description: &'static str,
    /// A sentence on how to install it (with a leading space), or empty.
    pub install: &'static str,
}
