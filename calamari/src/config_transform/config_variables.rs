//! .NET configuration variables (the reference's `ConfigurationVariablesBehaviour` and
//! `ConfigurationVariablesReplacer`): in every `*.config` file of the package, a variable
//! named like
//!
//! * the `key` of an `appSettings/add` sets its `value` attribute,
//! * the `name` of a `connectionStrings/add` sets its `connectionString` attribute,
//! * the `name` of an `applicationSettings//setting` sets the text of its `value` child,
//!
//! names compared ignoring case, elements found by local name whatever their namespace. A
//! missing attribute or `value` element is added. Transform files the transforms
//! convention applied are left alone.
//!
//! The reference re-serialises each changed file with indentation; here only the values
//! change (see [`markup`](super::markup)), and the files are written together once all
//! are done.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::markup::{Layout, NsScope, StartTag};
use super::{Error, Store, matching_files, syntax_position, variable_names as vn};
use crate::log::Log;
use crate::structured::xml::dom::{self, Document, Kind, NodeRef};
use crate::structured::xml::xpath::Namespaces;
use crate::variables::VariableDictionary;
use crate::variables::dictionary::fold_name;
use crate::xml_escape::escape_text;

/// What one setting gets.
struct Change {
    /// The variable's place in the dictionary, then the kind of setting, then the element's
    /// place in the file: the order the reference logs changes in.
    order: (usize, usize, usize),
    element: usize,
    kind: SettingKind,
    name: String,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SettingKind {
    AppSetting,
    ConnectionString,
    ApplicationSetting,
}

/// The settings a file holds: `(kind, XPath of the elements, key attribute)`.
const SETTINGS: [(SettingKind, &str, &str); 3] = [
    (SettingKind::AppSetting, "//*[local-name()='appSettings']/*[local-name()='add']", "key"),
    (SettingKind::ConnectionString, "//*[local-name()='connectionStrings']/*[local-name()='add']", "name"),
    (SettingKind::ApplicationSetting, "//*[local-name()='applicationSettings']//*[local-name()='setting']", "name"),
];

/// Replaces `appSettings`, `connectionStrings` and `applicationSettings` values in the
/// `*.config` files under `dir` (and `Octopus.Action.AdditionalPaths`), when
/// `Octopus.Features.ConfigurationVariables` and
/// `Octopus.Action.Package.AutomaticallyUpdateAppSettingsAndConnectionStrings` are on (the
/// caller checks).
///
/// # Errors
/// [`Error::ConfigNotXml`] naming a file that is not XML (unless
/// `Octopus.Action.Package.IgnoreVariableReplacementErrors` is set; it is logged then);
/// [`Error::Variables`] for a value that cannot be evaluated; [`Error::Io`]. Nothing is
/// written then.
pub fn replace_configuration_variables(
    dir: &Path,
    variables: &VariableDictionary,
    log: &Log,
) -> Result<(), crate::Error> {
    let applied_transforms = variables.get_strings(vn::APPLIED_TRANSFORMS, &['|'])?;
    log.verbose("Looking for appSettings, applicationSettings, and connectionStrings in any .config files");
    let ignore = variables.get_flag(vn::IGNORE_REPLACEMENT_ERRORS, false)?;
    if ignore {
        log.info(format!(
            "Variable replacement errors are suppressed because the variable {} has been set.",
            vn::IGNORE_REPLACEMENT_ERRORS
        ));
    }
    let roots = crate::variables::target_roots(dir, variables)?;
    let files = matching_files(&roots, &["*.config".to_string()]);
    for stale in crate::fs::remove_stale_temp_files_beside(&files)? {
        log.verbose(format!("Removed '{}', left by an interrupted replacement", stale.display()));
    }
    let order: HashMap<String, (usize, &str)> =
        variables.names().enumerate().map(|(i, n)| (fold_name(n), (i, n))).collect();
    let mut store = Store::default();
    for file in &files {
        if applied_transforms.iter().any(|t| Path::new(t) == file) {
            log.verbose(format!(
                "File '{}' was interpreted as an XML configuration transform; variable substitution won't be attempted.",
                file.display()
            ));
            continue;
        }
        if let Err(e) = modify(file, variables, &order, &mut store, log) {
            match e {
                Error::ConfigNotXml { .. } if ignore => log.info(format!("Ignoring variable replacement error: {e}")),
                e => {
                    log.error(format!("Exception while replacing configuration-variables in: {}", file.display()));
                    return Err(e.into());
                }
            }
        }
    }
    store.commit(log)?;
    Ok(())
}

fn modify(
    file: &Path,
    variables: &VariableDictionary,
    order: &HashMap<String, (usize, &str)>,
    store: &mut Store,
    log: &Log,
) -> Result<(), Error> {
    let text = store.text(file)?;
    let doc = dom::parse(&text).map_err(|syntax| Error::ConfigNotXml {
        path: file.to_path_buf(),
        position: syntax_position(&text, &syntax),
        syntax,
    })?;
    let changes = changes(&doc, variables, order)?;
    if changes.is_empty() {
        log.info(format!(
            "No matching appSetting, applicationSetting, nor connectionString names were found in: {}",
            file.display()
        ));
        return Ok(());
    }
    log.info(format!("Updating appSettings, applicationSettings, and connectionStrings in: {}", file.display()));
    for change in &changes {
        log.verbose(format!("Setting '{}' = '{}'", change.name, change.value));
    }
    let layout = Layout::new(&doc, &text);
    let mut edits: Vec<(Range<usize>, String)> = changes.iter().map(|c| edit(&layout, c)).collect();
    edits.sort_by_key(|(span, _)| span.start);
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (span, replacement) in edits {
        if span.start < pos {
            continue;
        }
        out.push_str(&text[pos..span.start]);
        out.push_str(&replacement);
        pos = span.end;
    }
    out.push_str(&text[pos..]);
    store.set(file, out);
    Ok(())
}

/// The settings `variables` name in `doc`, in the order the reference applies them.
fn changes(
    doc: &Document,
    variables: &VariableDictionary,
    order: &HashMap<String, (usize, &str)>,
) -> Result<Vec<Change>, Error> {
    let namespaces = Namespaces::default();
    let mut out = Vec::new();
    for (rank, (kind, xpath, key)) in SETTINGS.into_iter().enumerate() {
        let selected = doc.select_in(xpath, &namespaces, NodeRef::Root).unwrap_or_default();
        for (position, node) in selected.into_iter().enumerate() {
            let NodeRef::Node(element) = node else { continue };
            let Kind::Element { attrs, .. } = &doc.nodes[element].kind else { continue };
            let Some(name) = attrs.iter().find(|a| a.local == key && a.ns.is_none()).map(|a| a.value.as_str()) else {
                continue;
            };
            let Some(&(index, variable)) = order.get(&fold_name(name)) else { continue };
            let value = variables.get(variable)?.unwrap_or_default();
            out.push(Change { order: (index, rank, position), element, kind, name: variable.to_string(), value });
        }
    }
    out.sort_by_key(|c| c.order);
    Ok(out)
}

/// The edit that gives one setting its value.
fn edit(layout: &Layout<'_>, change: &Change) -> (Range<usize>, String) {
    let attribute = match change.kind {
        SettingKind::AppSetting => "value",
        SettingKind::ConnectionString => "connectionString",
        SettingKind::ApplicationSetting => return set_value_element(layout, change),
    };
    layout.set_attributes(change.element, &[(attribute.to_string(), None, change.value.clone())], false)
}

/// The first `value` child of a `setting` takes the text; a `setting` without one gets one
/// (in no namespace, as the reference's `new XElement("value")`).
fn set_value_element(layout: &Layout<'_>, change: &Change) -> (Range<usize>, String) {
    let doc = layout.doc;
    let value_child = doc.nodes[change.element]
        .children
        .iter()
        .copied()
        .find(|&c| matches!(&doc.nodes[c].kind, Kind::Element { local, .. } if local == "value"));
    let escaped = escape_text(&change.value);
    match value_child.map(|c| &doc.nodes[c].kind) {
        Some(Kind::Element { content: Some(content), .. }) => (content.clone(), escaped),
        Some(Kind::Element { tag, qname, .. }) => {
            let mut open = StartTag::parse(&layout.text[tag.clone()]);
            open.self_closing = false;
            open.trailing.clear();
            (tag.clone(), format!("{}{escaped}</{qname}>", open.render()))
        }
        _ => {
            let scope: NsScope = layout.scope(Some(change.element));
            let undeclare = if scope.get("").is_empty() { "" } else { " xmlns=\"\"" };
            let render =
                |_own: &str, _around: (usize, usize), _line: &str| format!("<value{undeclare}>{escaped}</value>");
            layout.append_child(change.element, &render)
        }
    }
}
