//! The lookup tree: every variable name parsed as a path; identifier steps are
//! named children, indexer steps indexed children; case-insensitive, insertion-ordered.
//! Also holds the per-node cache of evaluated values.

use std::borrow::Cow;
use std::sync::OnceLock;

use indexmap::IndexMap;

use super::ast::Step;
use super::parser::parse_name;
use crate::variables::Variable;

/// Folds a name for case-insensitive comparison, without allocating for the common
/// already-lower-case ASCII name.
pub(crate) fn fold(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// One node.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// The raw value (`None` for an interior node).
    pub value: Option<String>,
    /// Named children (folded name → node).
    pub children: IndexMap<String, usize>,
    /// Indexed children (folded index → (index as first written, node)).
    pub indexed: IndexMap<String, (String, usize)>,
}

/// A cached evaluation of a node's value at the root scope.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    /// The evaluated text.
    pub output: String,
    /// Unresolved tokens met while evaluating it.
    pub missing: Vec<String>,
}

/// The tree plus caches.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// Nodes; 0 is the root.
    pub nodes: Vec<Node>,
    /// Evaluated values by node.
    pub cache: Vec<OnceLock<Cached>>,
    /// The length of the longest raw value (the size limits scale with it).
    pub longest_value: usize,
}

impl Tree {
    /// Builds the tree from the variables in insertion order.
    pub(crate) fn build<'a>(variables: impl Iterator<Item = &'a Variable>) -> Tree {
        let mut nodes = vec![Node::default()];
        let mut longest_value = 0;
        for v in variables {
            let Some(path) = parse_name(&v.name) else { continue };
            let mut cur = 0usize;
            let mut ok = true;
            for step in path.steps() {
                cur = match step {
                    Step::Identifier { text, .. } => {
                        let key = fold(text).into_owned();
                        match nodes[cur].children.get(&key) {
                            Some(&n) => n,
                            None => {
                                nodes.push(Node::default());
                                let n = nodes.len() - 1;
                                nodes[cur].children.insert(key, n);
                                n
                            }
                        }
                    }
                    Step::Index { text, .. } => {
                        let key = fold(text).into_owned();
                        match nodes[cur].indexed.get(&key) {
                            Some(&(_, n)) => n,
                            None => {
                                nodes.push(Node { value: Some(text.clone()), ..Node::default() });
                                let n = nodes.len() - 1;
                                nodes[cur].indexed.insert(key, (text.clone(), n));
                                n
                            }
                        }
                    }
                    Step::SymbolIndex { .. } => {
                        ok = false;
                        break;
                    }
                };
            }
            if ok {
                let value = v.value.clone().unwrap_or_default();
                longest_value = longest_value.max(value.len());
                nodes[cur].value = Some(value);
            }
        }
        let cache = (0..nodes.len()).map(|_| OnceLock::new()).collect();
        Tree { nodes, cache, longest_value }
    }
}
