//! .NET configuration files: XML configuration transforms (XDT,
//! `Octopus.Features.ConfigurationTransforms`) and configuration variables
//! (`appSettings`/`connectionStrings`/`applicationSettings`,
//! `Octopus.Features.ConfigurationVariables`), the two conventions `deploy-package` runs
//! after substituting variables in files and before structured configuration variables,
//! in that order (the reference's `DeployPackageCommand`).
//!
//! [`apply_configuration_transforms`] is the reference's `ConfigurationTransformsBehaviour`: it searches
//! the package (and `Octopus.Action.AdditionalPaths`) for `*.config` files (and the
//! extensions explicit definitions name), and for each one applies, in order, the
//! transforms of `Octopus.Action.Package.AdditionalXmlConfigurationTransforms` and, with
//! `Octopus.Action.Package.AutomaticallyRunConfigurationTransformationFiles`, `Release`,
//! the environment's and the tenant's ([`locate_files`] finds the files), logging
//! `Transforming '<file>' using '<transform>'.` for each. [`xdt`] applies one transform.
//! The transform files applied are recorded in `OctopusAppliedXmlConfigTransforms`, which
//! [`replace_configuration_variables`] ([`config_variables`]) skips.
//!
//! What a transform reports is logged at the level the variables ask for
//! ([`TransformOptions`]): warnings (a transform that matches nothing) fail the deployment
//! unless `Octopus.Action.Package.TreatConfigTransformationWarningsAsErrors` is `False`;
//! `Octopus.Action.Package.IgnoreConfigTransformationErrors` makes them information and
//! makes a file that is not XML a warning that skips it.
//!
//! Unlike the reference, which saves each file as soon as one transform is applied,
//! re-serialising the whole document, every file is edited in place (see [`markup`]: only
//! what a transform changes is rewritten, encoding and BOM kept) and nothing is written
//! until every transform has succeeded: a failure leaves the package as it was. Each file
//! is then replaced atomically.

mod config_variables;
pub(crate) mod locate_files;
mod locator;
mod markup;
mod xdt;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::log::Log;
use crate::structured::xml::XmlSyntaxError;
use crate::text_encoding::TextEncoding;
use crate::variables::{VariableDictionary, names};
pub use config_variables::replace_configuration_variables;
use locate_files::Definition;
use xdt::{Event, Severity, TransformFile};

/// Variables the two conventions read and write.
pub(crate) mod variable_names {
    /// Run `Release`, environment and tenant transforms by name.
    pub(crate) const AUTOMATIC_TRANSFORMS: &str =
        "Octopus.Action.Package.AutomaticallyRunConfigurationTransformationFiles";
    /// Explicit transform definitions (`a.config => b.config`), separated by commas or lines.
    pub(crate) const ADDITIONAL_TRANSFORMS: &str = "Octopus.Action.Package.AdditionalXmlConfigurationTransforms";
    /// Log why each transform file was or was not used.
    pub(crate) const DIAGNOSTICS: &str = "Octopus.Action.Package.EnableDiagnosticsConfigTransformationLogging";
    /// Treat transform warnings as errors (default true).
    pub(crate) const WARNINGS_AS_ERRORS: &str = "Octopus.Action.Package.TreatConfigTransformationWarningsAsErrors";
    /// Downgrade transform errors to warnings and warnings to information.
    pub(crate) const IGNORE_ERRORS: &str = "Octopus.Action.Package.IgnoreConfigTransformationErrors";
    /// Do not log the transforms' progress.
    pub(crate) const SUPPRESS_LOGGING: &str = "Octopus.Action.Package.SuppressConfigTransformationLogging";
    /// The transform files applied, `|`-separated (set by the transforms convention).
    pub(crate) const APPLIED_TRANSFORMS: &str = "OctopusAppliedXmlConfigTransforms";
    /// Replace `appSettings`, `connectionStrings` and `applicationSettings` values.
    pub(crate) const UPDATE_APP_SETTINGS: &str =
        "Octopus.Action.Package.AutomaticallyUpdateAppSettingsAndConnectionStrings";
    /// Log a configuration file that is not XML instead of failing.
    pub(crate) const IGNORE_REPLACEMENT_ERRORS: &str = "Octopus.Action.Package.IgnoreVariableReplacementErrors";
}

use variable_names as vn;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A variable's value could not be evaluated (a recursive definition).
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// A definition of `Octopus.Action.Package.AdditionalXmlConfigurationTransforms` has
    /// `=>` but no target.
    #[error(
        "The transform definition '{definition}' in Octopus.Action.Package.AdditionalXmlConfigurationTransforms has no target: expected 'transform.config => target.config'"
    )]
    BadDefinition {
        /// The definition as written.
        definition: String,
    },
    /// A transform file is not well-formed XML.
    #[error("The XML transform file '{}' is not valid XML ({}): {syntax}", path.display(), at(*position))]
    TransformNotXml {
        /// The transform file.
        path: PathBuf,
        /// The line and column of the error, when known.
        position: Option<(usize, usize)>,
        /// What the parser said.
        #[source]
        syntax: XmlSyntaxError,
    },
    /// A configuration file is not well-formed XML.
    #[error("The XML configuration file '{}' is not valid XML ({}): {syntax}", path.display(), at(*position))]
    ConfigNotXml {
        /// The configuration file.
        path: PathBuf,
        /// The line and column of the error, when known.
        position: Option<(usize, usize)>,
        /// What the parser said.
        #[source]
        syntax: XmlSyntaxError,
    },
    /// A transform reported errors (or warnings treated as errors): the reference's wording.
    #[error("The XML configuration file {} failed with transformation file {}.", config.display(), transform.display())]
    TransformFailed {
        /// The configuration file.
        config: PathBuf,
        /// The transform file.
        transform: PathBuf,
    },
}

fn at(position: Option<(usize, usize)>) -> String {
    position.map_or_else(|| "at the end".to_string(), |(line, column)| format!("line {line}, column {column}"))
}

/// The line and column of a syntax error in `text`.
fn syntax_position(text: &str, syntax: &XmlSyntaxError) -> Option<(usize, usize)> {
    use XmlSyntaxError as E;
    let pos = match syntax {
        E::Reader { position, .. } => usize::try_from(*position).ok()?,
        E::Attribute { position, .. }
        | E::AttributeValue { position, .. }
        | E::Text { position, .. }
        | E::MultipleRoots { position }
        | E::UndeclaredPrefix { position, .. }
        | E::UnexpectedEndTag { position }
        | E::DataAtRootLevel { position } => *position,
        E::UnclosedElements | E::MissingRoot => return None,
    };
    Some(markup::line_col(text, pos.min(text.len())))
}

/// How transform events are logged (the reference's `TransformLoggingOptions`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransformOptions {
    warnings_as_errors: bool,
    warnings_as_info: bool,
    errors_as_warnings: bool,
    quiet: bool,
}

impl TransformOptions {
    fn from_variables(variables: &VariableDictionary) -> Result<TransformOptions, Error> {
        let treat = variables.get_flag(vn::WARNINGS_AS_ERRORS, true)?;
        let ignore = variables.get_flag(vn::IGNORE_ERRORS, false)?;
        Ok(TransformOptions {
            warnings_as_errors: treat && !ignore,
            warnings_as_info: ignore,
            errors_as_warnings: ignore,
            quiet: variables.get_flag(vn::SUPPRESS_LOGGING, false)?,
        })
    }

    /// The reference's lines saying which of these apply, logged before each transform.
    fn log_setup(self, log: &Log) {
        if self.quiet {
            log.verbose(format!(
                "Verbose XML transformation logging has been turned off because the variable {} has been set to true.",
                vn::SUPPRESS_LOGGING
            ));
        }
        if self.errors_as_warnings {
            log.verbose(format!(
                "XML transformation warnings will be downgraded to information because the variable {} has been set to true.",
                vn::IGNORE_ERRORS
            ));
            log.verbose(format!(
                "XML transformation exceptions will be downgraded to warnings because the variable {} has been set to true.",
                vn::IGNORE_ERRORS
            ));
        }
        if self.warnings_as_errors {
            log.verbose(format!(
                "Warning will be elevated to errors. Prevent this by adding the variable {} and setting it to false.",
                vn::WARNINGS_AS_ERRORS
            ));
        }
    }
}

/// Logs transform events as the options say, remembering whether an error was logged.
struct EventLog<'a> {
    options: TransformOptions,
    log: &'a Log,
    error: bool,
}

impl EventLog<'_> {
    fn warning(&mut self, text: &str) {
        if self.options.warnings_as_errors {
            self.log.error(text);
            self.error = true;
        } else if self.options.warnings_as_info {
            self.log.info(text);
        } else {
            self.log.warn(text);
        }
    }

    fn error(&mut self, text: &str) {
        if self.options.errors_as_warnings {
            self.log.warn(text);
        } else {
            self.log.error(text);
            self.error = true;
        }
    }

    fn event(&mut self, event: &Event) {
        match event.severity {
            Severity::Message => {
                if !self.options.quiet {
                    self.log.verbose(&event.text);
                }
            }
            Severity::Warning => {
                if let Some(l) = &event.location {
                    self.warning(&format!("File {}, line {}, position {}: ", l.file, l.line, l.column));
                }
                self.warning(&event.text);
            }
            Severity::Error => {
                if let Some(l) = &event.location {
                    self.error(&format!("File {}, line {}, position {}:", l.file, l.line, l.column));
                }
                self.error(&event.text);
            }
        }
    }
}

/// A file read by a convention, with the text it has once the convention's edits so far
/// are applied. Nothing reaches the disk before [`Store::commit`].
struct Pending {
    original: Vec<u8>,
    encoding: TextEncoding,
    text: String,
}

/// The files a convention reads and changes, written together at the end.
#[derive(Default)]
struct Store {
    files: BTreeMap<PathBuf, Pending>,
}

impl Store {
    /// The text of `path`, with the edits so far (read in its own encoding the first time).
    fn text(&mut self, path: &Path) -> Result<String, Error> {
        if let Some(p) = self.files.get(path) {
            return Ok(p.text.clone());
        }
        let original = crate::fs::read(path)?;
        let (text, encoding) = crate::structured::xml::decode_declared(&original)
            .unwrap_or_else(|| crate::structured::encoding::decode(&original));
        self.files.insert(path.to_path_buf(), Pending { original, encoding, text: text.clone() });
        Ok(text)
    }

    /// Records the new text of `path` (read before with [`Store::text`]).
    fn set(&mut self, path: &Path, text: String) {
        if let Some(p) = self.files.get_mut(path) {
            p.text = text;
        }
    }

    /// Writes every file whose bytes changed, in its encoding and with its BOM (as UTF-8
    /// when the encoding cannot hold the new text), each replaced atomically.
    fn commit(self, log: &Log) -> Result<usize, Error> {
        let mut written = 0;
        for (path, p) in self.files {
            let encoded = crate::structured::encode_for(crate::structured::Format::Xml, &p.text, &p.encoding);
            if encoded.fell_back_to_utf8 {
                log.warn(crate::text_encoding::unrepresentable_warning(&path));
            }
            if encoded.bytes != p.original {
                crate::fs::replace_keeping_mode(&path, &encoded.bytes)?;
                written += 1;
            }
        }
        Ok(written)
    }
}

/// The files under `roots` (recursively, links not followed) whose names match one of the
/// .NET search `patterns`, each root's files nearest first, each file once.
fn matching_files(roots: &[PathBuf], patterns: &[String]) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = Vec::new();
    for root in roots {
        let mut found: Vec<PathBuf> = walkdir::WalkDir::new(root)
            .follow_links(false)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| patterns.iter().any(|p| locate_files::wildcard_match(n, p)))
            })
            .map(walkdir::DirEntry::into_path)
            .collect();
        // As .NET enumerates: a directory's files before those of its subdirectories.
        found.sort_by(|a, b| a.components().count().cmp(&b.components().count()).then_with(|| a.cmp(b)));
        for f in found {
            if !all.contains(&f) {
                all.push(f);
            }
        }
    }
    all
}

/// One definition, with its place in the list (the reference compares them by identity).
struct Numbered {
    index: usize,
    definition: Definition,
}

/// What the transforms convention has done so far.
#[derive(Default)]
struct Progress {
    /// `(transform, target)` pairs applied, in order.
    applied: Vec<(PathBuf, PathBuf)>,
    applied_definitions: Vec<usize>,
    duplicates: Vec<usize>,
}

/// Runs the XML configuration transforms convention in `dir` (the reference's
/// `ConfigurationTransformsBehaviour`), when `Octopus.Features.ConfigurationTransforms`
/// is enabled (the caller checks).
///
/// # Errors
/// [`Error::TransformFailed`] for a transform that reported errors;
/// [`Error::TransformNotXml`]/[`Error::ConfigNotXml`] for a file that is not XML (unless
/// errors are ignored); [`Error::BadDefinition`]; [`Error::Io`]. Nothing is written then.
pub fn apply_configuration_transforms(
    dir: &Path,
    variables: &mut VariableDictionary,
    log: &Log,
) -> Result<(), crate::Error> {
    let mut explicit = Vec::new();
    if let Some(value) = variables.get(vn::ADDITIONAL_TRANSFORMS)? {
        for text in value.split([',', '\r', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
            let definition =
                Definition::parse(text).ok_or_else(|| Error::BadDefinition { definition: text.to_string() })?;
            explicit.push(definition);
        }
    }
    let automatic_on = variables.get_flag(vn::AUTOMATIC_TRANSFORMS, false)?;
    let mut automatic = Vec::new();
    if automatic_on {
        automatic.push("Release".to_string());
        for name in [names::ENVIRONMENT_NAME, names::TENANT_NAME] {
            if let Some(v) = variables.get(name)?.filter(|v| !v.trim().is_empty()) {
                automatic.push(v);
            }
        }
    }
    let mut extensions: Vec<String> = Vec::new();
    if automatic_on {
        extensions.push("*.config".to_string());
    }
    for ext in explicit.iter().filter_map(Definition::source_extension) {
        if !extensions.contains(&ext) {
            extensions.push(ext);
        }
    }
    let explicit_count = explicit.len();
    let all: Vec<Numbered> = explicit
        .into_iter()
        .chain(automatic.iter().filter_map(|a| Definition::parse(a)))
        .enumerate()
        .map(|(index, definition)| Numbered { index, definition })
        .collect();
    let diagnostics = variables.get_flag(vn::DIAGNOSTICS, false)?;
    let options = TransformOptions::from_variables(variables)?;
    if diagnostics {
        log.verbose(format!(
            "Recursively searching for transformation files that match {} in folder '{}'",
            extensions.join(" or "),
            dir.display()
        ));
    }
    let roots = crate::variables::target_roots(dir, variables)?;
    let files = matching_files(&roots, &extensions);
    for stale in crate::fs::remove_stale_temp_files_beside(&files).map_err(Error::from)? {
        log.verbose(format!("Removed '{}', left by an interrupted transform", stale.display()));
    }
    let mut store = Store::default();
    let mut progress = Progress::default();
    for file in &files {
        if diagnostics {
            log.verbose(format!("Found config file '{}'", file.display()));
        }
        for t in &all {
            let def = &t.definition;
            if diagnostics {
                log.verbose(format!(" - checking against transform '{def}'"));
            }
            if def.transform_wildcard {
                let ending = locate_files::file_name(def.target.as_deref().unwrap_or_default());
                if !file.to_string_lossy().to_lowercase().ends_with(&ending.to_lowercase()) {
                    if diagnostics {
                        log.verbose(format!(
                            " - skipping transform as its a wildcard transform and source file '{}' does not end with '{ending}'",
                            file.display()
                        ));
                    }
                    continue;
                }
            }
            if let Err(e) = apply_definition(file, t, dir, diagnostics, options, &mut store, &mut progress, log) {
                log.error(format!(
                    "Could not transform the file '{}' using the {}pattern '{}'.",
                    file.display(),
                    if def.transform_wildcard { "wildcard " } else { "" },
                    def.transform
                ));
                return Err(e.into());
            }
        }
    }
    log_transforms_not_performed(&all[..explicit_count], explicit_count, &progress, diagnostics, log);
    store.commit(log)?;
    let applied: Vec<String> = progress.applied.iter().map(|(t, _)| t.display().to_string()).collect();
    variables.set(vn::APPLIED_TRANSFORMS, Some(applied.join("|")));
    Ok(())
}

#[allow(clippy::too_many_arguments)] // the reference's behaviour threads these through too
fn apply_definition(
    file: &Path,
    t: &Numbered,
    dir: &Path,
    diagnostics: bool,
    options: TransformOptions,
    store: &mut Store,
    progress: &mut Progress,
    log: &Log,
) -> Result<(), Error> {
    let mut transforms = locate_files::transform_files(file, &t.definition, diagnostics, dir, log);
    transforms.dedup();
    for transform in transforms {
        if progress.applied.iter().any(|(a, f)| a == &transform && f == file) {
            if diagnostics {
                log.verbose(format!(
                    " - Skipping as target '{}' has already been transformed by transform '{}'",
                    file.display(),
                    transform.display()
                ));
            }
            progress.duplicates.push(t.index);
            continue;
        }
        log.info(format!("Transforming '{}' using '{}'.", file.display(), transform.display()));
        perform_transform(file, &transform, options, store, log)?;
        progress.applied.push((transform, file.to_path_buf()));
        progress.applied_definitions.push(t.index);
    }
    Ok(())
}

/// The reference's closing lines: each explicit definition that applied to nothing, and
/// each that only overlapped another.
fn log_transforms_not_performed(
    explicit: &[Numbered],
    explicit_count: usize,
    progress: &Progress,
    diagnostics: bool,
    log: &Log,
) {
    let mut seen: Vec<String> = Vec::new();
    for t in explicit {
        if progress.applied_definitions.contains(&t.index) || progress.duplicates.contains(&t.index) {
            continue;
        }
        let text = t.definition.to_string();
        if seen.contains(&text) {
            continue;
        }
        log.verbose(format!("The transform pattern \"{text}\" was not performed as no matching files could be found."));
        if !diagnostics {
            log.verbose(format!(
                "For detailed diagnostic logging, please set a variable '{}' with a value of 'True'.",
                vn::DIAGNOSTICS
            ));
        }
        seen.push(text);
    }
    let mut seen: Vec<String> = Vec::new();
    for &index in progress.duplicates.iter().filter(|&&i| i < explicit_count) {
        let text = explicit[index].definition.to_string();
        if !seen.contains(&text) {
            log.verbose(format!(
                "The transform pattern \"{text}\" was not performed as it overlapped with another transform."
            ));
            seen.push(text);
        }
    }
}

/// Applies one transform file to one configuration file (the reference's
/// `ConfigurationTransformer.PerformTransform`), in the store.
fn perform_transform(
    config: &Path,
    transform: &Path,
    options: TransformOptions,
    store: &mut Store,
    log: &Log,
) -> Result<(), Error> {
    options.log_setup(log);
    let mut events = EventLog { options, log, error: false };
    let transform_text = store.text(transform)?;
    let tf = match TransformFile::parse(transform.display().to_string(), transform_text.clone()) {
        Ok(tf) => tf,
        Err(syntax) => {
            let position = syntax_position(&transform_text, &syntax);
            let error = Error::TransformNotXml { path: transform.to_path_buf(), position, syntax };
            return not_xml(&mut events, error);
        }
    };
    let (preprocessed, fatal) = tf.preprocess();
    for event in &preprocessed {
        events.event(event);
    }
    if let Some(fatal) = fatal {
        events.event(&fatal);
        return if events.error {
            Err(Error::TransformFailed { config: config.to_path_buf(), transform: transform.to_path_buf() })
        } else {
            Ok(())
        };
    }
    let text = store.text(config)?;
    let applied = match xdt::apply(&tf, &config.display().to_string(), &text) {
        Ok(applied) => applied,
        Err(syntax) => {
            let position = syntax_position(&text, &syntax);
            return not_xml(&mut events, Error::ConfigNotXml { path: config.to_path_buf(), position, syntax });
        }
    };
    for event in &applied.events {
        events.event(event);
    }
    if applied.logged_errors || events.error {
        return Err(Error::TransformFailed { config: config.to_path_buf(), transform: transform.to_path_buf() });
    }
    if !applied.has_root {
        events.warning(&format!(
            "The XML configuration file {} no longer has a root element and is invalid after being transformed by {}",
            config.display(),
            transform.display()
        ));
    }
    store.set(config, applied.text);
    Ok(())
}

/// A file that is not XML: logged as an error (fails) or, when errors are ignored, as a
/// warning (the file is skipped).
fn not_xml(events: &mut EventLog<'_>, error: Error) -> Result<(), Error> {
    events.error(&error.to_string());
    if events.error { Err(error) } else { Ok(()) }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests;
