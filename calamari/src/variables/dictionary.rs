//! [`VariableDictionary`]: case-insensitive variable names, raw values kept as given,
//! insertion order kept (iteration and `[*]` depend on it), a sensitive flag per variable.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use indexmap::IndexMap;

use super::Error;
use super::template::limits::Limits;
use super::template::tree::Tree;
use super::template::{self, ParseMode};

/// One variable as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The name as first given (lookups ignore case).
    pub name: String,
    /// The raw, unevaluated value; `None` for a variable set to null.
    pub value: Option<String>,
    /// Whether the value must never be printed in clear.
    pub sensitive: bool,
}

/// The result of evaluating a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The output; `None` when the template evaluated to no value (the `null` filter).
    pub output: Option<String>,
    /// The reference's error text: a parse failure, or the tokens that could not be
    /// evaluated (`The following tokens were unable to be evaluated: '#{X}'`).
    pub error: Option<String>,
}

/// The variables of one Calamari run.
#[derive(Debug, Clone, Default)]
pub struct VariableDictionary {
    entries: IndexMap<String, Variable>,
    caches: Caches,
}

/// Derived data, rebuilt lazily after any change: the lookup tree (with its per-node
/// cache of evaluated values) and the evaluated values returned by [`VariableDictionary::get`].
#[derive(Default)]
struct Caches {
    tree: OnceLock<Tree>,
    limits: OnceLock<Limits>,
    values: Mutex<HashMap<String, Option<String>>>,
}

impl Clone for Caches {
    fn clone(&self) -> Self {
        Caches::default()
    }
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Caches")
    }
}

/// The lookup key of a name: names compare ignoring case (ordinal ignore-case in the
/// reference).
pub(crate) fn fold_name(name: &str) -> String {
    name.to_lowercase()
}

impl VariableDictionary {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lookup tree of the names (built on first use after a change).
    pub(crate) fn tree(&self) -> &Tree {
        self.caches.tree.get_or_init(|| Tree::build(self.entries.values()))
    }

    /// The template limits these variables set (read once after each change).
    ///
    /// # Errors
    /// [`Error::InvalidLimit`] when a limit variable is not a positive whole number.
    pub(crate) fn template_limits(&self) -> Result<Limits, Error> {
        if let Some(l) = self.caches.limits.get() {
            return Ok(*l);
        }
        let l = Limits::read(|name| self.get_raw(name))?;
        Ok(*self.caches.limits.get_or_init(|| l))
    }

    fn invalidate(&mut self) {
        self.caches = Caches::default();
    }

    /// Sets a variable's raw value. Re-setting a name keeps its original position and its
    /// sensitive flag.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Option<String>>) {
        self.invalidate();
        let name = name.into();
        let value = value.into();
        match self.entries.get_mut(&fold_name(&name)) {
            Some(existing) => existing.value = value,
            None => {
                self.entries.insert(fold_name(&name), Variable { name, value, sensitive: false });
            }
        }
    }

    /// Sets a variable and marks it sensitive.
    pub fn set_sensitive(&mut self, name: impl Into<String>, value: impl Into<Option<String>>) {
        self.insert(Variable { name: name.into(), value: value.into(), sensitive: true });
    }

    /// Inserts a variable (value and flag), keeping the position of an existing name.
    pub fn insert(&mut self, variable: Variable) {
        self.invalidate();
        let key = fold_name(&variable.name);
        match self.entries.get_mut(&key) {
            Some(existing) => {
                existing.value = variable.value;
                existing.sensitive = variable.sensitive;
            }
            None => {
                self.entries.insert(key, variable);
            }
        }
    }

    /// Removes a variable.
    pub fn remove(&mut self, name: &str) -> Option<Variable> {
        self.invalidate();
        self.entries.shift_remove(&fold_name(name))
    }

    /// The raw value, unevaluated; `None` when unset or set to null.
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.entries.get(&fold_name(name)).and_then(|v| v.value.as_deref())
    }

    /// The stored variable.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.entries.get(&fold_name(name))
    }

    /// Whether the name is set (even to null).
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(&fold_name(name))
    }

    /// Whether the variable is marked sensitive.
    pub fn is_sensitive(&self, name: &str) -> bool {
        self.entries.get(&fold_name(name)).is_some_and(|v| v.sensitive)
    }

    /// All variables in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Variable> {
        self.entries.values()
    }

    /// The names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|v| v.name.as_str())
    }

    /// The number of variables.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The raw values of every sensitive variable (for masking).
    pub fn sensitive_values(&self) -> impl Iterator<Item = &str> {
        self.entries.values().filter(|v| v.sensitive).filter_map(|v| v.value.as_deref())
    }

    /// Evaluates a template in the reference's default mode (a malformed template comes
    /// back unchanged, with an error text).
    ///
    /// # Errors
    /// [`Error::RecursiveDefinition`] when a value refers back to itself.
    pub fn evaluate(&self, text: &str) -> Result<Evaluation, Error> {
        template::evaluate(self, text, ParseMode::Halt)
    }

    /// Evaluates a template in the given parse mode.
    ///
    /// # Errors
    /// [`Error::RecursiveDefinition`] when a value refers back to itself.
    pub fn evaluate_with(&self, text: &str, mode: ParseMode) -> Result<Evaluation, Error> {
        template::evaluate(self, text, mode)
    }

    /// The evaluated value; `None` when unset or null.
    ///
    /// # Errors
    /// [`Error::RecursiveDefinition`] when the value refers back to itself.
    pub fn get(&self, name: &str) -> Result<Option<String>, Error> {
        let Some(raw) = self.get_raw(name) else { return Ok(None) };
        if memchr::memmem::find(raw.as_bytes(), b"#{").is_none() {
            return Ok(Some(raw.to_string()));
        }
        let key = fold_name(name);
        if let Some(v) = self.caches.values.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(v.clone());
        }
        let value = self.evaluate(raw).map_err(|e| e.asked_for(name))?.output;
        self.caches.values.lock().unwrap_or_else(|e| e.into_inner()).insert(key, value.clone());
        Ok(value)
    }

    /// The evaluated value and the error text of its evaluation (unresolved tokens).
    ///
    /// # Errors
    /// [`Error::RecursiveDefinition`] when the value refers back to itself.
    pub fn get_with_error(&self, name: &str) -> Result<Evaluation, Error> {
        match self.get_raw(name) {
            None => Ok(Evaluation { output: None, error: None }),
            Some(raw) => self.evaluate(raw).map_err(|e| e.asked_for(name)),
        }
    }

    /// The index keys directly under a collection path (`Octopus.Action` gives the step
    /// names), in insertion order.
    ///
    /// # Errors
    /// A blank or unparseable path; recursion.
    pub fn get_indexes(&self, path: &str) -> Result<Vec<String>, Error> {
        template::indexes(self, path)
    }

    /// Evaluates a template and applies the reference's truthiness: true only when there
    /// was no error, a value, and it is truthy.
    ///
    /// # Errors
    /// [`Error::RecursiveDefinition`].
    pub fn evaluate_truthy(&self, text: &str) -> Result<bool, Error> {
        let e = self.evaluate(text)?;
        Ok(e.error.is_none() && e.output.as_deref().is_some_and(template::is_truthy))
    }

    /// The evaluated value, or `""` when unset.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_or_empty(&self, name: &str) -> Result<String, Error> {
        Ok(self.get(name)?.unwrap_or_default())
    }

    /// The evaluated value read as a .NET bool (`true`/`false`, any case, trimmed); blank or
    /// anything else gives `default`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_flag(&self, name: &str, default: bool) -> Result<bool, Error> {
        Ok(match self.get(name)?.as_deref().map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            _ => default,
        })
    }

    /// The evaluated value read as a 32-bit integer.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_int(&self, name: &str) -> Result<Option<i32>, Error> {
        Ok(self.get(name)?.and_then(|v| v.trim().parse().ok()))
    }

    /// The evaluated value split on `separators`, pieces trimmed, empty pieces dropped.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_strings(&self, name: &str, separators: &[char]) -> Result<Vec<String>, Error> {
        Ok(self
            .get(name)?
            .map(|v| {
                v.split(|c| separators.contains(&c))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The evaluated value split into lines (the reference's `GetPaths`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_paths(&self, name: &str) -> Result<Vec<String>, Error> {
        self.get_strings(name, &['\r', '\n'])
    }

    /// The evaluated value; an error naming the variable when unset or empty.
    ///
    /// # Errors
    /// [`Error::Required`] when there is no value.
    pub fn require(&self, name: &str) -> Result<String, Error> {
        match self.get(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::Required(name.to_string())),
        }
    }

    /// Whether `feature` (e.g. `Octopus.Features.SubstituteInFiles`) is listed in
    /// `Octopus.Action.EnabledFeatures`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn is_feature_enabled(&self, feature: &str) -> Result<bool, Error> {
        Ok(self.get_strings(super::names::ENABLED_FEATURES, &[','])?.iter().any(|f| f.eq_ignore_ascii_case(feature)))
    }

    /// Sets an output variable as the reference's `SetOutputVariable` does: the name
    /// itself, `Octopus.Action[<action>].Output.<name>` when `Octopus.Action.Name` is set,
    /// and `Octopus.Action[<action>].Output[<machine>].<name>` when the machine name is too.
    pub fn set_output(&mut self, name: &str, value: &str, sensitive: bool) {
        let action = self.get_raw(super::names::ACTION_NAME).map(str::to_string);
        let machine = self.get_raw(super::names::MACHINE_NAME).map(str::to_string);
        let mut put = |n: String| {
            self.insert(Variable { name: n, value: Some(value.to_string()), sensitive });
        };
        put(name.to_string());
        if let Some(action) = action.filter(|a| !a.is_empty()) {
            put(format!("Octopus.Action[{action}].Output.{name}"));
            if let Some(machine) = machine.filter(|m| !m.is_empty()) {
                put(format!("Octopus.Action[{action}].Output[{machine}].{name}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_order_is_kept() {
        let mut d = VariableDictionary::new();
        d.set("Foo", Some("1".to_string()));
        d.set("bar", Some("2".to_string()));
        d.set("FOO", Some("3".to_string()));
        assert_eq!(d.get_raw("foo"), Some("3"));
        assert_eq!(d.names().collect::<Vec<_>>(), ["Foo", "bar"]);
        d.set("Nothing", None);
        assert!(d.contains("nothing"));
        assert_eq!(d.get_raw("nothing"), None);
    }

    #[test]
    fn flags_follow_dotnet_bool_parsing() {
        let mut d = VariableDictionary::new();
        for (value, expected) in [(" True ", true), ("false", false), ("yes", true), ("", true)] {
            d.set("F", Some(value.to_string()));
            assert_eq!(d.get_flag("F", true).unwrap(), expected, "{value:?}");
        }
        d.set("F", Some("yes".to_string()));
        assert!(!d.get_flag("F", false).unwrap());
    }

    #[test]
    fn output_variables_get_action_and_machine_names() {
        let mut d = VariableDictionary::new();
        d.set("Octopus.Action.Name", Some("Step A".to_string()));
        d.set("Octopus.Machine.Name", Some("web01".to_string()));
        d.set_output("Answer", "42", false);
        assert_eq!(d.get_raw("Answer"), Some("42"));
        assert_eq!(d.get_raw("Octopus.Action[Step A].Output.Answer"), Some("42"));
        assert_eq!(d.get_raw("Octopus.Action[Step A].Output[web01].Answer"), Some("42"));
    }
}
