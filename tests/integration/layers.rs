//! The library's layers, held by a test (issue 19, item 3): it reads `calamari/src/**/*.rs`,
//! maps every `crate::` path (and every name the crate root re-exports) to the top-level
//! module it lives in, and fails on an import that goes up [`LAYERS`] or sideways inside
//! one layer. It also fails on a cycle between the files of one module directory.
//!
//! Test code is not held to the layers: `tests.rs` files and the `#[cfg(test)] mod tests`
//! at the end of a file may reach anywhere. A `mod.rs` is its directory's front door (it
//! declares and re-exports its files), so only the other files of a directory count for
//! file cycles.
//!
//! The edges that remain are in [`ALLOWED_UP`] and [`ALLOWED_FILE_CYCLES`], each naming the
//! work that removes it. An entry that is no longer needed fails the test too, so the lists
//! can only shrink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's top-level modules, bottom first. A module may use modules of lower rows
/// only; the modules of one row do not use each other.
const LAYERS: &[&[&str]] = &[
    // Leaves: no `crate::` import at all (or only of each other's row below).
    &["outcome", "version", "timespan", "text_encoding", "xml_escape", "signals", "fs", "service_message", "fault"],
    // Process plumbing: the environment, locks, the log and its masker.
    &["env_vars", "lock", "log"],
    // Variables and the file patterns they name.
    &["variables", "glob", "operator_lock"],
    // Domain modules: each does one thing to files, packages or processes.
    &["package", "script", "nginx", "isolation", "substitution", "structured", "self_install"],
    // Domain modules built on the ones above.
    &["feeds", "delta", "journal", "package_retention", "config_transform"],
    // The deployment pipeline.
    &["conventions"],
    // Many hosts at once.
    &["fleet"],
    // The crate-level error: wraps every module's error, decides exit codes.
    &["error"],
];

/// Modules the layering does not apply to: `lib.rs` is the crate's front door and
/// `test_support` is test code.
const EXEMPT: &[&str] = &["lib", "test_support"];

/// Imports that still go up: (from, to, what removes it).
const ALLOWED_UP: &[(&str, &str, &str)] = &[
    // Command entry points still live in domain modules and return `crate::Result<Outcome>`;
    // they move to `ops/` (issue 19, item 1), after which the domain modules return their own errors.
    ("conventions", "error", "ops/ (item 1): the command entry points of conventions/* move there"),
    ("delta", "error", "ops/ (item 1): apply_delta, create_signature, create_delta move there"),
    ("feeds", "error", "ops/ (item 1): download_package's command moves there"),
    ("package_retention", "error", "ops/ (item 1): package_retention/commands.rs moves there"),
    ("config_transform", "error", "ops/ (item 1): the transform and configuration-variable entry points move there"),
    ("fleet", "error", "the fleet branch (items 4-5): fleet's typed errors, and ops/ for its command"),
    // Retention asks the release module which directories to spare.
    ("journal", "conventions", "the journal rewrite: protected directories passed into retention"),
];

/// Cycles between files of one directory that remain: (directory, files, what removes it).
const ALLOWED_FILE_CYCLES: &[(&str, &[&str], &str)] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../calamari/src")
}

/// The file's code without comments and without its trailing `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            // Skip attributes; stop at a test module, keep anything else (a test-only fn
            // is still test code, so skip the item it marks too: the next line).
            let mut next = lines.peek().map(|l| l.trim_start().to_string());
            while next.as_deref().is_some_and(|l| l.starts_with("#[")) {
                lines.next();
                next = lines.peek().map(|l| l.trim_start().to_string());
            }
            if next.as_deref().is_some_and(|l| {
                l.starts_with("mod tests") || l.starts_with("pub(crate) mod tests") || l.starts_with("pub mod tests")
            }) {
                break;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The first path segment of each name `prefix` introduces in `code`: `prefix::a::b` gives
/// `a`, `prefix::{a::b, c}` gives `a` and `c`.
fn heads(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + prefix.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    out.insert(ident(item.trim()));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            out.insert(ident(after));
        }
    }
    out.remove("");
    out
}

/// Each name the crate root re-exports (`pub use module::...::{A, B as C}`), and its module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in code_of(lib).split(';') {
        let statement = statement.trim();
        let Some(path) = statement.strip_prefix("pub use ") else { continue };
        let Some((module, items)) = path.split_once("::") else { continue };
        for item in items.split([',', '{', '}']) {
            let name = item.rsplit(" as ").next().unwrap_or("").trim();
            let name = name.rsplit("::").next().unwrap_or("").trim();
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

struct Source {
    /// Relative to `calamari/src`, with `/`.
    rel: String,
    code: String,
}

fn sources() -> Vec<Source> {
    let root = src();
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        if rel.ends_with("/tests.rs") {
            continue;
        }
        out.push(Source { rel, code: code_of(&std::fs::read_to_string(path).unwrap()) });
    }
    out
}

fn top_module(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

#[test]
fn every_module_is_in_one_layer() {
    let mut listed = BTreeSet::new();
    for row in LAYERS {
        for module in *row {
            assert!(listed.insert(*module), "{module} is in two rows of LAYERS");
        }
    }
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let module = name.strip_suffix(".rs").unwrap_or(&name).to_string();
        if !EXEMPT.contains(&module.as_str()) {
            found.insert(module);
        }
    }
    let listed: BTreeSet<String> = listed.into_iter().map(String::from).collect();
    assert_eq!(found, listed, "calamari/src's top-level modules and LAYERS differ: add the new module to its row");
}

#[test]
fn no_module_imports_a_module_above_it() {
    let rank: BTreeMap<&str, usize> =
        LAYERS.iter().enumerate().flat_map(|(i, row)| row.iter().map(move |m| (*m, i))).collect();
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let reexports = root_reexports(&lib);
    let mut up: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for source in sources() {
        let from = top_module(&source.rel);
        if EXEMPT.contains(&from) {
            continue;
        }
        for head in heads(&source.code, "crate::") {
            let to = if rank.contains_key(head.as_str()) {
                head
            } else if let Some(module) = reexports.get(&head).filter(|m| rank.contains_key(m.as_str())) {
                module.clone()
            } else {
                continue; // `crate::VERSION` and other items of lib.rs itself
            };
            if to == from || EXEMPT.contains(&to.as_str()) {
                continue;
            }
            if rank[to.as_str()] >= rank[from] {
                up.entry((from.to_string(), to)).or_default().insert(source.rel.clone());
            }
        }
    }
    let allowed: BTreeSet<(String, String)> =
        ALLOWED_UP.iter().map(|(from, to, _)| (from.to_string(), to.to_string())).collect();
    let new: Vec<String> = up
        .iter()
        .filter(|(edge, _)| !allowed.contains(*edge))
        .map(|((from, to), files)| {
            format!("{from} -> {to} (in {})", files.iter().cloned().collect::<Vec<_>>().join(", "))
        })
        .collect();
    assert!(new.is_empty(), "imports that go up or sideways in LAYERS:\n  {}", new.join("\n  "));
    let stale: Vec<String> =
        allowed.iter().filter(|edge| !up.contains_key(*edge)).map(|(from, to)| format!("{from} -> {to}")).collect();
    assert!(stale.is_empty(), "ALLOWED_UP entries no longer needed, remove them: {}", stale.join(", "));
}

#[test]
fn no_cycle_between_the_files_of_a_module() {
    // dir -> file -> files of the same dir it uses.
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let all = sources();
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in &all {
        if let Some((dir, file)) = source.rel.rsplit_once('/')
            && file != "mod.rs"
        {
            siblings.entry(dir.to_string()).or_default().insert(file.trim_end_matches(".rs").to_string());
        }
    }
    for source in &all {
        let Some((dir, file)) = source.rel.rsplit_once('/') else { continue };
        if file == "mod.rs" {
            continue;
        }
        let names = &siblings[dir];
        let mut uses = heads(&source.code, "super::");
        uses.extend(heads(&source.code, &format!("crate::{}::", dir.replace('/', "::"))));
        let me = file.trim_end_matches(".rs");
        let edges = uses.into_iter().filter(|n| n != me && names.contains(n)).map(|n| format!("{n}.rs")).collect();
        graph.entry(dir.to_string()).or_default().insert(file.to_string(), edges);
    }
    let mut cycles: Vec<(String, BTreeSet<String>)> = Vec::new();
    for (dir, files) in &graph {
        for component in strongly_connected(files) {
            if component.len() > 1 {
                cycles.push((dir.clone(), component));
            }
        }
    }
    let allowed: Vec<(String, BTreeSet<String>)> = ALLOWED_FILE_CYCLES
        .iter()
        .map(|(dir, files, _)| (dir.to_string(), files.iter().map(|f| f.to_string()).collect()))
        .collect();
    let new: Vec<String> = cycles
        .iter()
        .filter(|c| !allowed.contains(c))
        .map(|(dir, files)| format!("{dir}: {}", files.iter().cloned().collect::<Vec<_>>().join(" <-> ")))
        .collect();
    assert!(new.is_empty(), "files of one module that use each other:\n  {}", new.join("\n  "));
    let stale: Vec<String> =
        allowed.iter().filter(|c| !cycles.contains(c)).map(|(dir, files)| format!("{dir}: {files:?}")).collect();
    assert!(stale.is_empty(), "ALLOWED_FILE_CYCLES entries no longer needed, remove them: {}", stale.join(", "));
}

/// The strongly connected components of `graph` (Tarjan's algorithm; the graphs are tiny).
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

#[test]
fn the_reader_finds_imports_in_every_shape() {
    // The reader itself, on the shapes the library uses.
    let code = code_of(
        "use crate::{fs, log::Log};\n// crate::ignored\nlet x = crate::variables::names::X;\n#[cfg(test)]\nmod tests {\n    use crate::fleet;\n}\n",
    );
    assert_eq!(heads(&code, "crate::"), ["fs", "log", "variables"].into_iter().map(String::from).collect());
    let lib = "pub use error::{Error, chain as error_chain};\npub use package::Version;\n";
    let map = root_reexports(lib);
    assert_eq!(map.get("error_chain").map(String::as_str), Some("error"));
    assert_eq!(map.get("Version").map(String::as_str), Some("package"));
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    let components = strongly_connected(&g);
    assert!(components.contains(&BTreeSet::from(["a".to_string(), "b".to_string()])), "{components:?}");
    assert!(components.contains(&BTreeSet::from(["c".to_string()])), "{components:?}");
}
