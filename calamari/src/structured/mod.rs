//! Structured configuration variables: variables whose names are paths
//! into JSON, YAML, XML or Java `.properties` files replace the values found there.
//!
//! The deploy pipeline calls [`replace_in_files`] with the target globs of
//! `Octopus.Action.Package.JsonConfigurationVariablesTargets`. Each matching file is read
//! in its own encoding ([`encoding`]), parsed by the formats its extension allows (JSON
//! first, as the reference does; [`formats_for`]) and, once every file has been processed,
//! all are replaced together (a failure leaves every file as it was). [`replace`]
//! does the same for bytes in memory.
//!
//! Unlike the reference, which re-serialises the whole document, every format here edits
//! the original text in place: a parser that remembers where each value sits gives the
//! byte span of each node a variable names, and only those spans are replaced, rendered
//! in the file's own style. Key order, comments, indentation, line endings, encoding and
//! BOM are therefore kept exactly.
//!
//! * [`json`]: a small span-tracking JSON parser (comments allowed, as Json.NET does).
//! * [`yaml`]: yaml-rust2's event stream with markers, plus span recovery for scalars.
//! * [`xml`]: quick-xml positions and an XPath subset evaluator.
//! * [`properties`]: Java `.properties` logical lines, continuations and escapes.
//!
//! Which variables name structures: every variable except those whose name starts with
//! `Octopus` (any case) unless it starts with `Octopus:`; names match paths ignoring
//! case; values are evaluated (`#{...}`) only when a structure matches.
//!
//! Tests: approval cases in `fixtures/structured/<case>/` (written by `build.py` there)
//! walked by `tests.rs`, property tests that replace random leaves of random documents,
//! and per-format "torture" tests that replace every node of a many-style document in turn.

pub(crate) mod encoding;
pub(crate) mod json;
pub(crate) mod properties;
pub(crate) mod xml;
pub(crate) mod yaml;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::log::Log;
use crate::variables::VariableDictionary;
use crate::variables::dictionary::fold_name;

/// The variable that lists the target files (newline-separated globs).
pub(crate) const TARGETS_VARIABLE: &str = "Octopus.Action.Package.JsonConfigurationVariablesTargets";
/// The variable that restricts every file to the JSON format (the reference's pre-2020 behaviour).
pub(crate) const FALLBACK_FLAG_VARIABLE: &str = "Octopus.Action.StructuredConfigurationFallbackFlag";
/// The info line logged when no variable matched anything in a file.
pub(crate) const NO_STRUCTURES_FOUND: &str = "No structures have been found that match variable names, so no structured variable replacements have been applied.";

/// A structured configuration file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JSON (comments allowed).
    Json,
    /// YAML (every document of a stream).
    Yaml,
    /// XML; variable names are XPath expressions.
    Xml,
    /// Java `.properties`.
    Properties,
}

impl Format {
    /// The reference's name for the format, as used in its log lines.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "Json",
            Format::Yaml => "Yaml",
            Format::Xml => "Xml",
            Format::Properties => "Properties",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A variable's value could not be evaluated (e.g. a recursive definition).
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// A file could not be parsed by the last format it was tried as (reference wording).
    #[error("Structured variable replacement failed on file {}. The file could not be parsed as {format}: {syntax} See verbose logs for more details.", path.display())]
    Unparseable {
        /// The file at fault.
        path: PathBuf,
        /// The last format tried.
        format: Format,
        /// What the parser said, with where.
        #[source]
        syntax: SyntaxError,
    },
    /// Content given to [`replace`] is not valid in the requested format.
    #[error("The content could not be parsed as {format}: {syntax}")]
    Syntax {
        /// The format requested.
        format: Format,
        /// What the parser said, with where.
        #[source]
        syntax: SyntaxError,
    },
    /// A target pattern is malformed.
    #[error(transparent)]
    Pattern(#[from] crate::glob::GlobError),
}

/// Why a text is not in a format, as that format's parser says it.
#[derive(Debug, thiserror::Error)]
pub enum SyntaxError {
    /// Not JSON.
    #[error(transparent)]
    Json(#[from] json::JsonSyntaxError),
    /// Not YAML.
    #[error(transparent)]
    Yaml(#[from] yaml::YamlSyntaxError),
    /// Not XML.
    #[error(transparent)]
    Xml(#[from] xml::XmlSyntaxError),
    /// Not a `.properties` file.
    #[error(transparent)]
    Properties(#[from] properties::PropertiesSyntaxError),
}

/// Why one format could not handle a text: it does not parse (try the next format), or
/// something else went wrong (stop).
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The text is not in this format; what the parser said.
    Unparseable(SyntaxError),
    /// Any other failure.
    Failed(Error),
}

impl From<crate::variables::Error> for Attempt {
    fn from(e: crate::variables::Error) -> Self {
        Attempt::Failed(Error::Variables(e))
    }
}

/// What one file (or buffer) replacement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    /// The file.
    pub path: PathBuf,
    /// The format that parsed it.
    pub format: Format,
    /// How many structures were replaced.
    pub replaced: usize,
    /// Whether the file's bytes changed (an unchanged file is not rewritten).
    pub changed: bool,
}

/// What [`replace_in_files`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StructuredSummary {
    /// One entry per file processed, in order.
    pub files: Vec<FileOutcome>,
}

impl StructuredSummary {
    /// The number of files rewritten.
    pub fn changed_files(&self) -> usize {
        self.files.iter().filter(|f| f.changed).count()
    }
}

/// The formats to try for `path`, in order (reference `StructuredConfigVariablesService`):
/// JSON only when `json_only` (the fallback flag) or for `.json`; JSON then the format the
/// extension names for `.yml`/`.yaml`, `.xml`, `.properties`; otherwise all four.
pub(crate) fn formats_for(path: &Path, json_only: bool) -> &'static [Format] {
    if json_only {
        return &[Format::Json];
    }
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "json" => &[Format::Json],
        "yml" | "yaml" => &[Format::Json, Format::Yaml],
        "xml" => &[Format::Json, Format::Xml],
        "properties" => &[Format::Json, Format::Properties],
        _ => &[Format::Json, Format::Xml, Format::Yaml, Format::Properties],
    }
}

/// Replaces structured configuration variables in every file matching `targets` (globs
/// relative to `dir` and to each `Octopus.Action.AdditionalPaths`, one per entry, as the
/// lines of `Octopus.Action.Package.JsonConfigurationVariablesTargets`).
///
/// A target naming a directory is skipped with a warning; a target matching nothing logs
/// the reference's warning. Changed files keep their permissions; a file where nothing
/// changed is not touched. All or nothing, unlike the reference (which rewrites each file
/// as it goes): the new contents are staged beside the files and put in place only once
/// every file has been processed, so a file that does not parse leaves all of them as they
/// were ([`crate::fs::StagedReplacements`]).
///
/// # Errors
/// [`Error::Unparseable`] naming the file and the last format tried; [`Error::Pattern`]
/// for a malformed pattern; [`Error::Io`]; [`Error::Variables`] for a value that cannot be
/// evaluated (recursive definition).
pub fn replace_in_files(
    dir: &Path,
    targets: &[String],
    variables: &VariableDictionary,
    log: &Log,
) -> Result<StructuredSummary, Error> {
    let json_only = variables.get_flag(FALLBACK_FLAG_VARIABLE, false)?;
    let candidates = Candidates::new(variables);
    let mut summary = StructuredSummary::default();
    let roots = crate::variables::target_roots(dir, variables)?;
    let mut staged = crate::fs::StagedReplacements::new();
    for target in targets.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let literal = dir.join(target.trim_start_matches("./"));
        if literal.is_dir() {
            log.warn(format!("Skipping structured variable replacement on '{target}' because it is a directory."));
            continue;
        }
        let glob = crate::glob::Glob::new(target)?;
        let files: Vec<_> = roots.iter().flat_map(|root| glob.find_files(root)).collect();
        if files.is_empty() {
            log.warn(format!("No files were found that match the replacement target pattern '{target}'"));
            continue;
        }
        for stale in crate::fs::remove_stale_temp_files_beside(&files)? {
            log.verbose(format!("Removed '{}', left by an interrupted replacement", stale.display()));
        }
        for file in files {
            let outcome = replace_in_file(&file, json_only, &candidates, &mut staged, log)?;
            summary.files.push(outcome);
        }
    }
    staged.commit()?;
    Ok(summary)
}

/// Why `path` is tried as the formats [`formats_for`] gives, in the reference's words.
fn format_choice_message(file: &Path, json_only: bool) -> String {
    let path = file.display();
    if json_only {
        return format!("The {FALLBACK_FLAG_VARIABLE} flag is set. The file at {path} will be parsed as JSON.");
    }
    match formats_for(file, false) {
        [Format::Json] => {
            format!("The file at {path} matches a known filename pattern, and will be treated as Json.")
        }
        [Format::Json, guessed] => format!(
            "The file at {path} matches a known filename pattern, and will be treated as {guessed}. The file will be tried as Json first for backwards compatibility."
        ),
        _ => format!(
            "The file at {path} does not match any known filename patterns. The file will be tried as multiple formats and will be treated as the first format that can be successfully parsed."
        ),
    }
}

/// Replaces in one file, staging its new contents in `staged`. A file matched again (by a
/// second target) is read as staged, so the second pass sees the first one's changes, as
/// the reference's would.
fn replace_in_file(
    path: &Path,
    json_only: bool,
    candidates: &Candidates<'_>,
    staged: &mut crate::fs::StagedReplacements,
    log: &Log,
) -> Result<FileOutcome, Error> {
    let formats = formats_for(path, json_only);
    let bytes = crate::fs::read(staged.staged(path).unwrap_or(path))?;
    let decoded = encoding::decode(&bytes);
    log.verbose(format_choice_message(path, json_only));
    log.verbose(format!(
        "The registered replacers we will try, in order, are: {}",
        formats.iter().map(|f| format!("{}FormatVariableReplacer", f.name())).collect::<Vec<_>>().join(",")
    ));
    for (i, &format) in formats.iter().enumerate() {
        log.verbose(format!(
            "Attempting structured variable replacement on file {} with format {format}",
            path.display()
        ));
        let declared = (format == Format::Xml).then(|| xml::decode_declared(&bytes)).flatten();
        let (text, encoding) = declared.as_ref().unwrap_or(&decoded);
        match replace_text(text, format, candidates, Some(log)) {
            Ok(edit) => {
                if edit.replaced == 0 {
                    log.info(NO_STRUCTURES_FOUND);
                }
                let changed = match edit.output {
                    Some(output) => {
                        let encoded = encode_for(format, &output, encoding);
                        if encoded.fell_back_to_utf8 {
                            log.warn(crate::text_encoding::unrepresentable_warning(path));
                        }
                        let new_bytes = encoded.bytes;
                        if new_bytes != bytes {
                            staged.stage(path, &new_bytes)?;
                            true
                        } else {
                            false
                        }
                    }
                    None => false,
                };
                log.info(format!(
                    "Structured variable replacement succeeded on file {} with format {format}",
                    path.display()
                ));
                return Ok(FileOutcome { path: path.to_path_buf(), format, replaced: edit.replaced, changed });
            }
            Err(Attempt::Unparseable(syntax)) if i + 1 < formats.len() => {
                log.verbose(format!("The file at {} couldn't be parsed as {format}: {syntax}", path.display()));
            }
            Err(Attempt::Unparseable(syntax)) => {
                return Err(Error::Unparseable { path: path.to_path_buf(), format, syntax });
            }
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    unreachable!("formats_for never returns an empty list")
}

/// Replaces structured configuration variables in `content` (any supported encoding)
/// parsed as `format`. Returns `None` when nothing changed.
///
/// # Errors
/// [`Error::Syntax`] when `content` is not valid `format`; [`Error::Variables`] for a value
/// that cannot be evaluated.
pub fn replace(content: &[u8], format: Format, variables: &VariableDictionary) -> Result<Option<Vec<u8>>, Error> {
    let declared = (format == Format::Xml).then(|| xml::decode_declared(content)).flatten();
    let (text, encoding) = declared.unwrap_or_else(|| encoding::decode(content));
    let candidates = Candidates::new(variables);
    match replace_text(&text, format, &candidates, None) {
        Ok(edit) => Ok(edit.output.map(|o| encode_for(format, &o, &encoding).bytes).filter(|b| b != content)),
        Err(Attempt::Unparseable(syntax)) => Err(Error::Syntax { format, syntax }),
        Err(Attempt::Failed(e)) => Err(e),
    }
}

/// `output` in the file's encoding, or as UTF-8 when that cannot represent it; an XML
/// declaration then names `utf-8`, as the reference's writer declares the encoding it
/// actually writes.
pub(crate) fn encode_for(
    format: Format,
    output: &str,
    encoding: &crate::text_encoding::TextEncoding,
) -> crate::text_encoding::Encoded {
    let mut encoded = encoding.encode_or_utf8(output);
    if encoded.fell_back_to_utf8
        && format == Format::Xml
        && let Some(redeclared) = xml::with_declared_encoding(output, "utf-8")
    {
        encoded.bytes = redeclared.into_bytes();
    }
    encoded
}

/// The result of replacing in one text.
#[derive(Debug)]
pub(crate) struct Edited {
    /// The new text, `None` when no span changed.
    pub(crate) output: Option<String>,
    /// How many structures were replaced.
    pub(crate) replaced: usize,
}

fn replace_text(text: &str, format: Format, candidates: &Candidates<'_>, log: Option<&Log>) -> Result<Edited, Attempt> {
    let mut edits = Edits::default();
    match format {
        Format::Json => json::replace(text, candidates, &mut edits)?,
        Format::Yaml => yaml::replace(text, candidates, &mut edits)?,
        Format::Xml => xml::replace(text, candidates, &mut edits)?,
        Format::Properties => properties::replace(text, candidates, &mut edits)?,
    }
    if let Some(log) = log {
        for name in &edits.matched {
            log.verbose(format!(
                "Structure found matching the variable '{name}'. Replacing its content with the variable value."
            ));
        }
        for warning in &edits.warnings {
            log.warn(warning);
        }
    }
    let replaced = edits.count;
    Ok(Edited { output: edits.apply(text), replaced })
}

/// The variables that may name structures: every variable except those whose name starts
/// with `Octopus` (any case) unless it starts with `Octopus:` (reference `JsonUpdateMap`).
/// Values are evaluated lazily, once, when a structure matches.
pub(crate) struct Candidates<'a> {
    variables: &'a VariableDictionary,
    by_path: HashMap<String, &'a str>,
    values: RefCell<HashMap<String, Option<String>>>,
}

impl<'a> Candidates<'a> {
    pub(crate) fn new(variables: &'a VariableDictionary) -> Self {
        let by_path = variables.names().filter(|n| is_candidate(n)).map(|n| (fold_name(n), n)).collect();
        Candidates { variables, by_path, values: RefCell::default() }
    }

    /// The variable named by `path` (case-insensitive), if any.
    pub(crate) fn lookup(&self, path: &str) -> Option<&'a str> {
        if self.by_path.is_empty() {
            return None;
        }
        self.by_path.get(&fold_name(path)).copied()
    }

    /// As [`lookup`](Self::lookup), for a path already folded with `fold_name`.
    pub(crate) fn lookup_folded(&self, folded: &str) -> Option<&'a str> {
        self.by_path.get(folded).copied()
    }

    /// Every candidate name, in the dictionary's order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.variables.names().filter(|n| is_candidate(n))
    }

    /// The evaluated value of a variable (`None` for null).
    pub(crate) fn value(&self, name: &str) -> Result<Option<String>, crate::variables::Error> {
        if let Some(v) = self.values.borrow().get(name) {
            return Ok(v.clone());
        }
        let v = self.variables.get(name)?;
        self.values.borrow_mut().insert(name.to_string(), v.clone());
        Ok(v)
    }
}

fn is_candidate(name: &str) -> bool {
    let lower = name.get(..7).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("octopus") => name[7..].starts_with(':'),
        _ => true,
    }
}

/// Span replacements collected by a format, applied outermost-first: a replacement inside
/// a span that is itself replaced is dropped (the reference replaces the outer node, and
/// the inner setter then acts on a detached node).
#[derive(Debug, Default)]
pub(crate) struct Edits {
    spans: Vec<(Range<usize>, String)>,
    matched: Vec<String>,
    warnings: Vec<String>,
    count: usize,
}

impl Edits {
    /// Records that variable `name` replaces `span` with `text`.
    pub(crate) fn push(&mut self, name: &str, span: Range<usize>, text: String) {
        self.matched.push(name.to_string());
        self.count += 1;
        self.spans.push((span, text));
    }

    /// Records a warning (a value that could not be set).
    pub(crate) fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    fn apply(mut self, text: &str) -> Option<String> {
        // Outer spans first at equal starts, so nested ones are skipped below.
        self.spans.sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        let mut changed = false;
        let mut after_replaced = false;
        for (span, replacement) in &self.spans {
            // An empty span (an insertion after a `-` or `:`) right at the end of a replaced
            // span is after that span's last indicator, so inside it: dropped too.
            if span.start < pos || (span.is_empty() && span.start == pos && after_replaced) {
                continue;
            }
            after_replaced = !span.is_empty();
            out.push_str(&text[pos..span.start]);
            if &text[span.clone()] != replacement {
                changed = true;
            }
            out.push_str(replacement);
            pos = span.end;
        }
        out.push_str(&text[pos..]);
        changed.then_some(out)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests;
