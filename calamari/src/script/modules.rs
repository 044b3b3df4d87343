//! Script modules (`Octopus.Script.Module[Name]`): written beside the script for the run,
//! removed afterwards ([`RemoveOnDrop`]).

use std::path::{Path, PathBuf};

use super::{Error, ScriptSyntax, variable_names};
use crate::VariableDictionary;

/// A script module written for one run: the name from `Octopus.Script.Module[Name]` and the
/// file written for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptModule {
    /// The module's name as the variable gives it.
    pub name: String,
    /// The file written beside the script.
    pub path: PathBuf,
}

/// Writes the script modules of `syntax` (`Octopus.Script.Module[Name]` whose
/// `Octopus.Script.Module.Language[Name]`, default PowerShell, matches) into `dir`: bash
/// `<Name>.sh` (scripts `source` it), Python `<Name>.py` (`import`), PowerShell
/// `Library_<Name>_<ticks>.psm1` (imported by the bootstrap). File names keep only
/// `[A-Za-z0-9_-]` of the name. Returns the modules written; the caller removes them.
///
/// # Errors
/// When a value cannot be evaluated or a file cannot be written.
pub(crate) fn write_script_modules(
    dir: &Path,
    syntax: ScriptSyntax,
    variables: &VariableDictionary,
) -> Result<Vec<ScriptModule>, Error> {
    let mut written = Vec::new();
    let names: Vec<String> = variables.names().map(str::to_string).collect();
    for var in names {
        let Some(module) =
            strip_prefix_ignore_case(&var, variable_names::MODULE_PREFIX).and_then(|r| r.strip_suffix(']'))
        else {
            continue;
        };
        let language_var = format!("{}{module}]", variable_names::MODULE_LANGUAGE_PREFIX);
        let language = variables
            .get(&language_var)?
            .filter(|l| !l.trim().is_empty())
            .map(|l| ScriptSyntax::from_name(&l))
            .unwrap_or(Some(ScriptSyntax::PowerShell));
        if language != Some(syntax) {
            continue;
        }
        let clean: String = module.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
        if clean.is_empty() {
            continue;
        }
        let file = match syntax {
            ScriptSyntax::Bash => format!("{clean}.sh"),
            ScriptSyntax::Python => format!("{clean}.py"),
            ScriptSyntax::PowerShell => {
                let ticks = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() / 100)
                    .unwrap_or_default();
                format!("Library_{clean}_{ticks}.psm1")
            }
        };
        let body = variables.get(&var)?.unwrap_or_default();
        let path = dir.join(file);
        crate::fs::write(&path, body.replace("\r\n", "\n"))?;
        written.push(ScriptModule { name: module.to_string(), path });
    }
    Ok(written)
}

/// Files removed (best effort) when dropped: script modules, an inline script written for
/// one run.
#[derive(Debug, Default)]
pub(crate) struct RemoveOnDrop(pub Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = crate::fs::remove_file(path);
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}
