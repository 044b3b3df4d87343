//! Running PowerShell scripts under `pwsh` (PowerShell 7.2 or newer, found on the PATH as
//! the reference does on Linux).
//!
//! The step directory receives `Variables.bin` (`name NUL value NUL ...`), `Locals.bin`
//! (`variable NUL name NUL ...`: the legacy local variables, named here so pwsh does no
//! per-name work) and `Bootstrap.ps1` (`bootstrap/Bootstrap.ps1` with its placeholders
//! filled). pwsh runs the reference's command line: `-Command "Try {. {. 'Bootstrap.ps1';
//! ...}} catch { throw }"`, so exit codes, `$LASTEXITCODE` and terminating errors behave
//! as in the reference.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;

use super::interpreter::Launch;
use super::modules::ScriptModule;
use super::{Error, ScriptSyntax, evaluated_variables, variable_names};
use crate::{Log, VariableDictionary};

/// The interpreter.
pub(crate) const PROGRAM: &str = "pwsh";

/// How to install the interpreter, for the error when it is missing.
pub(crate) const INSTALL_HINT: &str = " Install PowerShell 7.2 or newer on this machine (see \"Installing PowerShell on Linux\" in Microsoft's PowerShell documentation, or `dotnet tool install --global PowerShell`) so that `pwsh` is on the PATH of the process that runs Calamari.";

/// The bootstrap template.
pub(crate) const TEMPLATE: &str = include_str!("bootstrap/Bootstrap.ps1");

/// The command running `launch.script`, with the variables files and bootstrap written.
///
/// # Errors
/// When a file cannot be written, a variable cannot be evaluated or the script functions'
/// registration is not valid.
pub(crate) fn command(launch: &Launch<'_>) -> Result<Command, Error> {
    let variables = script_variables(launch.variables)?;
    let variables_file =
        launch.step.write("Variables.bin", &nul_pairs(variables.iter().map(|(n, v)| (*n, v.as_str()))))?;
    let locals = local_variables(variables.iter().map(|(n, _)| *n));
    let locals_file = launch.step.write("Locals.bin", &nul_pairs(locals.iter().map(|(k, n)| (k.as_str(), *n))))?;
    for module in launch.modules {
        launch.log.verbose(format!(
            "Writing script module '{}' as PowerShell module {}. This module will be automatically imported - functions will automatically be in scope.",
            module.name,
            module.path.file_name().map(|f| f.to_string_lossy()).unwrap_or_default()
        ));
    }
    let functions = match launch.variables.get(variable_names::SCRIPT_FUNCTIONS_REGISTRATION)? {
        Some(json) if !json.trim().is_empty() => script_functions(&json)?,
        _ => String::new(),
    };
    let psdebug = psdebug_command(launch.variables, launch.log)?;
    let text = bootstrap_text(&Bootstrap {
        variables_file: &variables_file,
        locals_file: &locals_file,
        script: launch.script,
        parameters: launch.parameters,
        modules: launch.modules,
        functions: &functions,
        psdebug: psdebug.as_deref(),
    });
    let bootstrap = launch.step.write("Bootstrap.ps1", &ScriptSyntax::PowerShell.file_bytes(&text))?;

    let mut cmd = Command::new(launch.interpreter);
    cmd.args(arguments(&bootstrap, launch.variables.get_flag(variable_names::POWERSHELL_WITHOUT_PROFILE, false)?));
    if launch.variables.get_flag(variable_names::POWERSHELL_UNIQUE_CACHE_PATH, false)? {
        // The reference puts it beside the script and leaves it; inside the step directory
        // it goes when the step ends.
        cmd.env("XDG_CACHE_HOME", launch.step.path().join("PowerShellCache"));
    }
    Ok(cmd)
}

/// Quotes `text` as a PowerShell single-quoted string body (`'` doubled, and the other
/// quote characters PowerShell treats as `'`).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out
}

/// What one bootstrap is filled with.
#[derive(Debug)]
pub(crate) struct Bootstrap<'a> {
    /// `Variables.bin`.
    pub variables_file: &'a Path,
    /// `Locals.bin`.
    pub locals_file: &'a Path,
    /// The user's script.
    pub script: &'a Path,
    /// Its parameters, PowerShell syntax.
    pub parameters: Option<&'a str>,
    /// Script modules to import.
    pub modules: &'a [ScriptModule],
    /// Generated helper functions (may be empty).
    pub functions: &'a str,
    /// `Set-PSDebug ...` before the script, if asked for.
    pub psdebug: Option<&'a str>,
}

/// The bootstrap text for one step. Every value goes in as a single-quoted literal.
pub(crate) fn bootstrap_text(b: &Bootstrap<'_>) -> String {
    let mut modules = String::new();
    for m in b.modules {
        let _ =
            writeln!(modules, "Import-ScriptModule '{}' '{}'\n", escape(&m.name), escape(&m.path.to_string_lossy()));
    }
    // A parameter string is one line of the script's invocation, as in the reference.
    let parameters = b.parameters.map(|p| p.replace(['\r', '\n'], " ")).unwrap_or_default();
    let value = |placeholder: &str| -> Option<String> {
        Some(match placeholder {
            "VARIABLES_FILE" => escape(&b.variables_file.to_string_lossy()),
            "LOCALS_FILE" => escape(&b.locals_file.to_string_lossy()),
            "SCRIPT_MODULES" => modules.clone(),
            "SCRIPT_FUNCTIONS" => b.functions.to_string(),
            // Tracing and strict mode start with the user's script and end with it.
            "PSDEBUG" => b.psdebug.map(|c| escape(&format!("{c}; "))).unwrap_or_default(),
            "PSDEBUG_OFF" => if b.psdebug.is_some() { "    Set-PSDebug -Off" } else { "" }.to_string(),
            "SCRIPT" => escape(&b.script.to_string_lossy()),
            "PARAMETERS" => escape(parameters.trim()),
            _ => return None,
        })
    };
    fill(TEMPLATE, value)
}

/// `template` with each `{{NAME}}` replaced by `value(NAME)`, in one pass, so a value that
/// happens to hold `{{...}}` (a path, a module name) is never filled in itself.
fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| value(&after[..end]).map(|v| (end, v))) {
            Some((end, v)) => {
                out.push_str(&v);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The arguments after `pwsh`: the reference's.
pub(crate) fn arguments(bootstrap: &Path, without_profile: bool) -> Vec<String> {
    let mut args = Vec::new();
    if without_profile {
        args.push("-NoProfile".to_string());
    }
    args.extend(["-NoLogo", "-NonInteractive", "-ExecutionPolicy", "Unrestricted", "-Command"].map(String::from));
    args.push(format!(
        "Try {{. {{. '{}'; if ((test-path variable:global:lastexitcode)) {{ exit $LastExitCode }}}};}} catch {{ throw }}",
        escape(&bootstrap.to_string_lossy())
    ));
    args
}

/// The variables `$OctopusParameters` holds: all but the script modules' bodies, as in the
/// reference.
fn script_variables(variables: &VariableDictionary) -> Result<Vec<(&str, String)>, Error> {
    let mut all = evaluated_variables(variables)?;
    all.retain(|(name, _)| !name.starts_with(variable_names::MODULE_PREFIX));
    Ok(all)
}

/// `a NUL b NUL ...` for each pair.
fn nul_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (a, b) in pairs {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
        out.extend_from_slice(b.as_bytes());
        out.push(0);
    }
    out
}

/// The reference's local variables, as (PowerShell variable, Octopus variable) pairs in
/// order: every name without `[` gives its letters and digits (the legacy name) and, when
/// different, its letters, digits and `_`; empty ones are skipped. pwsh assigns each unless
/// a variable of that name exists already.
pub(crate) fn local_variables<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, &'a str)> {
    let mut out = Vec::new();
    for name in names.filter(|name| !name.contains('[')) {
        let legacy = identifier(name, false);
        let smart = identifier(name, true);
        if legacy != smart && !legacy.is_empty() {
            out.push((legacy, name));
        }
        if !smart.is_empty() {
            out.push((smart, name));
        }
    }
    out
}

/// `name` with only the characters .NET's `char.IsLetterOrDigit` accepts (Unicode letters
/// and decimal digits of the Basic Multilingual Plane: .NET sees the others as surrogate
/// halves), and `_` when `underscore`.
fn identifier(name: &str, underscore: bool) -> String {
    static LETTER_OR_DIGIT: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{Nd}]$").expect("valid pattern"));
    let mut buf = [0u8; 4];
    name.chars()
        .filter(|&c| {
            if c.is_ascii() {
                c.is_ascii_alphanumeric() || (underscore && c == '_')
            } else {
                u32::from(c) <= 0xFFFF && LETTER_OR_DIGIT.is_match(c.encode_utf8(&mut buf))
            }
        })
        .collect()
}

/// The reference's `Set-PSDebug` command for `Octopus.Action.PowerShell.PSDebug.Trace`
/// (a number, or true for 2) and `.Strict`, logging its warning and note; `None` when
/// neither is on.
fn psdebug_command(variables: &VariableDictionary, log: &Log) -> Result<Option<String>, Error> {
    let trace_value = variables.get(variable_names::POWERSHELL_TRACE)?.unwrap_or_default();
    let trace = match (dotnet_int(&trace_value), dotnet_bool(&trace_value)) {
        (Some(n), _) if n > 0 => Some(n),
        (_, Some(true)) => Some(2),
        _ => None,
    };
    if trace.is_some() {
        log.warn(format!(
            "{} is enabled. This should only be used for debugging, and then disabled again for normal deployments.",
            variable_names::POWERSHELL_TRACE
        ));
    }
    let strict = dotnet_bool(&variables.get(variable_names::POWERSHELL_STRICT)?.unwrap_or_default()).unwrap_or(false);
    if strict {
        log.info(format!(
            "{} is enabled, putting PowerShell into strict mode where variables must be assigned a value before being referenced in a script. If a variable is referenced before a value is assigned, an exception will be thrown. This feature is experimental.",
            variable_names::POWERSHELL_STRICT
        ));
    }
    if trace.is_none() && !strict {
        return Ok(None);
    }
    Ok(Some(format!("Set-PSDebug -Trace {}{}", trace.unwrap_or(0), if strict { " -Strict" } else { "" })))
}

/// .NET's `int.TryParse`: optional surrounding white space and sign.
fn dotnet_int(text: &str) -> Option<i32> {
    text.trim().parse().ok()
}

/// .NET's `bool.TryParse`: `true` or `false` in any case, surrounding white space allowed.
fn dotnet_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The typed helper functions a server registers in
/// `Octopus.Sashimi.ScriptFunctions.Registration` (JSON: `[{Name, ServiceMessageName,
/// Parameters: {name: {Type, DependsOn}}}]`), as the reference generates them: `New-<Name>`
/// writes `##octopus[<ServiceMessageName> name='<base64>' ...]`. Names are checked, so the
/// registration cannot smuggle code into the bootstrap.
///
/// # Errors
/// When the JSON does not parse or a name is not a plain identifier.
pub(crate) fn script_functions(json: &str) -> Result<String, Error> {
    let invalid =
        |reason: String| Error::ScriptFunctions { variable: variable_names::SCRIPT_FUNCTIONS_REGISTRATION, reason };
    let registrations: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(json).map_err(|e| invalid(format!("it is not a JSON array of registrations: {e}")))?;
    let field = |object: &serde_json::Map<String, serde_json::Value>, name: &str| -> Option<serde_json::Value> {
        object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    let is_identifier = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut out = String::new();
    for registration in &registrations {
        let name = field(registration, "Name").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        if !is_identifier(&name) {
            return Err(invalid(format!("the function name '{name}' is not an identifier")));
        }
        let message =
            field(registration, "ServiceMessageName").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        if message.is_empty() || !message.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(invalid(format!("the service message name '{message}' of New-{name} is not valid")));
        }
        let parameters = match field(registration, "Parameters") {
            Some(serde_json::Value::Object(p)) => p,
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(_) => return Err(invalid(format!("the parameters of New-{name} are not a JSON object"))),
        };
        let mut typed = Vec::new();
        for (parameter, spec) in &parameters {
            if !is_identifier(parameter) {
                return Err(invalid(format!("the parameter name '{parameter}' of New-{name} is not an identifier")));
            }
            let spec = spec.as_object().cloned().unwrap_or_default();
            let kind = match field(&spec, "Type") {
                Some(serde_json::Value::Number(n)) if n.as_u64() == Some(0) => "string",
                Some(serde_json::Value::Number(n)) if n.as_u64() == Some(1) => "switch",
                Some(serde_json::Value::Number(n)) if n.as_u64() == Some(2) => "int",
                Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("String") => "string",
                Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("Bool") => "switch",
                Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("Int") => "int",
                other => {
                    return Err(invalid(format!(
                        "the type {} of parameter '{parameter}' of New-{name} is not String, Bool or Int",
                        other.map(|v| v.to_string()).unwrap_or_else(|| "(none)".into())
                    )));
                }
            };
            let depends_on =
                field(&spec, "DependsOn").and_then(|v| v.as_str().map(str::to_string)).filter(|d| !d.is_empty());
            typed.push((parameter.as_str(), kind, depends_on));
        }
        let signature: Vec<String> = typed.iter().map(|(p, kind, _)| format!("[{kind}] ${p}")).collect();
        let _ = writeln!(out, "function New-{name}({})\n{{\n\t$parameters = \"\"", signature.join(", "));
        for (parameter, _, depends_on) in &typed {
            let condition = depends_on.as_ref().and_then(|d| {
                typed.iter().find(|(p, _, _)| p == d).map(|(_, kind, _)| match *kind {
                    "string" => format!("if (![string]::IsNullOrEmpty(${d}))"),
                    "switch" => format!("if (${d} -eq $true)"),
                    _ => format!("if (${d} -gt 0)"),
                })
            });
            let indent = if condition.is_some() { "\t\t" } else { "\t" };
            if let Some(condition) = &condition {
                let _ = writeln!(out, "\t{condition}\n\t{{");
            }
            let _ = writeln!(
                out,
                "{indent}$tempParameter = Convert-ToServiceMessageParameter -name \"{parameter}\" -value ${parameter}\n{indent}$parameters = $parameters, $tempParameter -join ' '"
            );
            if condition.is_some() {
                out.push_str("\t}\n");
            }
        }
        let _ = writeln!(out, "\tWrite-Host \"##octopus[{message} $($parameters)]\"\n}}\n");
    }
    Ok(out)
}
