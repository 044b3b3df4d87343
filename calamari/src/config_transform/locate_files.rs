//! Which transform files apply to which configuration files: the definitions of
//! `Octopus.Action.Package.AdditionalXmlConfigurationTransforms` and the automatic
//! `Release`/environment/tenant ones ([`Definition`]), and the reference's
//! `TransformFileLocator` rules that turn a definition and a configuration file into the
//! transform files to apply ([`transform_files`]).
//!
//! A definition is either a bare name (`Release`: `Web.config` takes `Web.Release.config`)
//! or `transform => target`, where either side may be a file name, a relative path (from
//! the target's directory, or with the target pattern's directory taken off it) or, for
//! the transform, an absolute path, and a file name may start with `*.`:
//!
//! | definition | `web.config` takes |
//! |---|---|
//! | `web.mytransform.config => web.config` | `web.mytransform.config` beside it |
//! | `transforms/web.mytransform.config => web.config` | `transforms/web.mytransform.config` below its directory |
//! | `/etc/t/web.mytransform.config => web.config` | that file, for every `web.config` |
//! | `*.mytransform.config => web.config` | every `*.mytransform.config` beside it |
//! | `*.mytransform.config => *.config` | `web.mytransform.config` (the target's name in place of the `*`) |
//! | `connstrings.mytransform.config => *.config` | `connstrings.mytransform.config`, for every `*.config` |
//! | `c.config => ./sub/web.config` | only `sub/web.config` under the package root |
//!
//! An absolute target (`/x/web.config`) or a `*` inside a name (`w*.config`) matches
//! nothing, as in the reference. The reference's comparisons are kept: names ignore case,
//! but which files exist is asked of the filesystem, which on Linux is case-sensitive.
//! Backslashes in a definition are read as `/` (definitions written for Windows targets),
//! as target patterns elsewhere are.
//!
//! Paths are handled as strings, as the reference does (`Path.ChangeExtension`,
//! `Path.Combine`, its own `GetRelativePath`), because its results depend on those exact
//! string operations (a directory that merely ends with the pattern's directory name
//! counts). The `*`/`?` file-name patterns are the .NET search patterns: written here, as
//! no crate matches just those two wildcards with nothing else special.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::log::Log;

/// One transform definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Definition {
    /// As written.
    text: String,
    /// The transform: a name (`Release`), a file name or path, `*.` taken off a wildcard.
    pub(crate) transform: String,
    /// The target, `*.` taken off a wildcard; `None` for a bare name.
    pub(crate) target: Option<String>,
    pub(crate) transform_wildcard: bool,
    pub(crate) target_wildcard: bool,
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `pattern` with its `*.` (or `*` when no `.` follows later) taken out.
fn trim_wildcard(pattern: &str) -> String {
    let Some(star) = pattern.find('*') else { return pattern.to_string() };
    let last_dot = pattern.rfind('.');
    let remove = if last_dot.is_some_and(|d| d > star + 1) { 2 } else { 1 };
    let mut out = pattern.to_string();
    out.replace_range(star..(star + remove).min(pattern.len()), "");
    out
}

impl Definition {
    /// Reads a definition; `None` for `a =>` with no target.
    pub(crate) fn parse(text: &str) -> Option<Definition> {
        if !text.contains("=>") {
            return Some(Definition {
                text: text.to_string(),
                transform: text.to_string(),
                target: None,
                transform_wildcard: false,
                target_wildcard: false,
            });
        }
        let parts: Vec<&str> = text.split("=>").filter(|p| !p.is_empty()).collect();
        let (transform, target) = (parts.first()?.trim().replace('\\', "/"), parts.get(1)?.trim().replace('\\', "/"));
        let transform_wildcard = file_name(&transform).starts_with("*.");
        let target_wildcard = file_name(&target).starts_with("*.");
        Some(Definition {
            text: text.to_string(),
            transform: if transform_wildcard { trim_wildcard(&transform) } else { transform },
            target: Some(if target_wildcard { trim_wildcard(&target) } else { target }),
            transform_wildcard,
            target_wildcard,
        })
    }

    /// Whether this is a `transform => target` definition.
    pub(crate) fn advanced(&self) -> bool {
        self.target.is_some()
    }

    /// The file-name pattern of the configuration files this definition needs searched
    /// for (`*.config` for `a => b.config`).
    pub(crate) fn source_extension(&self) -> Option<String> {
        let target = self.target.as_ref()?;
        let name = file_name(target);
        Some(format!("*{}", name.rfind('.').map_or("", |i| &name[i..])))
    }
}

// ---- the string path operations the reference's rules are written with ----

/// The part after the last `/`.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The part before the last `/` (`/` for a file at the root, `""` for a bare name).
fn dir_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// `Path.Combine`: a rooted part starts over; empty parts are skipped.
fn combine(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if part.starts_with('/') {
            out = (*part).to_string();
        } else {
            if !out.is_empty() && !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(part);
        }
    }
    out
}

/// `Path.ChangeExtension`: the file name's last extension (from its last `.`) replaced by
/// `extension` (a `.` added in front when it has none).
fn change_extension(path: &str, extension: &str) -> String {
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    let base = match path[name_start..].rfind('.') {
        Some(dot) => &path[..name_start + dot],
        None => path,
    };
    if extension.starts_with('.') { format!("{base}{extension}") } else { format!("{base}.{extension}") }
}

/// `Path.GetFullPath` for an absolute path: `.` and `..` resolved, repeated `/` joined.
fn full_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The reference's `GetRelativePath(fromFile, toFile)`: from the directory of `from`.
fn relative_path(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').collect();
    let to: Vec<&str> = to.split('/').collect();
    let mut matching = 0;
    while matching + 1 < from.len() && matching < to.len() && from[matching] == to[matching] {
        matching += 1;
    }
    let mut out: Vec<String> = (matching..from.len() - 1).map(|_| "..".to_string()).collect();
    out.extend(to[matching.min(to.len())..].iter().map(|s| (*s).to_string()));
    out.join("/")
}

/// A .NET file search pattern: `*` any run of characters, `?` any one; case-sensitive, as
/// the reference's file enumeration is on Linux.
pub(crate) fn wildcard_match(name: &str, pattern: &str) -> bool {
    let (n, p): (Vec<char>, Vec<char>) = (name.chars().collect(), pattern.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while i < n.len() {
        if j < p.len() && (p[j] == '?' || p[j] == n[i]) {
            i += 1;
            j += 1;
        } else if j < p.len() && p[j] == '*' {
            backtrack = Some((j, i));
            j += 1;
        } else if let Some((star, matched)) = backtrack {
            j = star + 1;
            i = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[j..].iter().all(|&c| c == '*')
}

/// The directory transforms are looked for from: the target's, with the target pattern's
/// directory taken off its end when it ends with it.
fn transform_directory(source: &str, def: &Definition) -> String {
    let source_dir = dir_name(source);
    let Some(pattern) = def.target.as_deref().filter(|p| p.contains('/')) else { return source_dir.to_string() };
    let pattern_dir = &pattern[..pattern.rfind('/').unwrap_or(0)];
    if source_dir.to_lowercase().ends_with(&pattern_dir.to_lowercase()) {
        return source_dir[..source_dir.len() - pattern_dir.len()].to_string();
    }
    source_dir.to_string()
}

/// The transform file name (or pattern) a definition gives for `source`, with `.config`
/// added when `default_extension` and it is missing.
fn transform_file_name(source: &str, def: &Definition, default_extension: bool) -> String {
    let mut pattern = def.transform.clone();
    if default_extension && !pattern.ends_with(".config") {
        pattern.push_str(".config");
    }
    if !def.advanced() {
        return change_extension(source, &pattern);
    }
    let directory = transform_directory(source, def);
    if def.transform_wildcard && def.target_wildcard {
        let target = def.target.as_deref().unwrap_or_default();
        let without_prefix = target.strip_prefix('.').unwrap_or(file_name(target));
        let base = file_name(source).replace(without_prefix, "");
        let path = combine(&[&directory, dir_name(&pattern), &base]);
        return change_extension(&path, file_name(&pattern));
    }
    if def.transform_wildcard {
        return combine(&[
            &directory,
            dir_name(&pattern),
            &format!("*.{}", file_name(&pattern).trim_start_matches('.')),
        ]);
    }
    combine(&[&directory, &pattern])
}

/// What the target pattern is compared with: the target relative to the package root for
/// a `./` pattern, relative to the transform for a pattern with a directory, else its name.
fn source_name_for(source: &str, def: &Definition, transform_file: &str, current_directory: &str) -> String {
    let pattern = def.target.as_deref().unwrap_or_default();
    if pattern.starts_with("./") {
        let path = relative_path(current_directory, source);
        return format!(".{}", path.find('/').map_or("", |i| &path[i..]));
    }
    if pattern.contains('/') {
        return relative_path(transform_file, source).trim_start_matches(['.', '/']).to_string();
    }
    file_name(source).to_string()
}

/// Whether `name` matches a wildcard target pattern (`*` taken off): the reference's
/// unanchored, case-insensitive regular expression `<dir>/.*?\.<name>`.
fn matches_wildcard_target(name: &str, pattern: &str) -> bool {
    let dir = dir_name(pattern);
    let mut re = String::from("(?i)");
    re.push_str(&regex::escape(dir));
    if !dir.is_empty() {
        re.push('/');
    }
    re.push_str(r".*?\.");
    re.push_str(&regex::escape(file_name(pattern).trim_start_matches('.')));
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(name))
}

/// The files of `dir` (not below it) whose names match one of `patterns`, sorted.
fn files_in(dir: &Path, patterns: &[&str]) -> Vec<String> {
    let Ok(entries) = crate::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| patterns.iter().any(|p| wildcard_match(name, p)))
        .map(|name| combine(&[&dir.to_string_lossy(), &name]))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The transform files `def` applies to `source` (an absolute path), in the order found,
/// logging why others were skipped when `diagnostics`. `current_directory` is the package
/// root, for `./` targets.
pub(crate) fn transform_files(
    source: &Path,
    def: &Definition,
    diagnostics: bool,
    current_directory: &Path,
    log: &Log,
) -> Vec<PathBuf> {
    let source = source.to_string_lossy();
    let current_directory = current_directory.to_string_lossy();
    let default_name = transform_file_name(&source, def, true);
    let name = transform_file_name(&source, def, false);
    let directory = if name.starts_with('/') {
        full_path(dir_name(&name))
    } else {
        // Only an absolute target pattern gets here; the reference resolves the name from
        // the target's directory, where it finds nothing of use.
        let relative = relative_path(&source, &name);
        full_path(&combine(&[dir_name(&source), dir_name(&relative)]))
    };
    if !Path::new(&directory).is_dir() {
        if diagnostics {
            log.verbose(format!(" - Skipping as transform folder '{directory}' does not exist"));
        }
        return Vec::new();
    }
    let mut patterns = vec![file_name(&default_name)];
    if file_name(&name) != patterns[0] {
        patterns.push(file_name(&name));
    }
    let found = files_in(Path::new(&directory), &patterns);
    if found.is_empty() {
        if diagnostics {
            if patterns.len() == 1 {
                log.verbose(format!(" - skipping as transform '{}' could not be found in '{directory}'", patterns[0]));
            } else {
                log.verbose(format!(
                    " - skipping as neither transform '{}' nor transform '{}' could be found in '{directory}'",
                    patterns[0], patterns[1]
                ));
            }
        }
        return Vec::new();
    }
    let mut out = Vec::new();
    for transform in found {
        let source_name = source_name_for(&source, def, &transform, &current_directory);
        if let Some(target) = def.target.as_deref() {
            if !def.target_wildcard && !target.eq_ignore_ascii_case(&source_name) {
                if diagnostics {
                    log.verbose(format!(
                        " - Skipping as file name '{source_name}' does not match the target pattern '{target}'"
                    ));
                }
                continue;
            }
            if def.target_wildcard && !matches_wildcard_target(&source_name, target) {
                if diagnostics {
                    log.verbose(format!(
                        " - Skipping as file name '{source_name}' does not match the wildcard target pattern '{target}'"
                    ));
                }
                continue;
            }
        }
        if transform.eq_ignore_ascii_case(&source) {
            if diagnostics {
                log.verbose(format!(" - Skipping as target '{source}' is the same as transform '{transform}'"));
            }
            continue;
        }
        out.push(PathBuf::from(transform));
    }
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up files with std::fs directly
mod tests;
