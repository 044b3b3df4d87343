//! The XML Document Transform (XDT) engine: applies a transform document (`Web.Release.config`)
//! to a target document (`Web.config`) with Microsoft's semantics, as the reference's
//! `Microsoft.Web.XmlTransform` does, and with its log messages.
//!
//! The transform document mirrors the target: each element names the target elements at
//! the same place ([`locator`](super::locator) builds the XPath), and an
//! `xdt:Transform` attribute (namespace `http://schemas.microsoft.com/XML-Document-Transform`)
//! says what to do there:
//!
//! | transform | on | does |
//! |---|---|---|
//! | `Replace` | the first target | puts the transform element in its place |
//! | `Remove` | the first target | removes it |
//! | `RemoveAll` | every target | removes them |
//! | `Insert` | the first parent | appends the transform element to it |
//! | `InsertIfMissing` | the first parent | appends it unless a target exists |
//! | `InsertBefore(xpath)`, `InsertAfter(xpath)` | the first parent | puts it before/after the first element `xpath` selects |
//! | `SetAttributes(names)` | every target | sets the transform element's attributes (all, or those named) |
//! | `RemoveAttributes(names)` | every target | removes the attributes named (all when none are) |
//!
//! Transforms run in document order, a parent's before its children's, each one seeing what
//! the ones before it did. `xdt:` attributes and namespace declarations never reach the
//! target; `xdt:SupressWarnings="true"` turns an element's warnings into messages.
//!
//! No crate implements XDT, so this is written on the span-keeping XML layer of
//! [`crate::structured::xml`]: each transform turns into text edits of the target (a value
//! span, a start tag, an element with the whitespace the reference's formatter would drop
//! or add, see [`markup`](super::markup)), then the target is parsed again for the next
//! transform. Everything a transform does not touch stays byte for byte as it was.
//!
//! What the engine reports are [`Event`]s (messages, warnings, errors with the file, line
//! and column at fault), which the caller logs at the levels the deployment's variables ask
//! for. An error anywhere means the transform failed ([`Applied::logged_errors`]).

use std::ops::Range;

use super::locator::{self, Locator};
use super::markup::{self, ItemKind, Layout, NewElement, NsScope, StartTag, TagAttr, line_col};
use crate::structured::xml::dom::{self, Document, Kind, NodeRef, XmlSyntaxError};
use crate::structured::xml::xpath::Namespaces;

/// The namespace of the transform attributes.
pub(crate) const XDT_NAMESPACE: &str = "http://schemas.microsoft.com/XML-Document-Transform";

/// How much an [`Event`] matters before the deployment's variables map it to a log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// Progress (verbose).
    Message,
    /// A warning (an error when warnings are treated as errors).
    Warning,
    /// An error: the transform failed.
    Error,
}

/// Where in a file an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// The file, as the caller named it.
    pub(crate) file: String,
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column (of the element's or attribute's name).
    pub(crate) column: usize,
}

/// Something the engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) severity: Severity,
    pub(crate) location: Option<Location>,
    pub(crate) text: String,
}

/// A transform document, parsed.
#[derive(Debug)]
pub(crate) struct TransformFile {
    name: String,
    text: String,
    doc: Document,
}

/// What applying a transform did.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The target's new text (the same text when nothing changed).
    pub(crate) text: String,
    /// Whether the target still has a root element.
    pub(crate) has_root: bool,
    /// Whether an error was reported: the transform failed.
    pub(crate) logged_errors: bool,
    /// What happened, in order.
    pub(crate) events: Vec<Event>,
}

impl TransformFile {
    /// Parses a transform document; `name` is how messages name the file.
    ///
    /// # Errors
    /// The text is not well-formed XML.
    pub(crate) fn parse(name: impl Into<String>, text: String) -> Result<TransformFile, XmlSyntaxError> {
        let doc = dom::parse(&text)?;
        Ok(TransformFile { name: name.into(), text, doc })
    }

    fn elements(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.doc.nodes.len()).filter(|&i| matches!(self.doc.nodes[i].kind, Kind::Element { .. }))
    }

    fn tag(&self, element: usize) -> StartTag {
        match &self.doc.nodes[element].kind {
            Kind::Element { tag, .. } => StartTag::parse(&self.text[tag.clone()]),
            _ => StartTag::parse("<_>"),
        }
    }

    /// Whether the transform namespace is declared anywhere: without it nothing is a
    /// transform (the reference logs that and leaves the target alone).
    fn declares_transform_namespace(&self) -> bool {
        self.elements().any(|e| {
            let mut scope = NsScope::default();
            scope.declare_all(&self.tag(e));
            scope.bound.values().any(|v| v == XDT_NAMESPACE)
        })
    }

    /// Where an element's name starts.
    fn element_location(&self, element: usize) -> Location {
        let (line, column) = line_col(&self.text, self.doc.nodes[element].span.start + 1);
        Location { file: self.name.clone(), line, column }
    }

    /// Where the attribute `name` of `element` starts.
    fn attribute_location(&self, element: usize, name: &str) -> Location {
        let start = self.doc.nodes[element].span.start;
        let tag = self.tag(element);
        let mut offset = 1 + tag.name.len();
        for a in &tag.attrs {
            offset += a.leading.len();
            if a.name == name {
                break;
            }
            offset += a.head.len() + a.value.len() + 1;
        }
        let (line, column) = line_col(&self.text, start + offset);
        Location { file: self.name.clone(), line, column }
    }

    /// The value and qualified name of `element`'s attribute `local` in the transform namespace.
    fn xdt_attribute(&self, element: usize, local: &str) -> Option<(String, String)> {
        let Kind::Element { attrs, .. } = &self.doc.nodes[element].kind else { return None };
        attrs.iter().find(|a| a.local == local && a.ns.as_deref() == Some(XDT_NAMESPACE)).map(|a| {
            let qname = a.prefix.as_ref().map_or_else(|| a.local.clone(), |p| format!("{p}:{}", a.local));
            (a.value.clone(), qname)
        })
    }

    /// Whether `element`'s attribute `qname` is in the transform namespace.
    fn is_xdt_attribute(&self, element: usize, qname: &str) -> bool {
        let Kind::Element { attrs, .. } = &self.doc.nodes[element].kind else { return false };
        attrs.iter().any(|a| {
            a.ns.as_deref() == Some(XDT_NAMESPACE)
                && match &a.prefix {
                    Some(p) => {
                        qname.strip_prefix(p.as_str()).and_then(|r| r.strip_prefix(':')) == Some(a.local.as_str())
                    }
                    None => qname == a.local,
                }
        })
    }

    /// The namespace declarations in force at `element`.
    fn scope(&self, element: usize) -> NsScope {
        let mut chain = Vec::new();
        let mut at = Some(element);
        while let Some(n) = at {
            chain.push(n);
            at = self.doc.nodes[n].parent;
        }
        let mut scope = NsScope::default();
        for n in chain.into_iter().rev() {
            scope.declare_all(&self.tag(n));
        }
        scope
    }

    /// The prefixes the XPath of an element with the declarations `scope` in force may
    /// use: those, the default namespace as `_defaultNamespace` (the reference's name for it).
    fn namespaces(scope: &NsScope) -> Namespaces {
        let mut prefixes = std::collections::HashMap::new();
        for (prefix, uri) in scope.bound.clone() {
            if prefix.is_empty() {
                if !uri.is_empty() {
                    prefixes.insert("_defaultNamespace".to_string(), uri);
                }
            } else {
                prefixes.insert(prefix, uri);
            }
        }
        Namespaces { prefixes, unprefixed: None }
    }

    /// What the reference does before applying: a warning for each element in the
    /// transform namespace it does not know, and a fatal error for `xdt:Import` (custom
    /// transforms from .NET assemblies cannot be loaded here).
    pub(crate) fn preprocess(&self) -> (Vec<Event>, Option<Event>) {
        let mut events = Vec::new();
        if !self.declares_transform_namespace() {
            return (events, None);
        }
        for e in self.elements() {
            let Kind::Element { qname, local, ns, .. } = &self.doc.nodes[e].kind else { continue };
            if ns.as_deref() != Some(XDT_NAMESPACE) {
                continue;
            }
            let location = Some(self.element_location(e));
            if local == "Import" {
                let text = format!(
                    "{qname} is not supported by this Calamari: transforms from .NET assemblies cannot be loaded (Fatal syntax error)"
                );
                return (events, Some(Event { severity: Severity::Error, location, text }));
            }
            events.push(Event { severity: Severity::Warning, location, text: format!("Unknown tag '{qname}'") });
        }
        (events, None)
    }
}

/// An error inside the engine, with where it was found.
#[derive(Debug, Clone)]
struct XdtError {
    message: String,
    location: Option<Location>,
}

impl XdtError {
    fn new(message: impl Into<String>) -> XdtError {
        XdtError { message: message.into(), location: None }
    }

    /// Places the error at `location` unless it already has a place (the reference wraps
    /// an exception with the nearest node, keeping the innermost).
    fn at(mut self, location: Location) -> XdtError {
        if self.location.is_none() {
            self.location = Some(location);
        }
        self
    }
}

/// A transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Replace,
    Remove,
    RemoveAll,
    Insert,
    InsertIfMissing,
    InsertBefore,
    InsertAfter,
    SetAttributes,
    RemoveAttributes,
}

impl Transform {
    fn named(name: &str) -> Option<Transform> {
        Some(match name {
            "Replace" => Transform::Replace,
            "Remove" => Transform::Remove,
            "RemoveAll" => Transform::RemoveAll,
            "Insert" => Transform::Insert,
            "InsertIfMissing" => Transform::InsertIfMissing,
            "InsertBefore" => Transform::InsertBefore,
            "InsertAfter" => Transform::InsertAfter,
            "SetAttributes" => Transform::SetAttributes,
            "RemoveAttributes" => Transform::RemoveAttributes,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Transform::Replace => "Replace",
            Transform::Remove => "Remove",
            Transform::RemoveAll => "RemoveAll",
            Transform::Insert => "Insert",
            Transform::InsertIfMissing => "InsertIfMissing",
            Transform::InsertBefore => "InsertBefore",
            Transform::InsertAfter => "InsertAfter",
            Transform::SetAttributes => "SetAttributes",
            Transform::RemoveAttributes => "RemoveAttributes",
        }
    }

    /// Works on the targets' parents (and a missing parent is an error, not a warning).
    fn uses_parent(self) -> bool {
        matches!(
            self,
            Transform::Insert | Transform::InsertIfMissing | Transform::InsertBefore | Transform::InsertAfter
        )
    }

    /// Applies to every target, not just the first.
    fn all_targets(self) -> bool {
        matches!(self, Transform::SetAttributes | Transform::RemoveAttributes | Transform::RemoveAll)
    }
}

/// The engine's view of one transform element.
struct Context {
    element: usize,
    parent: Option<usize>,
    /// The namespace declarations in force at the element.
    scope: NsScope,
    namespaces: Namespaces,
    xpath: Option<Result<String, XdtError>>,
    parent_xpath: Option<Result<String, XdtError>>,
    /// How many targets (parents) the element had when first asked, as the reference
    /// caches them.
    targets: Option<usize>,
    parents: Option<usize>,
}

/// The target document as the transforms change it.
struct Target<'a> {
    name: &'a str,
    text: String,
    doc: Document,
    original: Document,
    eol: &'static str,
    edits: Vec<(Range<usize>, String)>,
}

impl Target<'_> {
    fn layout(&self) -> Layout<'_> {
        Layout::new(&self.doc, &self.text)
    }

    fn location(&self, element: usize) -> Location {
        let (line, column) = line_col(&self.text, self.doc.nodes[element].span.start + 1);
        Location { file: self.name.to_string(), line, column }
    }

    fn qname(&self, element: usize) -> &str {
        match &self.doc.nodes[element].kind {
            Kind::Element { qname, .. } => qname,
            _ => "",
        }
    }
}

/// The elements `xpath` selects in `doc`.
fn select_elements(
    doc: &Document,
    xpath: &str,
    namespaces: &Namespaces,
    from: NodeRef,
) -> Result<Vec<usize>, XdtError> {
    let nodes = doc
        .select_in(xpath, namespaces, from)
        .map_err(|e| XdtError::new(format!("The XPath '{xpath}' cannot be evaluated: {e}")))?;
    Ok(nodes.into_iter().filter_map(|n| markup::as_element(doc, n)).collect())
}

/// What the engine has reported so far.
#[derive(Default)]
struct Reporter {
    events: Vec<Event>,
    logged_errors: bool,
    suppress_warnings: bool,
}

impl Reporter {
    fn message(&mut self, text: impl Into<String>) {
        self.events.push(Event { severity: Severity::Message, location: None, text: text.into() });
    }

    fn warn(&mut self, location: Option<Location>, text: impl Into<String>) {
        if self.suppress_warnings {
            self.message(text);
        } else {
            self.events.push(Event { severity: Severity::Warning, location, text: text.into() });
        }
    }

    fn error(&mut self, error: XdtError) {
        self.logged_errors = true;
        self.events.push(Event { severity: Severity::Error, location: error.location, text: error.message });
    }
}

struct Engine<'a> {
    tf: &'a TransformFile,
    target: Target<'a>,
    report: Reporter,
    contexts: Vec<Context>,
}

/// Applies `transform` to `target_text`, the text of the file `target_name` (how messages
/// name it).
///
/// # Errors
/// The target is not well-formed XML.
pub(crate) fn apply(
    transform: &TransformFile,
    target_name: &str,
    target_text: &str,
) -> Result<Applied, XmlSyntaxError> {
    let doc = dom::parse(target_text)?;
    let original = dom::parse(target_text)?;
    let mut engine = Engine {
        tf: transform,
        target: Target {
            name: target_name,
            text: target_text.to_string(),
            doc,
            original,
            eol: crate::structured::encoding::line_ending(target_text),
            edits: Vec::new(),
        },
        report: Reporter::default(),
        contexts: Vec::new(),
    };
    if transform.declares_transform_namespace() {
        engine.transform_loop(None, NodeRef::Root);
    } else {
        engine.report.message(format!("The expected namespace {XDT_NAMESPACE} was not found in the transform file"));
    }
    let has_root =
        engine.target.doc.top.iter().any(|&i| matches!(engine.target.doc.nodes[i].kind, Kind::Element { .. }));
    Ok(Applied {
        text: engine.target.text,
        has_root,
        logged_errors: engine.report.logged_errors,
        events: engine.report.events,
    })
}

impl Engine<'_> {
    fn transform_loop(&mut self, parent: Option<usize>, node: NodeRef) {
        let children: Vec<usize> = self
            .tf
            .doc
            .children(node)
            .iter()
            .copied()
            .filter(|&i| matches!(self.tf.doc.nodes[i].kind, Kind::Element { .. }))
            .collect();
        for element in children {
            let context = self.contexts.len();
            let mut scope = parent.map(|p| self.contexts[p].scope.clone()).unwrap_or_default();
            scope.declare_all(&self.tf.tag(element));
            self.contexts.push(Context {
                element,
                parent,
                namespaces: TransformFile::namespaces(&scope),
                scope,
                xpath: None,
                parent_xpath: None,
                targets: None,
                parents: None,
            });
            // Deeply nested transform documents recurse here: grow the stack rather than
            // overflow it (the XML parser itself is not recursive).
            if let Err(e) = stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.handle_element(context)) {
                let location = self.tf.element_location(element);
                self.report.error(e.at(location));
            }
        }
    }

    fn handle_element(&mut self, context: usize) -> Result<(), XdtError> {
        let element = self.contexts[context].element;
        if let Some((value, qname)) = self.tf.xdt_attribute(element, "Transform") {
            let location = self.tf.attribute_location(element, &qname);
            let (name, args) = locator::parse_name_and_arguments(&value)
                .ok_or_else(|| XdtError::new(locator::BAD_ATTRIBUTE_VALUE).at(location.clone()))?;
            let transform = Transform::named(&name).ok_or_else(|| {
                let message = if name == "SetTokenizedAttributes" {
                    "The SetTokenizedAttributes transform is not supported by this Calamari".to_string()
                } else {
                    format!("Could not resolve '{name}' as a type of Transform")
                };
                XdtError::new(message).at(location.clone())
            })?;
            let saved = self.report.suppress_warnings;
            if let Some((flag, _)) = self.tf.xdt_attribute(element, "SupressWarnings") {
                self.report.suppress_warnings = match flag.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(XdtError::new(format!("String '{flag}' was not recognized as a valid Boolean."))),
                };
            }
            self.execute(context, transform, args.as_deref(), &location);
            self.commit(transform);
            self.report.suppress_warnings = saved;
        }
        self.transform_loop(Some(context), NodeRef::Node(element));
        Ok(())
    }

    fn execute(&mut self, context: usize, transform: Transform, args: Option<&str>, location: &Location) {
        let long = format!("{} (transform line {}, {})", transform.name(), location.line, location.column);
        let mut started = false;
        let result = self.execute_inner(context, transform, args, location, &long, &mut started);
        let failed = result.is_err();
        if let Err(e) = result {
            self.report.error(e.at(location.clone()));
        }
        if started {
            let verb = if failed { "Error during" } else { "Done executing" };
            self.report.message(format!("{verb} {}", transform.name()));
        } else {
            self.report.message(format!("Not executing {long}"));
        }
    }

    fn execute_inner(
        &mut self,
        context: usize,
        transform: Transform,
        args: Option<&str>,
        location: &Location,
        long: &str,
        started: &mut bool,
    ) -> Result<(), XdtError> {
        if !self.has_required_target(context, transform)? {
            return Ok(());
        }
        *started = true;
        self.report.message(format!("Executing {long}"));
        let xpath = self.xpath(context)?;
        self.report.message(format!("on {xpath}"));
        let targets = if transform.uses_parent() { self.target_parents(context)? } else { self.target_nodes(context)? };
        if transform.all_targets() {
            for &target in &targets {
                // An error on one target is reported and the others still get the transform.
                if let Err(e) = self.apply_once(context, transform, args, target, targets.len(), location) {
                    self.report.error(e);
                }
            }
            Ok(())
        } else {
            match targets.first() {
                Some(&first) => self.apply_once(context, transform, args, first, targets.len(), location),
                None => Ok(()),
            }
        }
    }

    // ---- paths and targets ----

    fn locator(&self, element: usize) -> Result<(Locator, Option<String>), XdtError> {
        let Some((value, qname)) = self.tf.xdt_attribute(element, "Locator") else {
            return Ok((Locator::Default, None));
        };
        let location = self.tf.attribute_location(element, &qname);
        let (name, args) = locator::parse_name_and_arguments(&value)
            .ok_or_else(|| XdtError::new(locator::BAD_ATTRIBUTE_VALUE).at(location.clone()))?;
        let locator = Locator::named(&name)
            .ok_or_else(|| XdtError::new(format!("Could not resolve '{name}' as a type of Locator")).at(location))?;
        Ok((locator, args))
    }

    fn locator_element(&self, element: usize) -> (String, String, bool, Vec<(String, String)>) {
        let Kind::Element { qname, local, ns, attrs, .. } = &self.tf.doc.nodes[element].kind else {
            return (String::new(), String::new(), false, Vec::new());
        };
        let in_default = ns.is_some() && !qname.contains(':');
        let attrs = attrs
            .iter()
            .map(|a| {
                let name = a.prefix.as_ref().map_or_else(|| a.local.clone(), |p| format!("{p}:{}", a.local));
                (name, a.value.clone())
            })
            .collect();
        (qname.clone(), local.clone(), in_default, attrs)
    }

    fn path(&mut self, context: usize, parent_path: bool) -> Result<String, XdtError> {
        let cached = if parent_path { &self.contexts[context].parent_xpath } else { &self.contexts[context].xpath };
        if let Some(result) = cached {
            return result.clone();
        }
        let result = self.compute_path(context, parent_path);
        let slot =
            if parent_path { &mut self.contexts[context].parent_xpath } else { &mut self.contexts[context].xpath };
        *slot = Some(result.clone());
        result
    }

    fn compute_path(&mut self, context: usize, parent_path: bool) -> Result<String, XdtError> {
        let parent = match self.contexts[context].parent {
            Some(p) => self.xpath(p)?,
            None => String::new(),
        };
        let element = self.contexts[context].element;
        let (locator, args) = self.locator(element)?;
        let (qname, local, in_default_namespace, attrs) = self.locator_element(element);
        let info = locator::Element { qname: &qname, local: &local, in_default_namespace, attrs };
        let built = if parent_path {
            locator::parent_path(locator, args.as_deref(), &parent, &info)
        } else {
            locator::path(locator, args.as_deref(), &parent, &info)
        };
        built.map_err(|m| XdtError::new(m).at(self.tf.element_location(element)))
    }

    fn xpath(&mut self, context: usize) -> Result<String, XdtError> {
        // Ancestors first, top down, so that a deep transform document does not recurse.
        let mut pending = Vec::new();
        let mut at = Some(context);
        while let Some(c) = at.filter(|&c| self.contexts[c].xpath.is_none()) {
            pending.push(c);
            at = self.contexts[c].parent;
        }
        for c in pending.into_iter().rev() {
            self.path(c, false)?;
        }
        self.path(context, false)
    }

    fn target_nodes(&mut self, context: usize) -> Result<Vec<usize>, XdtError> {
        let xpath = self.xpath(context)?;
        let found = select_elements(&self.target.doc, &xpath, &self.contexts[context].namespaces, NodeRef::Root)?;
        self.contexts[context].targets.get_or_insert(found.len());
        Ok(found)
    }

    fn target_parents(&mut self, context: usize) -> Result<Vec<usize>, XdtError> {
        if self.contexts[context].parent.is_none() {
            return Err(XdtError::new("The root element of the transform has no parent to insert into"));
        }
        let xpath = self.path(context, true)?;
        let found = select_elements(&self.target.doc, &xpath, &self.contexts[context].namespaces, NodeRef::Root)?;
        self.contexts[context].parents.get_or_insert(found.len());
        Ok(found)
    }

    fn target_count(&mut self, context: usize) -> Result<usize, XdtError> {
        match self.contexts[context].targets {
            Some(n) => Ok(n),
            None => Ok(self.target_nodes(context)?.len()),
        }
    }

    fn parent_count(&mut self, context: usize) -> Result<usize, XdtError> {
        match self.contexts[context].parents {
            Some(n) => Ok(n),
            None => Ok(self.target_parents(context)?.len()),
        }
    }

    /// Whether the transform has something to work on; when not, reports the highest
    /// element of the transform that matched nothing (a warning, or an error for the
    /// transforms that insert).
    fn has_required_target(&mut self, context: usize, transform: Transform) -> Result<bool, XdtError> {
        let count = if transform.uses_parent() { self.parent_count(context)? } else { self.target_count(context)? };
        if count > 0 {
            return Ok(true);
        }
        let mut failed = context;
        while let Some(parent) = self.contexts[failed].parent {
            let stop = if transform.uses_parent() {
                self.path(parent, true)?.is_empty() || self.parent_count(parent)? != 0
            } else {
                self.target_count(parent)? != 0
            };
            if stop {
                break;
            }
            failed = parent;
        }
        let xpath = self.xpath(failed)?;
        let existed = select_elements(&self.target.original, &xpath, &self.contexts[context].namespaces, NodeRef::Root)
            .is_ok_and(|found| !found.is_empty());
        let message = if existed {
            format!(
                "'{xpath}' did not find a match, because matching nodes in the source document were modified or removed by a previous transform"
            )
        } else {
            format!("No element in the source document matches '{xpath}'")
        };
        let location = self.tf.element_location(self.contexts[failed].element);
        if transform.uses_parent() {
            return Err(XdtError::new(message).at(location));
        }
        self.report.warn(Some(location), message);
        Ok(false)
    }

    // ---- applying ----

    fn apply_once(
        &mut self,
        context: usize,
        transform: Transform,
        args: Option<&str>,
        target: usize,
        target_count: usize,
        location: &Location,
    ) -> Result<(), XdtError> {
        let (line, column) = line_col(&self.target.text, self.target.doc.nodes[target].span.start + 1);
        self.report
            .message(format!("Applying to '{}' element (source line {line}, {column})", self.target.qname(target)));
        let element = self.contexts[context].element;
        let expect_no_arguments = |report: &mut Reporter| {
            if args.is_some_and(|a| !a.is_empty()) {
                report
                    .warn(Some(location.clone()), format!("{} does not expect arguments; ignoring", transform.name()));
            }
        };
        let warn_if_multiple = |report: &mut Reporter| {
            if target_count > 1 {
                report.warn(
                    Some(location.clone()),
                    format!(
                        "Found multiple target elements, but the '{}' Transform only applies to the first match",
                        transform.name()
                    ),
                );
            }
        };
        let transform_name = self.tf.doc.name(NodeRef::Node(element), false);
        match transform {
            Transform::Remove | Transform::RemoveAll => {
                if transform == Transform::Remove {
                    warn_if_multiple(&mut self.report);
                }
                expect_no_arguments(&mut self.report);
                let span = self.target.layout().removal_span(target);
                self.target.edits.push((span, String::new()));
                self.report.message(format!("Removed '{}' element", self.target.qname(target)));
            }
            Transform::Replace => {
                expect_no_arguments(&mut self.report);
                warn_if_multiple(&mut self.report);
                let edit = self.replace(target, element);
                self.target.edits.push(edit);
                self.report.message(format!("Replaced '{}' element", self.target.qname(target)));
            }
            Transform::Insert | Transform::InsertIfMissing => {
                expect_no_arguments(&mut self.report);
                if transform == Transform::Insert || self.target_nodes(context)?.is_empty() {
                    let edit = self.append(target, element);
                    self.target.edits.push(edit);
                    self.report.message(format!("Inserted '{transform_name}' element"));
                }
            }
            Transform::InsertBefore | Transform::InsertAfter => {
                let sibling = self.sibling(transform, args, target)?;
                let edit = if transform == Transform::InsertBefore {
                    self.insert_before(sibling, element)
                } else {
                    self.insert_after(sibling, element)
                };
                self.target.edits.push(edit);
                self.report.message(format!("Inserted '{transform_name}' element"));
            }
            Transform::SetAttributes => {
                let attrs = self.transform_attributes(element, args, location);
                for (qname, ..) in &attrs {
                    let local = dom::split_qname(qname).1;
                    self.report.message(format!("Set '{local}' attribute"));
                }
                if attrs.is_empty() {
                    self.report.warn(Some(location.clone()), "No attributes found to set");
                } else {
                    self.report.message(format!("Set {} attributes", attrs.len()));
                    let edit = self.target.layout().set_attributes(target, &attrs, true);
                    self.target.edits.push(edit);
                }
            }
            Transform::RemoveAttributes => {
                let names = self.attributes_to_remove(target, args, location)?;
                for name in &names {
                    self.report.message(format!("Removed '{name}' attribute"));
                }
                if names.is_empty() {
                    let at = self.target.location(target);
                    self.report.warn(Some(at), "No attributes found to remove");
                } else {
                    self.report.message(format!("Removed {} attributes", names.len()));
                    let edit = self.target.layout().remove_attributes(target, &names);
                    self.target.edits.push(edit);
                }
            }
        }
        Ok(())
    }

    /// The element `InsertBefore(xpath)`/`InsertAfter(xpath)` puts the new one next to.
    fn sibling(&mut self, transform: Transform, args: Option<&str>, parent: usize) -> Result<usize, XdtError> {
        let args = args.map(locator::split_arguments).unwrap_or_default();
        let xpath = match args.as_slice() {
            [] => return Err(XdtError::new(format!("{} requires an XPath argument", transform.name()))),
            [one] => one.clone(),
            _ => return Err(XdtError::new(format!("Too many arguments to {}", transform.name()))),
        };
        // Evaluated from the parent, with no namespace prefixes (as the reference does).
        let nodes = self
            .target
            .doc
            .select_in(&xpath, &Namespaces::default(), NodeRef::Node(parent))
            .map_err(|e| XdtError::new(format!("The XPath '{xpath}' cannot be evaluated: {e}")))?;
        let Some(&first) = nodes.first() else {
            return Err(XdtError::new(format!("No element in the source document matches '{xpath}'")));
        };
        let sibling = markup::as_element(&self.target.doc, first)
            .ok_or_else(|| XdtError::new(format!("'{xpath}' does not evaluate to an element")))?;
        if self.target.doc.nodes[sibling].parent.is_none() {
            return Err(XdtError::new(format!(
                "{} cannot put an element next to the root element '{xpath}': a document has one root",
                transform.name()
            )));
        }
        Ok(sibling)
    }

    /// The transform element as it lands in the target under `parent`, at a level indented
    /// `own`, next to the siblings before `around.0` and from `around.1` on, after
    /// `line_before` on its line.
    fn new_element(
        &self,
        element: usize,
        parent: Option<usize>,
        own: &str,
        around: (usize, usize),
        line_before: &str,
    ) -> String {
        let layout = self.target.layout();
        let line_break = layout.attribute_line_break(parent, around, own);
        let step = layout.step_below(parent, own);
        let scope = layout.scope(parent);
        let tf = self.tf;
        let drop = |el: usize, a: &TagAttr| tf.is_xdt_attribute(el, &a.name);
        let resolve = |el: usize, prefix: Option<&str>| {
            let uri = tf.scope(el).get(prefix.unwrap_or_default()).to_string();
            (!uri.is_empty()).then_some(uri)
        };
        let writer =
            NewElement { doc: &tf.doc, text: &tf.text, drop_attribute: &drop, resolve: &resolve, eol: self.target.eol };
        let mut out = line_before.to_string();
        let start = out.len();
        writer.write(&mut out, element, own, &step, &scope, &line_break);
        out.split_off(start)
    }

    fn append(&self, parent: usize, element: usize) -> (Range<usize>, String) {
        let render =
            |own: &str, around: (usize, usize), line: &str| self.new_element(element, Some(parent), own, around, line);
        self.target.layout().append_child(parent, &render)
    }

    fn insert_before(&self, sibling: usize, element: usize) -> (Range<usize>, String) {
        let layout = self.target.layout();
        let parent = layout.parent(sibling);
        let at = self.target.doc.nodes[sibling].span.start;
        let (prev, _) = layout.neighbours(sibling);
        let indent = layout.level_indent(parent, at);
        let lead = if ItemKind::needs_indent_after(prev.map(|p| p.kind)) { indent.clone() } else { String::new() };
        let line = format!("{}{lead}", self.target.layout().line_before(at));
        let new = self.new_element(element, parent, &indent, (at, at), &line);
        (at..at, format!("{lead}{new}{indent}"))
    }

    fn insert_after(&self, sibling: usize, element: usize) -> (Range<usize>, String) {
        let layout = self.target.layout();
        let parent = layout.parent(sibling);
        let at = self.target.doc.nodes[sibling].span.end;
        let (_, next) = layout.neighbours(sibling);
        let indent = layout.level_indent(parent, at);
        let tail = self.tail_after_new(parent, next.map(|n| n.kind), &indent);
        let line = format!("{}{indent}", self.target.layout().line_before(at));
        let new = self.new_element(element, parent, &indent, (at, at), &line);
        (at..at, format!("{indent}{new}{tail}"))
    }

    fn replace(&self, target: usize, element: usize) -> (Range<usize>, String) {
        let layout = self.target.layout();
        let parent = layout.parent(target);
        let span = self.target.doc.nodes[target].span.clone();
        let (prev, next) = layout.neighbours(target);
        let indent = layout.level_indent(parent, span.start);
        let lead = if ItemKind::needs_indent_after(prev.map(|p| p.kind)) { indent.clone() } else { String::new() };
        let tail = self.tail_after_new(parent, next.map(|n| n.kind), &indent);
        let line = format!("{}{lead}", self.target.layout().line_before(span.start));
        let new = self.new_element(element, parent, &indent, (span.start, span.end), &line);
        (span, format!("{lead}{new}{tail}"))
    }

    /// What follows an added element: the indentation of an element or comment after it,
    /// or of the parent's end tag when it is the last child.
    fn tail_after_new(&self, parent: Option<usize>, next: Option<ItemKind>, indent: &str) -> String {
        match (next, parent) {
            (Some(kind), _) if kind.indented_when_after_new() => indent.to_string(),
            (None, Some(p)) => self.target.layout().own_indent(p),
            _ => String::new(),
        }
    }

    /// The attributes `SetAttributes` sets: the transform element's own (its `xdt:`
    /// attributes and namespace declarations aside), or those the arguments name, with a
    /// warning for each argument that names none. As `(qualified name, namespace, value)`.
    fn transform_attributes(
        &mut self,
        element: usize,
        args: Option<&str>,
        location: &Location,
    ) -> Vec<(String, Option<String>, String)> {
        let Kind::Element { attrs, .. } = &self.tf.doc.nodes[element].kind else { return Vec::new() };
        let all: Vec<(String, String, Option<String>, String)> = attrs
            .iter()
            .filter(|a| a.ns.as_deref() != Some(XDT_NAMESPACE))
            .map(|a| {
                let qname = a.prefix.as_ref().map_or_else(|| a.local.clone(), |p| format!("{p}:{}", a.local));
                (qname, a.local.clone(), a.ns.clone(), a.value.clone())
            })
            .collect();
        let names = args.map(locator::split_arguments).unwrap_or_default();
        let selected: Vec<_> = if names.is_empty() {
            all
        } else {
            for name in &names {
                if !all.iter().any(|(_, local, ..)| name == "*" || local == name) {
                    self.report.warn(Some(location.clone()), format!("Argument '{name}' did not match any attributes"));
                }
            }
            all.into_iter().filter(|(_, local, ..)| names.iter().any(|n| n == "*" || n == local)).collect()
        };
        selected.into_iter().map(|(qname, _, ns, value)| (qname, ns, value)).collect()
    }

    /// The attributes of `target` that `RemoveAttributes` removes (all when no argument
    /// names any), by qualified name, with a warning for each argument that names none.
    fn attributes_to_remove(
        &mut self,
        target: usize,
        args: Option<&str>,
        location: &Location,
    ) -> Result<Vec<String>, XdtError> {
        let Kind::Element { attrs, .. } = &self.target.doc.nodes[target].kind else { return Ok(Vec::new()) };
        let names = args.map(locator::split_arguments).unwrap_or_default();
        let qname = |a: &dom::Attr| a.prefix.as_ref().map_or_else(|| a.local.clone(), |p| format!("{p}:{}", a.local));
        if names.is_empty() {
            return Ok(attrs.iter().map(qname).collect());
        }
        if let Some(prefixed) = names.iter().find(|n| n.contains(':')) {
            return Err(XdtError::new(format!(
                "The XPath '@{prefixed}' cannot be evaluated: Namespace prefix '{}' is not defined",
                dom::split_qname(prefixed).0.unwrap_or_default()
            )));
        }
        let matches = |a: &dom::Attr, n: &str| n == "*" || (a.ns.is_none() && a.local == n);
        let mut warnings = Vec::new();
        for name in &names {
            if !attrs.iter().any(|a| matches(a, name)) {
                warnings.push(format!("Argument '{name}' did not match any attributes"));
            }
        }
        let removed = attrs.iter().filter(|a| names.iter().any(|n| matches(a, n))).map(qname).collect();
        for w in warnings {
            self.report.warn(Some(location.clone()), w);
        }
        Ok(removed)
    }

    /// Applies the edits of the transform just executed and reads the target again.
    fn commit(&mut self, transform: Transform) {
        let mut edits = std::mem::take(&mut self.target.edits);
        if edits.is_empty() {
            return;
        }
        edits.sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
        let text = &self.target.text;
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        let mut last_removed = false;
        for (span, replacement) in edits {
            if span.start < pos {
                // Overlapping removals (neighbouring elements, each with its whitespace)
                // join; anything inside a replaced span went with it.
                if replacement.is_empty() && last_removed && span.end > pos {
                    pos = span.end;
                }
                continue;
            }
            out.push_str(&text[pos..span.start]);
            out.push_str(&replacement);
            last_removed = replacement.is_empty();
            pos = span.end;
        }
        out.push_str(&text[pos..]);
        match dom::parse_allowing_no_root(&out) {
            Ok(doc) => {
                self.target.text = out;
                self.target.doc = doc;
            }
            Err(e) => self.report.error(XdtError::new(format!(
                "{} would leave '{}' malformed ({e}); it was not applied",
                transform.name(),
                self.target.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
