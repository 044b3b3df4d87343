//! The variables as the bootstraps receive them: every name with its evaluated value, and
//! the `name NUL value NUL ...` file Python and PowerShell read.

use crate::VariableDictionary;

use super::Error;

/// Every variable with its evaluated value (null as empty; NUL bytes, which no script
/// variable can hold, removed), in order. Names that are empty or hold NUL are skipped.
///
/// # Errors
/// When a value cannot be evaluated (a recursive definition).
pub(crate) fn evaluated_variables(variables: &VariableDictionary) -> Result<Vec<(&str, String)>, Error> {
    let mut out = Vec::with_capacity(variables.len());
    for variable in variables.iter() {
        if variable.name.is_empty() || variable.name.contains('\0') {
            continue;
        }
        let value = match &variable.value {
            None => String::new(),
            Some(raw) if !raw.contains("#{") => raw.clone(),
            Some(_) => variables.get(&variable.name)?.unwrap_or_default(),
        };
        let value = if value.contains('\0') { value.replace('\0', "") } else { value };
        out.push((variable.name.as_str(), value));
    }
    Ok(out)
}

/// The variables file for Python and PowerShell: `name NUL value NUL ...`, UTF-8.
///
/// # Errors
/// As [`evaluated_variables`].
pub(crate) fn variables_payload(variables: &VariableDictionary) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(variables.len() * 64);
    for (name, value) in evaluated_variables(variables)? {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    Ok(out)
}
