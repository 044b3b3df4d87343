//! Evaluating a compiled expression against a [`Document`]: XPath 1.0 values (node sets,
//! strings, numbers, booleans) and their conversions, axes, node tests and the supported
//! functions. [`Document::select`] is what the replacer calls: the nodes a variable name
//! selects, in document order; [`Document::select_in`] is the same with the namespaces and
//! context node given (XML transforms).

use super::dom::{Document, Kind, NodeRef};
use super::xpath::{Axis, Expr, Namespaces, Test, XPathError, compile};

/// An XPath value.
#[derive(Debug, Clone)]
enum Value {
    Nodes(Vec<NodeRef>),
    Str(String),
    Num(f64),
    Bool(bool),
}

/// The context an expression is evaluated in: the node, its position and the set's size.
struct Ctx {
    node: NodeRef,
    position: usize,
    size: usize,
}

impl Document {
    fn test(&self, n: NodeRef, test: &Test, axis: Axis) -> bool {
        match n {
            NodeRef::Root => matches!(test, Test::Node),
            NodeRef::Attr(e, a) => {
                let Kind::Element { attrs, .. } = &self.nodes[e].kind else { return false };
                let attr = &attrs[a];
                match test {
                    Test::Node | Test::Any => true,
                    Test::Unprefixed { local, .. } => &attr.local == local && attr.ns.is_none(),
                    Test::Qualified { ns, local } => &attr.local == local && attr.ns.as_ref() == Some(ns),
                    Test::PrefixAny(ns) => attr.ns.as_ref() == Some(ns),
                    Test::AnyPrefix(l) => &attr.local == l,
                    _ => false,
                }
            }
            NodeRef::Node(i) => match (&self.nodes[i].kind, test) {
                (_, Test::Node) => true,
                (Kind::Text { .. } | Kind::CData { .. }, Test::Text) => true,
                (Kind::Comment { .. }, Test::Comment) => true,
                (Kind::Element { .. }, Test::Any) => axis != Axis::Attribute,
                (Kind::Element { local, ns, .. }, Test::Unprefixed { local: l, also }) => {
                    local == l && (ns.is_none() || (also.is_some() && ns == also))
                }
                (Kind::Element { local, ns, .. }, Test::Qualified { ns: wanted, local: l }) => {
                    local == l && ns.as_ref() == Some(wanted)
                }
                (Kind::Element { ns, .. }, Test::PrefixAny(wanted)) => ns.as_ref() == Some(wanted),
                (Kind::Element { local, .. }, Test::AnyPrefix(l)) => local == l,
                (Kind::Pi { target, .. }, Test::Pi(wanted)) => wanted.as_ref().is_none_or(|w| w == target),
                _ => false,
            },
        }
    }

    fn axis(&self, n: NodeRef, axis: Axis) -> Vec<NodeRef> {
        match axis {
            Axis::Child => self.children(n).iter().map(|&i| NodeRef::Node(i)).collect(),
            Axis::Attribute => match n {
                NodeRef::Node(i) => match &self.nodes[i].kind {
                    Kind::Element { attrs, .. } => (0..attrs.len()).map(|a| NodeRef::Attr(i, a)).collect(),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            },
            Axis::Descendant => {
                let mut out = Vec::new();
                self.descendants(n, &mut out);
                out
            }
            Axis::DescendantOrSelf => {
                let mut out = vec![n];
                self.descendants(n, &mut out);
                out
            }
            Axis::Current => vec![n],
            Axis::Parent => match n {
                NodeRef::Root => Vec::new(),
                NodeRef::Attr(e, _) => vec![NodeRef::Node(e)],
                NodeRef::Node(i) => vec![self.nodes[i].parent.map_or(NodeRef::Root, NodeRef::Node)],
            },
        }
    }

    fn eval(&self, e: &Expr, ctx: &Ctx) -> Value {
        match e {
            Expr::Literal(s) => Value::Str(s.clone()),
            Expr::Number(n) => Value::Num(*n),
            Expr::Path { absolute, steps } => {
                let mut set = vec![if *absolute { NodeRef::Root } else { ctx.node }];
                for step in steps {
                    let mut next = Vec::new();
                    for &n in &set {
                        let mut found: Vec<NodeRef> = self
                            .axis(n, step.axis)
                            .into_iter()
                            .filter(|&m| self.test(m, &step.test, step.axis))
                            .collect();
                        for p in &step.predicates {
                            let size = found.len();
                            found = found
                                .into_iter()
                                .enumerate()
                                .filter(|&(i, m)| {
                                    let c = Ctx { node: m, position: i + 1, size };
                                    match self.eval(p, &c) {
                                        Value::Num(x) => x == (i + 1) as f64,
                                        v => self.boolean(&v),
                                    }
                                })
                                .map(|(_, m)| m)
                                .collect();
                        }
                        next.extend(found);
                    }
                    next.sort();
                    next.dedup();
                    set = next;
                }
                Value::Nodes(set)
            }
            Expr::Union(parts) => {
                let mut all = Vec::new();
                for p in parts {
                    if let Value::Nodes(n) = self.eval(p, ctx) {
                        all.extend(n);
                    }
                }
                all.sort();
                all.dedup();
                Value::Nodes(all)
            }
            Expr::Compare(a, b, negate) => {
                let (a, b) = (self.eval(a, ctx), self.eval(b, ctx));
                Value::Bool(self.compare(&a, &b, *negate))
            }
            Expr::And(a, b) => Value::Bool(self.boolean(&self.eval(a, ctx)) && self.boolean(&self.eval(b, ctx))),
            Expr::Or(a, b) => Value::Bool(self.boolean(&self.eval(a, ctx)) || self.boolean(&self.eval(b, ctx))),
            Expr::Call(name, args) => {
                let arg = |i: usize| args.get(i).map(|a| self.eval(a, ctx));
                let string = |v: Option<Value>| v.map_or_else(|| self.string_value(ctx.node), |v| self.string(&v));
                match name.as_str() {
                    "position" => Value::Num(ctx.position as f64),
                    "last" => Value::Num(ctx.size as f64),
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "not" => Value::Bool(!arg(0).is_some_and(|v| self.boolean(&v))),
                    "count" => Value::Num(match arg(0) {
                        Some(Value::Nodes(n)) => n.len() as f64,
                        _ => 0.0,
                    }),
                    "contains" => Value::Bool(string(arg(0)).contains(&string(arg(1)))),
                    "starts-with" => Value::Bool(string(arg(0)).starts_with(&string(arg(1)))),
                    "string" => Value::Str(string(arg(0))),
                    "name" | "local-name" => {
                        let node = match arg(0) {
                            Some(Value::Nodes(n)) => n.first().copied(),
                            _ => Some(ctx.node),
                        };
                        Value::Str(node.map_or_else(String::new, |n| self.name(n, name == "local-name")))
                    }
                    _ => Value::Bool(false),
                }
            }
        }
    }

    fn boolean(&self, v: &Value) -> bool {
        match v {
            Value::Nodes(n) => !n.is_empty(),
            Value::Str(s) => !s.is_empty(),
            Value::Num(x) => *x != 0.0 && !x.is_nan(),
            Value::Bool(b) => *b,
        }
    }

    fn string(&self, v: &Value) -> String {
        match v {
            Value::Nodes(n) => n.first().map(|&n| self.string_value(n)).unwrap_or_default(),
            Value::Str(s) => s.clone(),
            Value::Num(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn number(&self, v: &Value) -> f64 {
        match v {
            Value::Num(x) => *x,
            Value::Bool(b) => f64::from(u8::from(*b)),
            other => self.string(other).trim().parse().unwrap_or(f64::NAN),
        }
    }

    fn compare(&self, a: &Value, b: &Value, negate: bool) -> bool {
        let eq = |x: bool| x != negate;
        match (a, b) {
            (Value::Nodes(x), Value::Nodes(y)) => {
                let ys: Vec<String> = y.iter().map(|&n| self.string_value(n)).collect();
                x.iter().any(|&n| {
                    let s = self.string_value(n);
                    ys.iter().any(|t| eq(&s == t))
                })
            }
            (Value::Nodes(x), other) | (other, Value::Nodes(x)) => match other {
                Value::Bool(b) => eq(x.is_empty() != *b),
                Value::Num(num) => x.iter().any(|&n| eq(self.string_value(n).trim().parse::<f64>().ok() == Some(*num))),
                _ => {
                    let s = self.string(other);
                    x.iter().any(|&n| eq(self.string_value(n) == s))
                }
            },
            (Value::Bool(_), _) | (_, Value::Bool(_)) => eq(self.boolean(a) == self.boolean(b)),
            (Value::Num(_), _) | (_, Value::Num(_)) => eq(self.number(a) == self.number(b)),
            _ => eq(self.string(a) == self.string(b)),
        }
    }

    /// The namespaces a variable name is read with: every prefix the document declares,
    /// and unprefixed element names matching the root's default namespace too.
    pub(crate) fn variable_namespaces(&self) -> Namespaces {
        Namespaces { prefixes: self.namespaces.clone(), unprefixed: self.default_ns.clone() }
    }

    /// The nodes `expr` selects, in document order; an error when it is not an expression
    /// this module understands or does not select nodes.
    #[cfg(test)]
    pub(crate) fn select(&self, expr: &str) -> Result<Vec<NodeRef>, XPathError> {
        self.select_in(expr, &self.variable_namespaces(), NodeRef::Root)
    }

    /// The nodes `expr` selects from `context` with its names resolved through `ns`, in
    /// document order.
    ///
    /// # Errors
    /// An expression this module does not understand, or one that does not select nodes.
    pub(crate) fn select_in(&self, expr: &str, ns: &Namespaces, context: NodeRef) -> Result<Vec<NodeRef>, XPathError> {
        let compiled = compile(ns, expr)?;
        match self.eval(&compiled, &Ctx { node: context, position: 1, size: 1 }) {
            Value::Nodes(n) => Ok(n),
            _ => Err(XPathError::NotNodes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::dom::{Kind, NodeRef, parse};

    const DOC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- settings -->
<configuration xmlns:x="urn:x">
  <appSettings>
    <add key="Name" value="demo" />
    <add key='Port' value='80'/>
  </appSettings>
  <x:feature enabled="false">on</x:feature>
  <empty/>
  <script><![CDATA[a < b]]></script>
  <list><item>1</item><item>2</item></list>
  <?run now?>
</configuration>
<?go top?>
"#;

    fn select(expr: &str) -> Vec<String> {
        let doc = parse(DOC).unwrap();
        doc.select(expr)
            .unwrap()
            .into_iter()
            .map(|n| match n {
                NodeRef::Attr(e, a) => match &doc.nodes[e].kind {
                    Kind::Element { attrs, .. } => format!("@{}={}", attrs[a].local, attrs[a].value),
                    _ => unreachable!(),
                },
                other => format!("{}:{}", doc.name(other, false), doc.string_value(other)),
            })
            .collect()
    }

    #[test]
    fn xpath_subset() {
        let cases: &[(&str, &[&str])] = &[
            ("/configuration/appSettings/add[@key='Name']/@value", &["@value=demo"]),
            ("//add[@key=\"Port\"]/@value", &["@value=80"]),
            ("//add/@key", &["@key=Name", "@key=Port"]),
            ("/configuration/x:feature", &["x:feature:on"]),
            ("//x:feature/@enabled", &["@enabled=false"]),
            ("//x:*/text()", &[":on"]),
            ("/configuration/list/item[2]", &["item:2"]),
            ("/configuration/list/item[last()]", &["item:2"]),
            ("//item[. = '1']", &["item:1"]),
            ("//item[position() = 5 or true()]", &["item:1", "item:2"]),
            ("//list/item[1] | //empty", &["empty:", "item:1"]),
            ("//script", &["script:a < b"]),
            ("//add[@key='Name' and @value='demo']/@key", &["@key=Name"]),
            ("//add[not(@key='Name')]/@value", &["@value=80"]),
            ("//add[starts-with(@key,'Po')]/@key", &["@key=Port"]),
            ("//*:feature", &["x:feature:on"]),
            ("//*:item[1]", &["item:1"]),
            ("/processing-instruction('go')", &["go:top"]),
            ("//processing-instruction()", &["run:now", "go:top"]),
            ("/configuration/processing-instruction('run')", &["run:now"]),
            ("//nothing", &[]),
            ("Name", &[]),
        ];
        for (expr, expected) in cases {
            assert_eq!(select(expr), *expected, "{expr}");
        }
    }
}
