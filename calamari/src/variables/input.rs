//! Loading the variables an agent hands over (`docs/behaviour.md`, "Variables").
//!
//! Load order: `--variables` files (JSON array of `{"k","v","s"}`, encrypted when a
//! password is given) → legacy `--sensitiveVariables` files (flat `{"name":"value"}`) →
//! `env:NAME` for every environment variable → `Octopus.Tentacle.Agent.InstanceName` →
//! the `AdditionalVariablesPath` file (flat JSON, merged last, overriding). A later value
//! for the same name replaces an earlier one.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::crypto;
use super::{Error, Variable, VariableDictionary, names};
use crate::env_vars;

/// Where the variables come from.
#[derive(Debug, Clone, Default)]
pub struct VariableSources {
    /// `--variables` files, in order.
    pub files: Vec<PathBuf>,
    /// `--variablesPassword`: when set, every `files` entry is encrypted.
    pub password: Option<String>,
    /// Legacy `--sensitiveVariables` files.
    pub sensitive_files: Vec<PathBuf>,
    /// Legacy `--sensitiveVariablesPassword`.
    pub sensitive_password: Option<String>,
    /// The process environment, added as `env:NAME` variables.
    pub environment: Vec<(String, String)>,
}

impl VariableSources {
    /// Sources with the current process environment.
    pub fn with_process_environment() -> Self {
        VariableSources {
            environment: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            ..Self::default()
        }
    }

    /// Sources with the environment an agent started Calamari in.
    pub fn with_environment(environment: &crate::env_vars::AgentEnvironment) -> Self {
        VariableSources { environment: environment.variables.clone(), ..Self::default() }
    }
}

/// Loads the variables a command runs with ([`load`]), registers every sensitive value with
/// `log` so that nothing printed afterwards shows it, and lists the variables when
/// `OctopusPrintVariables` or `OctopusPrintEvaluatedVariables` asks for it.
///
/// # Errors
/// As [`load`], or a variable of the listing that cannot be evaluated.
pub fn load_for_command(sources: &VariableSources, log: &crate::Log) -> Result<VariableDictionary, Error> {
    let dict = load(sources)?;
    for value in dict.sensitive_values() {
        log.add_sensitive(value);
    }
    print_variables(log, &dict)?;
    if !sources.sensitive_files.is_empty() {
        log.warn("--sensitiveVariables is deprecated: pass every variable in --variables files.");
    }
    Ok(dict)
}

/// The reference's `VariableLogger`: with `OctopusPrintVariables` (raw values) or
/// `OctopusPrintEvaluatedVariables` (evaluated) set to true, list every variable except
/// configured scripts. Values go through the log, so sensitive ones are masked.
fn print_variables(log: &crate::Log, dict: &VariableDictionary) -> Result<(), Error> {
    for (flag, evaluated) in [("OctopusPrintVariables", false), ("OctopusPrintEvaluatedVariables", true)] {
        if !dict.get_flag(flag, false)? {
            continue;
        }
        log.warn(format!(
            "{flag} is enabled. This should only be used for debugging problems with variables, and then disabled again for normal deployments."
        ));
        log.verbose(if evaluated {
            "The following evaluated variables are available:"
        } else {
            "The following variables are available:"
        });
        for variable in dict.iter().filter(|v| !v.name.contains("CustomScripts.")) {
            let value = if evaluated { dict.get(&variable.name)? } else { variable.value.clone() };
            log.verbose(format!("[{}] = '{}'", variable.name, value.unwrap_or_default()));
        }
    }
    Ok(())
}

/// The password for variables files: given inline, or read from a file (`-` for standard
/// input), without the one trailing newline `echo pw > file` writes. `file_option` is the
/// option that named the file (`--variablesPasswordFile`), for the messages.
///
/// # Errors
/// Both forms given, or the file (or standard input) cannot be read; the message names the
/// option and the file.
pub fn resolve_password(inline: Option<&str>, file: Option<&Path>, file_option: &str) -> Result<Option<String>, Error> {
    use std::io::Read as _;
    let Some(file) = file else { return Ok(inline.map(str::to_string)) };
    if inline.is_some() {
        let inline_option = file_option.strip_suffix("File").unwrap_or(file_option);
        return Err(Error::Password(format!(
            "Give the password either inline ({inline_option}) or from a file ({file_option}), not both."
        )));
    }
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::Password(format!("Could not read the variables password from standard input: {e}")))?;
    } else {
        text = crate::fs::read_to_string(file).map_err(|e| {
            Error::Password(if e.kind() == std::io::ErrorKind::NotFound {
                format!("The password file '{}' given by {file_option} does not exist", file.display())
            } else {
                format!("Could not read the password file '{}' given by {file_option}: {}", file.display(), e.source)
            })
        })?;
    }
    let trimmed = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    Ok(Some(trimmed.to_string()))
}

#[derive(Deserialize)]
struct Entry {
    k: String,
    #[serde(default)]
    v: Option<String>,
    #[serde(default)]
    s: bool,
}

/// Loads every source in the reference's order.
///
/// # Errors
/// A missing, unreadable, undecryptable or malformed file, named in the error.
pub fn load(sources: &VariableSources) -> Result<VariableDictionary, Error> {
    let mut dict = VariableDictionary::new();
    for path in &sources.files {
        for variable in read_variables_file(path, sources.password.as_deref())? {
            dict.insert(variable);
        }
    }
    for path in &sources.sensitive_files {
        for variable in read_legacy_file(path, sources.sensitive_password.as_deref())? {
            dict.insert(variable);
        }
    }
    for (name, value) in &sources.environment {
        dict.set(format!("env:{name}"), Some(value.clone()));
    }
    if let Some((_, instance)) = sources.environment.iter().find(|(k, _)| k == env_vars::TENTACLE_INSTANCE_NAME) {
        dict.set(names::AGENT_INSTANCE_NAME, Some(instance.clone()));
    }
    let additional = match dict.get(names::ADDITIONAL_VARIABLES_PATH)? {
        Some(path) if !path.trim().is_empty() => Some(path),
        _ => sources
            .environment
            .iter()
            .find(|(k, _)| k == env_vars::ADDITIONAL_VARIABLES_PATH)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.trim().is_empty()),
    };
    if let Some(path) = additional {
        let path = PathBuf::from(path.trim());
        if !path.is_file() {
            return Err(Error::AdditionalVariables { path, reason: "File does not exist.", source: None });
        }
        let variables = read_legacy_file(&path, None).map_err(|e| Error::AdditionalVariables {
            path: path.clone(),
            reason: "The file could not be read.",
            source: Some(Box::new(e)),
        })?;
        for variable in variables {
            dict.insert(variable);
        }
    }
    Ok(dict)
}

/// The password options of `--variables` files.
const VARIABLES_PASSWORD_OPTIONS: &str = "--variablesPassword or --variablesPasswordFile";
/// The password options of legacy `--sensitiveVariables` files.
const SENSITIVE_PASSWORD_OPTIONS: &str = "--sensitiveVariablesPassword or --sensitiveVariablesPasswordFile";

/// Reads a variables file, decrypting it with `password`; `password_options` names the
/// options that give its password, for the message when an encrypted file has none.
fn read_file(path: &Path, password: Option<&str>, password_options: &str) -> Result<Vec<u8>, Error> {
    let bytes = match crate::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::MissingFile(path.to_path_buf())),
        Err(e) => return Err(crate::fs::IoError { op: "read variables file", ..e }.into()),
    };
    let plain = match password {
        Some(password) => crypto::decrypt(&bytes, password)
            .map_err(|e| Error::Decrypt { path: path.to_path_buf(), detail: e.to_string() })?,
        // Encrypted files start with the IV prefix; JSON never does.
        None if bytes.starts_with(crypto::IV_PREFIX) => {
            return Err(Error::Password(format!(
                "The variables file '{}' looks encrypted (it starts with IV__) but no password was given: add {password_options}",
                path.display()
            )));
        }
        None => bytes,
    };
    Ok(match plain.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => plain,
    })
}

fn json_error(path: &Path, encrypted: bool, detail: String) -> Error {
    if encrypted {
        // No MAC: a wrong password that happens to unpad yields garbage, caught here.
        Error::Decrypt {
            path: path.to_path_buf(),
            detail: format!("the decrypted content is not valid JSON ({detail})"),
        }
    } else {
        Error::InvalidJson { path: path.to_path_buf(), detail }
    }
}

/// Reads one `--variables` file: a JSON array of `{"k": name, "v": value|null, "s": bool}`.
///
/// # Errors
/// Missing file, wrong password, truncated ciphertext, or JSON of the wrong shape.
pub(crate) fn read_variables_file(path: &Path, password: Option<&str>) -> Result<Vec<Variable>, Error> {
    let bytes = read_file(path, password, VARIABLES_PASSWORD_OPTIONS)?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
        json_error(path, password.is_some(), format!("{e} (expected an array of {{\"k\",\"v\",\"s\"}} objects)"))
    })?;
    Ok(entries.into_iter().map(|e| Variable { name: e.k, value: e.v, sensitive: e.s }).collect())
}

/// Reads a legacy flat `{"name": "value"}` file (`--sensitiveVariables`,
/// `AdditionalVariablesPath`). Values are kept as given; the legacy format marks nothing
/// sensitive.
///
/// # Errors
/// Missing file, wrong password, or JSON that is not an object of strings.
pub(crate) fn read_legacy_file(path: &Path, password: Option<&str>) -> Result<Vec<Variable>, Error> {
    let bytes = read_file(path, password, SENSITIVE_PASSWORD_OPTIONS)?;
    let map: indexmap::IndexMap<String, Option<String>> = serde_json::from_slice(&bytes).map_err(|e| {
        json_error(path, password.is_some(), format!("{e} (expected an object of \"name\": \"value\" pairs)"))
    })?;
    Ok(map.into_iter().map(|(name, value)| Variable { name, value, sensitive: false }).collect())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn later_sources_override_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.json",
            br#"[{"k":"Name","v":"a","s":false},{"k":"Secret","v":"x","s":true},{"k":"Null","v":null}]"#,
        );
        let b = write(dir.path(), "b.json", br#"[{"k":"name","v":"b","s":false}]"#);
        let extra = write(dir.path(), "extra.json", br#"{"Extra":"e","NAME":"c"}"#);
        let sources = VariableSources {
            files: vec![a, b],
            environment: vec![
                ("PATH_LIKE".into(), "/bin".into()),
                ("AdditionalVariablesPath".into(), extra.display().to_string()),
            ],
            ..Default::default()
        };
        let d = load(&sources).unwrap();
        assert_eq!(d.get_raw("Name"), Some("c"));
        assert_eq!(d.get_raw("Extra"), Some("e"));
        assert_eq!(d.get_raw("env:PATH_LIKE"), Some("/bin"));
        assert!(d.is_sensitive("secret"));
        assert!(d.contains("Null") && d.get_raw("Null").is_none());
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.json", b"[{\"k\":");
        let object = write(dir.path(), "object.json", br#"{"k":"v"}"#);
        let missing = dir.path().join("missing.json");
        let cases: [(&Path, &str); 3] = [
            (&bad, "Unable to parse variables as valid JSON. File '"),
            (&object, "expected an array"),
            (&missing, "Could not find variables file"),
        ];
        for (path, expected) in cases {
            let err = read_variables_file(path, None).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        let enc = write(dir.path(), "enc.bin", &crypto::encrypt(b"[]", "right"));
        let err = read_variables_file(&enc, Some("Tr0ub4dor-guess")).unwrap_err().to_string();
        assert!(err.starts_with("Cannot decrypt variables. Check your password is correct."), "{err}");
        assert!(!err.contains("Tr0ub4dor"), "the password leaked: {err}");
        assert!(read_variables_file(&enc, Some("right")).unwrap().is_empty());
        let err = read_variables_file(&enc, None).unwrap_err().to_string();
        assert!(err.contains("looks encrypted") && err.contains("--variablesPasswordFile"), "{err}");
        let err = read_legacy_file(&enc, None).unwrap_err().to_string();
        assert!(err.contains("--sensitiveVariablesPassword"), "{err}");
    }

    #[test]
    fn a_missing_password_file_names_the_option_and_the_file() {
        let missing = Path::new("/nonexistent/pw.txt");
        let err = resolve_password(None, Some(missing), "--variablesPasswordFile").unwrap_err().to_string();
        assert_eq!(err, "The password file '/nonexistent/pw.txt' given by --variablesPasswordFile does not exist");
        let err = resolve_password(Some("x"), Some(missing), "--variablesPasswordFile").unwrap_err().to_string();
        assert!(err.contains("(--variablesPassword)") && err.contains("(--variablesPasswordFile)"), "{err}");
    }
}
