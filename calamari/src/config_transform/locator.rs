//! How a transform element finds its targets: the XPath built from its place in the
//! transform document and its `xdt:Locator` (Microsoft's XDT semantics, as the reference's
//! `Microsoft.Web.XmlTransform` implements them).
//!
//! Each element of the transform adds one step to its parent's path: its name (an element
//! in a default namespace is written `_defaultNamespace:name`, a prefix the expression's
//! namespaces know), and the locator's predicate:
//!
//! | `xdt:Locator` | path |
//! |---|---|
//! | none | `parent/name` |
//! | `Match(a, b)` | `parent/name[@a='<a here>' and @b='<b here>']` |
//! | `Condition(expr)` | `parent/name[expr]` |
//! | `XPath(/abs)` | `/abs` |
//! | `XPath(rel)` | `parent/name/rel` |
//!
//! `Insert`-like transforms work on the parent path instead, which for `XPath` is the
//! locator's own path. Arguments are split on commas outside parentheses and trimmed, so
//! `Condition(@a='x,y')` has two arguments (and fails, as in the reference).

use std::sync::LazyLock;

/// `Name` or `Name(arguments)`, as the `xdt:Transform` and `xdt:Locator` attributes hold.
static NAME_AND_ARGUMENTS: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(?s)\A\s*(\w+)(?:\s*\((.*)\))?\s*\z").expect("the name-and-arguments pattern is valid")
});

/// The reference's message for an attribute value that is not `Name(arguments)`.
pub(crate) const BAD_ATTRIBUTE_VALUE: &str = "Transform and Locator attributes must contain only a type name, or a type name followed by a list of attributes in parentheses.";

/// Splits `Name(arguments)` into the name and the argument string (`None` when there are
/// no parentheses or nothing in them); `None` when the value is not of that form.
pub(crate) fn parse_name_and_arguments(value: &str) -> Option<(String, Option<String>)> {
    let caps = NAME_AND_ARGUMENTS.captures(value)?;
    let args = caps.get(2).map(|m| m.as_str().to_string()).filter(|a| !a.is_empty());
    Some((caps[1].to_string(), args))
}

/// The arguments of an argument string: split on the commas outside parentheses, each
/// trimmed (a string without commas is one argument, untrimmed, as in the reference).
pub(crate) fn split_arguments(args: &str) -> Vec<String> {
    if !args.contains(',') {
        return vec![args.to_string()];
    }
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut depth = 0i32;
    for piece in args.split(',') {
        current = Some(match current {
            None => piece.to_string(),
            Some(c) => format!("{c},{piece}"),
        });
        depth += piece.chars().map(|c| i32::from(c == '(') - i32::from(c == ')')).sum::<i32>();
        if depth == 0 {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out.into_iter().map(|a| a.trim().to_string()).collect()
}

/// A locator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Locator {
    /// No `xdt:Locator`: the element's name.
    Default,
    /// `Match(attributes)`: the name, with these attributes equal to the transform's.
    Match,
    /// `Condition(predicate)`.
    Condition,
    /// `XPath(expression)`.
    XPath,
}

impl Locator {
    /// The locator a name stands for.
    pub(crate) fn named(name: &str) -> Option<Locator> {
        Some(match name {
            "Match" => Locator::Match,
            "Condition" => Locator::Condition,
            "XPath" => Locator::XPath,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Locator::Default => "DefaultLocator",
            Locator::Match => "Match",
            Locator::Condition => "Condition",
            Locator::XPath => "XPath",
        }
    }
}

/// What a locator reads of its transform element.
pub(crate) struct Element<'a> {
    /// The qualified name as written.
    pub(crate) qname: &'a str,
    /// The local name.
    pub(crate) local: &'a str,
    /// Whether the name has no prefix but a (default) namespace.
    pub(crate) in_default_namespace: bool,
    /// The attributes as written: qualified name and value.
    pub(crate) attrs: Vec<(String, String)>,
}

impl Element<'_> {
    /// The step that names this element.
    fn node_test(&self) -> String {
        if self.in_default_namespace { format!("_defaultNamespace:{}", self.local) } else { self.qname.to_string() }
    }
}

fn append_step(base: &str, step: &str, predicate: &str) -> String {
    let mut out = base.to_string();
    if !out.ends_with('/') {
        out.push('/');
    }
    out.push_str(step);
    if !predicate.is_empty() {
        if !predicate.starts_with('[') {
            out.push('[');
        }
        out.push_str(predicate);
        if !predicate.ends_with(']') {
            out.push(']');
        }
    }
    out
}

fn exactly_one(locator: Locator, args: Option<&[String]>) -> Result<String, String> {
    match args {
        Some([one]) => Ok(one.clone()),
        _ => Err(format!("{} requires exactly 1 arguments", locator.name())),
    }
}

/// The path of the element's targets, below `parent` (the parent element's path, `""`
/// for the root).
///
/// # Errors
/// The reference's message for missing or extra arguments, or a `Match` attribute the
/// element does not have.
pub(crate) fn path(
    locator: Locator,
    args: Option<&str>,
    parent: &str,
    element: &Element<'_>,
) -> Result<String, String> {
    let args = args.map(split_arguments);
    match locator {
        Locator::Default => Ok(append_step(parent, &element.node_test(), "")),
        Locator::Match => {
            let Some(keys) = args.filter(|a| !a.is_empty()) else {
                return Err("Match requires at least 1 arguments".to_string());
            };
            let mut predicate = Vec::new();
            for key in &keys {
                let Some((name, value)) = element.attrs.iter().find(|(n, _)| n == key) else {
                    return Err(format!("No attribute '{key}' exists for the Match Locator"));
                };
                predicate.push(format!("@{name}='{value}'"));
            }
            Ok(append_step(parent, &element.node_test(), &predicate.join(" and ")))
        }
        Locator::Condition => {
            let predicate = exactly_one(locator, args.as_deref())?;
            Ok(append_step(parent, &element.node_test(), &predicate))
        }
        Locator::XPath => {
            let xpath = exactly_one(locator, args.as_deref())?;
            if xpath.starts_with('/') {
                return Ok(xpath);
            }
            let own = append_step(parent, &element.node_test(), "");
            Ok(append_step(&own, &xpath, "").replace("/./", "/"))
        }
    }
}

/// The path of the element's targets' parents, for the transforms that insert: the
/// parent element's path, or for `XPath` the locator's own path.
///
/// # Errors
/// As [`path`], for `XPath`.
pub(crate) fn parent_path(
    locator: Locator,
    args: Option<&str>,
    parent: &str,
    element: &Element<'_>,
) -> Result<String, String> {
    match locator {
        Locator::XPath => path(locator, args, parent, element),
        _ => Ok(parent.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(attrs: &[(&str, &str)]) -> Element<'static> {
        Element {
            qname: "add",
            local: "add",
            in_default_namespace: false,
            attrs: attrs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn names_and_arguments() {
        type Case<'a> = (&'a str, Option<(&'a str, Option<&'a str>)>);
        let cases: &[Case<'_>] = &[
            ("Replace", Some(("Replace", None))),
            ("  SetAttributes ( a, b ) ", Some(("SetAttributes", Some(" a, b ")))),
            ("Remove()", Some(("Remove", None))),
            ("Condition(@a='(x)')", Some(("Condition", Some("@a='(x)'")))),
            ("Condition(a)\n", Some(("Condition", Some("a")))),
            ("Set Attributes", None),
            ("(a)", None),
            ("", None),
        ];
        for (value, expected) in cases {
            let got = parse_name_and_arguments(value);
            let got = got.as_ref().map(|(n, a)| (n.as_str(), a.as_deref()));
            assert_eq!(got, *expected, "{value:?}");
        }
    }

    #[test]
    fn arguments_split_outside_parentheses() {
        let cases: &[(&str, &[&str])] = &[
            ("name", &["name"]),
            (" name ", &[" name "]),
            ("name, key", &["name", "key"]),
            ("contains(@a, 'x'), b", &["contains(@a, 'x')", "b"]),
            ("@a='x,y'", &["@a='x", "y'"]),
            ("f(a,(b,c)),d", &["f(a,(b,c))", "d"]),
            ("f(a,b", &["f(a,b"]),
        ];
        for (args, expected) in cases {
            assert_eq!(split_arguments(args), *expected, "{args}");
        }
    }

    #[test]
    fn paths_per_locator() {
        let el = add(&[("key", "Name"), ("value", "x"), ("xsi:type", "T")]);
        type Case<'a> = (Locator, Option<&'a str>, &'a str, Result<&'a str, &'a str>);
        let cases: &[Case<'_>] = &[
            (Locator::Default, None, "/configuration/appSettings", Ok("/configuration/appSettings/add")),
            (Locator::Default, None, "", Ok("/add")),
            (Locator::Match, Some("key"), "/c", Ok("/c/add[@key='Name']")),
            (Locator::Match, Some("key, value"), "/c", Ok("/c/add[@key='Name' and @value='x']")),
            (Locator::Match, Some("xsi:type"), "/c", Ok("/c/add[@xsi:type='T']")),
            (Locator::Match, Some("missing"), "/c", Err("No attribute 'missing' exists for the Match Locator")),
            (Locator::Match, None, "/c", Err("Match requires at least 1 arguments")),
            (Locator::Condition, Some("@key='a' or @key='b'"), "/c", Ok("/c/add[@key='a' or @key='b']")),
            (Locator::Condition, Some("[1]"), "/c", Ok("/c/add[1]")),
            (Locator::Condition, Some("@a='x,y'"), "/c", Err("Condition requires exactly 1 arguments")),
            (Locator::Condition, None, "/c", Err("Condition requires exactly 1 arguments")),
            (Locator::XPath, Some("/configuration/x"), "/c", Ok("/configuration/x")),
            (Locator::XPath, Some("child[@a='1']"), "/c", Ok("/c/add/child[@a='1']")),
            (Locator::XPath, Some("./child"), "/c", Ok("/c/add/child")),
            (Locator::XPath, Some("a, b"), "/c", Err("XPath requires exactly 1 arguments")),
        ];
        for (locator, args, parent, expected) in cases {
            let got = path(*locator, *args, parent, &el);
            assert_eq!(got.as_deref().map_err(String::as_str), *expected, "{locator:?}({args:?})");
        }
        let namespaced = Element {
            qname: "target",
            local: "target",
            in_default_namespace: true,
            attrs: vec![("name".into(), "csv".into())],
        };
        assert_eq!(
            path(Locator::Match, Some("name"), "/_defaultNamespace:nlog", &namespaced).unwrap(),
            "/_defaultNamespace:nlog/_defaultNamespace:target[@name='csv']"
        );
        assert_eq!(parent_path(Locator::Match, Some("key"), "/c/s", &el).unwrap(), "/c/s");
        assert_eq!(parent_path(Locator::XPath, Some("/x/y"), "/c/s", &el).unwrap(), "/x/y");
    }
}
