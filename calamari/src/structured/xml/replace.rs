//! What a selected node becomes (reference `XmlFormatVariableReplacer`): an attribute or
//! text node takes the value; an element holding only a CDATA section gets new CDATA
//! content; an element with child elements takes the value as an XML fragment (left
//! unchanged with a warning when it is not one); any other element takes the value as its
//! text; a processing instruction takes it as its data. Values are escaped as XML
//! requires ([`crate::xml_escape`]). Only names holding `/` or `:` are read as XPath.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::dom::{Kind, NodeRef, parse};
use crate::structured::{Attempt, Candidates, Edits};
use crate::xml_escape::{escape_attribute, escape_text};

/// Whether `value` is a well-formed XML fragment (elements and text, balanced, known
/// entities only).
fn is_fragment(value: &str) -> bool {
    let wrapped = format!("<fragment>{value}</fragment>");
    let mut reader = Reader::from_str(&wrapped);
    reader.config_mut().check_end_names = true;
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Err(_) => return false,
            Ok(Event::Eof) => return depth == 0,
            Ok(Event::Start(_)) => depth += 1,
            Ok(Event::End(_)) => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let known = match r.resolve_char_ref() {
                    Ok(Some(_)) => true,
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r).is_some(),
                    Err(_) => false,
                };
                if !known {
                    return false;
                }
            }
            Ok(_) => {}
        }
    }
}

/// The warning for a second declaration of `prefix` with another URI (reference wording):
/// expressions use the first.
pub(crate) fn duplicate_prefix_warning(prefix: &str, uri: &str, existing: &str) -> String {
    format!(
        "The namespace '{uri}' could not be mapped to the '{prefix}' prefix, as another namespace '{existing}' is already mapped to that prefix. XPath selectors using this prefix may not return the expected nodes. You can avoid this by ensuring all namespaces in your document have unique prefixes."
    )
}

/// The warning for a value that is not an XML fragment, for an element with child
/// elements (reference wording; the log masks a sensitive value).
pub(crate) fn invalid_markup_warning(xpath: &str, value: &str) -> String {
    format!(
        "Could not set the value of the XML element at XPath '{xpath}' to '{value}'. Expected a valid XML fragment. Skipping replacement of this element."
    )
}

/// Replaces every node a candidate variable's XPath selects in `text`.
pub(crate) fn replace(text: &str, candidates: &Candidates<'_>, edits: &mut Edits) -> Result<(), Attempt> {
    let doc = parse(text).map_err(|e| Attempt::Unparseable(e.into()))?;
    let namespaces = doc.variable_namespaces();
    for (prefix, uri, existing) in &doc.duplicate_prefixes {
        edits.warn(duplicate_prefix_warning(prefix, uri, existing));
    }
    for name in candidates.names() {
        // Only a name with `/` or `:` is read as XPath, so a plain name such as
        // `configuration` never selects the root element (reference rule).
        if !name.contains(['/', ':']) {
            continue;
        }
        let Ok(selected) = doc.select_in(name, &namespaces, NodeRef::Root) else { continue };
        if selected.is_empty() {
            continue;
        }
        let value = candidates.value(name)?.unwrap_or_default();
        for node in selected {
            match node {
                NodeRef::Root => {}
                NodeRef::Attr(e, a) => {
                    if let Kind::Element { attrs, .. } = &doc.nodes[e].kind {
                        let attr = &attrs[a];
                        edits.push(name, attr.span.clone(), escape_attribute(&value, attr.quote));
                    }
                }
                NodeRef::Node(i) => match &doc.nodes[i].kind {
                    Kind::Text { span, .. } => edits.push(name, span.clone(), escape_text(&value)),
                    Kind::CData { span, .. } => edits.push(name, span.clone(), value.replace("]]>", "]]]]><![CDATA[>")),
                    Kind::Comment { span, .. } => edits.push(name, span.clone(), value.replace("--", "- -")),
                    Kind::Element { qname, tag, content, .. } => {
                        let children = &doc.nodes[i].children;
                        // .NET drops whitespace-only text when loading, so `<a> <![CDATA[x]]> </a>`
                        // counts as holding only its CDATA section.
                        let significant: Vec<usize> = children
                            .iter()
                            .copied()
                            .filter(
                                |&c| !matches!(&doc.nodes[c].kind, Kind::Text { value, .. } if value.trim().is_empty()),
                            )
                            .collect();
                        let only_cdata = match significant.as_slice() {
                            [c] => matches!(doc.nodes[*c].kind, Kind::CData { .. }),
                            _ => false,
                        };
                        let has_elements = children.iter().any(|&c| matches!(doc.nodes[c].kind, Kind::Element { .. }));
                        match content {
                            None => {
                                // `<a/>`: open it up to hold the value.
                                let open = text[tag.clone()].trim_end_matches('>').trim_end_matches('/').trim_end();
                                edits.push(name, tag.clone(), format!("{open}>{}</{qname}>", escape_text(&value)));
                            }
                            Some(_) if only_cdata => {
                                if let Kind::CData { span, .. } = &doc.nodes[significant[0]].kind {
                                    edits.push(name, span.clone(), value.replace("]]>", "]]]]><![CDATA[>"));
                                }
                            }
                            Some(content) if has_elements => {
                                if is_fragment(&value) {
                                    edits.push(name, content.clone(), value.clone());
                                } else {
                                    edits.warn(invalid_markup_warning(name, &value));
                                }
                            }
                            Some(content) => edits.push(name, content.clone(), escape_text(&value)),
                        }
                    }
                    Kind::Pi { span, .. } => {
                        // Processing instruction data cannot hold `?>`.
                        let data = value.replace("?>", "? >");
                        let blank_before = text[..span.start].ends_with([' ', '\t', '\r', '\n']);
                        let data = if span.is_empty() && !blank_before && !data.is_empty() {
                            format!(" {data}")
                        } else {
                            data
                        };
                        edits.push(name, span.clone(), data);
                    }
                    Kind::Other => {}
                },
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod torture {
    //! Every element and attribute of a document is replaced in turn through an absolute
    //! positional XPath; the result must parse, hold the new value there, and hold the old
    //! values everywhere else.

    use std::collections::HashMap;

    use super::super::dom::{Document, Kind, NodeRef, parse};
    use crate::VariableDictionary;
    use crate::structured::{Format, replace};

    const DOC: &str = "<?xml version=\"1.0\"?>\r\n<!DOCTYPE root>\r\n<root xmlns:p=\"urn:p\" a=\"1\" b='two'>\r\n  <!-- c -->\r\n  <p:item id=\"x\">text &amp; more</p:item>\r\n  <item/>\r\n  <item id='y'><![CDATA[<raw>]]></item>\r\n  <group>\r\n    <leaf k=\"v\">1</leaf>\r\n    <leaf>2<!-- inner --></leaf>\r\n  </group>\r\n  <?pi data?>\r\n</root>\r\n";

    /// `(xpath, string value)` of every element and attribute, by absolute positions.
    fn inventory(doc: &Document) -> Vec<(String, String)> {
        let mut out = Vec::new();
        fn walk(doc: &Document, i: usize, path: String, out: &mut Vec<(String, String)>) {
            let Kind::Element { attrs, .. } = &doc.nodes[i].kind else { return };
            out.push((path.clone(), doc.string_value(NodeRef::Node(i))));
            for a in attrs {
                out.push((format!("{path}/@{}", a.local), a.value.clone()));
            }
            let mut seen: HashMap<String, usize> = HashMap::new();
            for &c in &doc.nodes[i].children {
                if let Kind::Element { qname, .. } = &doc.nodes[c].kind {
                    let n = seen.entry(qname.clone()).or_default();
                    *n += 1;
                    walk(doc, c, format!("{path}/{qname}[{n}]"), out);
                }
            }
        }
        let root = doc.top.iter().copied().find(|&i| matches!(doc.nodes[i].kind, Kind::Element { .. })).unwrap();
        walk(doc, root, "/root".to_string(), &mut out);
        out
    }

    #[test]
    fn every_element_and_attribute_replaced_in_turn() {
        let before = inventory(&parse(DOC).unwrap());
        assert_eq!(before.len(), 12, "{before:?}");
        for (i, (path, _)) in before.iter().enumerate() {
            let has_children = path == "/root" || path.ends_with("group[1]");
            let value = if has_children { "<new a=\"1\">x</new>" } else { "a < b & \"c\" 'd'" };
            let mut vars = VariableDictionary::new();
            vars.set(path.clone(), Some(value.to_string()));
            let out =
                replace(DOC.as_bytes(), Format::Xml, &vars).unwrap().unwrap_or_else(|| panic!("{path} unchanged"));
            let out = String::from_utf8(out).unwrap();
            let doc = parse(&out).unwrap_or_else(|e| panic!("{path}: {e}\n{out}"));
            assert!(out.contains("\r\n  <!-- c -->\r\n") || path == "/root", "{out}");
            let after = inventory(&doc);
            if has_children {
                let (p, v) = after.iter().find(|(p, _)| p == path).unwrap();
                assert_eq!((p.as_str(), v.as_str()), (path.as_str(), "x"), "{out}");
                continue;
            }
            assert_eq!(after.len(), before.len(), "{path}\n{out}");
            for (j, ((p0, v0), (p1, v1))) in before.iter().zip(&after).enumerate() {
                assert_eq!(p0, p1);
                if j == i {
                    assert_eq!(v1, value, "{path}\n{out}");
                } else if !path.starts_with(p0.as_str()) {
                    assert_eq!(v0, v1, "{p0} changed when replacing {path}\n{out}");
                }
            }
        }
    }
}
