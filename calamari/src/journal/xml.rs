//! Reading and writing `DeploymentJournal.xml` in the reference's format.
//!
//! The reference builds an `XDocument` and saves it with .NET's defaults: a UTF-8 BOM, the
//! `<?xml version="1.0" encoding="utf-8"?>` declaration, two-space indentation, `" />"` for
//! empty elements and no newline after the root. We write the same bytes, so a journal we
//! write is indistinguishable from one the reference wrote, and either can read the other.
//!
//! Reading is lenient where the reference is (missing attributes, legacy entries that carry
//! `PackageId`/`PackageVersion`/`ExtractedFrom` on `<Deployment>` itself, several date
//! spellings) and strict about the document itself: anything that is not one well-formed
//! `<Deployments>` element is reported as [`Corrupt`] so the caller can move it aside.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, Utc};
use quick_xml::events::{BytesStart, Event};

use super::{JournalEntry, JournalPackage};

/// Why a journal document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The format `InstalledOn` is written in (UTC, invariant culture).
pub(crate) const INSTALLED_ON_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Formats a time as `InstalledOn` does.
pub(crate) fn format_installed_on(t: &DateTime<Utc>) -> String {
    t.format(INSTALLED_ON_FORMAT).to_string()
}

/// Parses `InstalledOn`: the reference's own `yyyy-MM-dd HH:mm:ss`, the `yyyy-MM-dd HH.mm.ss`
/// spelling some cultures produced, ISO 8601 / RFC 3339, and the common culture-specific
/// spellings .NET's `DateTime.TryParse` accepts (`M/d/yyyy h:mm:ss tt`, `d/M/yyyy HH:mm:ss`,
/// `d.M.yyyy HH:mm:ss`). Times without an offset are UTC, as the reference writes them.
/// Anything else gives `None` (the reference keeps such an entry but never treats it as old).
pub(crate) fn parse_installed_on(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    const FORMATS: &[&str] = &[
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H.%M.%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
        "%d.%m.%Y %H:%M:%S",
        "%d-%m-%Y %H:%M:%S",
    ];
    FORMATS.iter().find_map(|f| NaiveDateTime::parse_from_str(text, f).ok()).map(|naive| naive.and_utc())
}

/// Parses a whole journal document.
///
/// # Errors
/// [`Corrupt`] when the bytes are not one well-formed `<Deployments>` document (empty,
/// truncated, not UTF-8, another root element, text after the root...).
pub fn parse(bytes: &[u8]) -> Result<Vec<JournalEntry>, Corrupt> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| Corrupt(format!("the file is not UTF-8 ({e})")))?;
    if text.trim().is_empty() {
        return Err(Corrupt("the file is empty".to_string()));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    reader.config_mut().check_end_names = true;

    let mut entries = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut seen_root = false;
    // The entry whose `<Deployment>` element is open, collecting `<Package>` children.
    let mut open: Option<(JournalEntry, Legacy)> = None;
    let at = |reader: &quick_xml::Reader<&[u8]>| reader.buffer_position();
    loop {
        let event = reader.read_event().map_err(|e| Corrupt(format!("{e} at byte {}", at(&reader))))?;
        match event {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let name = start.local_name().as_ref().to_string();
                match stack.len() {
                    0 => {
                        if seen_root {
                            return Err(Corrupt(format!("a second root element <{name}> at byte {}", at(&reader))));
                        }
                        if name != "Deployments" {
                            return Err(Corrupt(format!("the root element is <{name}>, expected <Deployments>")));
                        }
                        seen_root = true;
                    }
                    1 if name == "Deployment" => {
                        let entry = read_deployment(start)?;
                        if empty {
                            entries.push(finish(entry));
                        } else {
                            open = Some(entry);
                        }
                    }
                    2 if name == "Package" => {
                        if let Some((entry, _)) = open.as_mut() {
                            entry.packages.push(read_package(start)?);
                        }
                    }
                    // Unknown elements are ignored, as the reference's LINQ queries ignore them.
                    _ => {}
                }
                if !empty {
                    stack.push(name);
                }
            }
            Event::End(_) => {
                let name =
                    stack.pop().ok_or_else(|| Corrupt(format!("an unmatched end tag at byte {}", at(&reader))))?;
                if stack.len() == 1
                    && name == "Deployment"
                    && let Some(entry) = open.take()
                {
                    entries.push(finish(entry));
                }
            }
            Event::Text(t) => {
                if stack.is_empty() {
                    return Err(Corrupt(format!("text outside the root element: {:?}", truncate(&t, 40))));
                }
            }
            Event::GeneralRef(r) => {
                if stack.is_empty() {
                    let raw = format!("&{};", &*r);
                    return Err(Corrupt(format!("text outside the root element: {:?}", truncate(&raw, 40))));
                }
            }
            Event::CData(_) => {
                if stack.is_empty() {
                    return Err(Corrupt("CDATA outside the root element".to_string()));
                }
            }
            Event::Eof => break,
        }
    }
    if !seen_root {
        return Err(Corrupt("there is no <Deployments> element".to_string()));
    }
    if let Some(open) = stack.last() {
        return Err(Corrupt(format!("the document ends inside <{open}> (truncated)")));
    }
    Ok(entries)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Legacy entries carry their one package as attributes of `<Deployment>`; they are used only
/// when the element has no `<Package>` children.
struct Legacy {
    package_id: Option<String>,
    package_version: Option<String>,
    extracted_from: Option<String>,
}

fn attributes(start: &BytesStart<'_>) -> Result<Vec<(String, String)>, Corrupt> {
    let mut out = Vec::new();
    for attr in start.attributes().with_checks(true) {
        let attr = attr.map_err(|e| Corrupt(format!("a malformed attribute: {e}")))?;
        let key = attr.key.local_name().as_ref().to_string();
        let raw: &str = &attr.value;
        // Attribute-value normalisation (XML 1.0 §3.3.3), as .NET's reader does: literal line
        // breaks and tabs read as spaces; escaped ones (`&#xA;`) stay what they are.
        let value = if raw.contains(['\r', '\n', '\t']) {
            let normalised = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
            quick_xml::escape::unescape(&normalised).map(std::borrow::Cow::into_owned)
        } else {
            quick_xml::escape::unescape(raw).map(std::borrow::Cow::into_owned)
        };
        let value = value.map_err(|e| Corrupt(format!("attribute {key}: {e}")))?;
        out.push((key, value));
    }
    Ok(out)
}

fn non_empty(value: String) -> Option<String> {
    if value.is_empty() { None } else { Some(value) }
}

fn read_deployment(start: &BytesStart<'_>) -> Result<(JournalEntry, Legacy), Corrupt> {
    let mut entry = JournalEntry { was_successful: true, ..JournalEntry::default() };
    let mut legacy = Legacy { package_id: None, package_version: None, extracted_from: None };
    for (key, value) in attributes(start)? {
        match key.as_str() {
            "Id" => entry.id = value,
            "EnvironmentId" => entry.environment_id = value,
            "TenantId" => entry.tenant_id = non_empty(value),
            "ProjectId" => entry.project_id = value,
            "InstalledOn" => entry.installed_on = parse_installed_on(&value),
            "RetentionPolicySet" => entry.retention_policy_set = value,
            "ExtractedTo" => entry.extracted_to = non_empty(value),
            "CustomInstallationDirectory" => entry.custom_installation_directory = non_empty(value),
            "CurrentLink" => entry.current_link = non_empty(value),
            "PreviousTarget" => entry.previous_target = non_empty(value),
            // bool.Parse: case-insensitive "true"/"false". Anything else is read as the
            // default (true), the value the reference gives a missing attribute.
            "WasSuccessful" => entry.was_successful = !value.trim().eq_ignore_ascii_case("false"),
            "PackageId" => legacy.package_id = Some(value),
            "PackageVersion" => legacy.package_version = Some(value),
            "ExtractedFrom" => legacy.extracted_from = non_empty(value),
            _ => {}
        }
    }
    Ok((entry, legacy))
}

fn finish((mut entry, legacy): (JournalEntry, Legacy)) -> JournalEntry {
    if entry.packages.is_empty()
        && (legacy.package_id.is_some() || legacy.package_version.is_some() || legacy.extracted_from.is_some())
    {
        entry.packages.push(JournalPackage {
            package_id: legacy.package_id.unwrap_or_default(),
            package_version: legacy.package_version.unwrap_or_default(),
            deployed_from: legacy.extracted_from,
        });
    }
    entry
}

fn read_package(start: &BytesStart<'_>) -> Result<JournalPackage, Corrupt> {
    let mut package = JournalPackage::default();
    for (key, value) in attributes(start)? {
        match key.as_str() {
            "PackageId" => package.package_id = value,
            "PackageVersion" => package.package_version = value,
            "DeployedFrom" => package.deployed_from = non_empty(value),
            _ => {}
        }
    }
    Ok(package)
}

/// Escapes an attribute value as .NET's `XmlWriter` does.
fn attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    crate::xml_escape::escape_attribute_into(out, value, b'"');
    out.push('"');
}

/// One `<Deployment>` element as .NET's `XElement.ToString()` shows it (what the reference
/// logs when it adds an entry).
pub(crate) fn entry_element(entry: &JournalEntry) -> String {
    let mut out = String::with_capacity(400);
    write_entry(&mut out, entry, "\n");
    out
}

/// Writes one `<Deployment>` element; `newline` starts each of its lines after the first.
fn write_entry(out: &mut String, e: &JournalEntry, newline: &str) {
    out.push_str("<Deployment");
    attribute(out, "Id", &e.id);
    attribute(out, "EnvironmentId", &e.environment_id);
    attribute(out, "TenantId", e.tenant_id.as_deref().unwrap_or(""));
    attribute(out, "ProjectId", &e.project_id);
    if let Some(t) = &e.installed_on {
        attribute(out, "InstalledOn", &format_installed_on(t));
    }
    attribute(out, "RetentionPolicySet", &e.retention_policy_set);
    attribute(out, "ExtractedTo", e.extracted_to.as_deref().unwrap_or(""));
    attribute(out, "CustomInstallationDirectory", e.custom_installation_directory.as_deref().unwrap_or(""));
    attribute(out, "WasSuccessful", if e.was_successful { "True" } else { "False" });
    // Our extension, written only for a deployment with a current link: the reference reads
    // attributes by name and ignores the others, and entries without a link stay
    // byte-identical to the reference's.
    if let Some(link) = &e.current_link {
        attribute(out, "CurrentLink", link);
        attribute(out, "PreviousTarget", e.previous_target.as_deref().unwrap_or(""));
    }
    if e.packages.is_empty() {
        out.push_str(" />");
        return;
    }
    out.push('>');
    for p in &e.packages {
        out.push_str(newline);
        out.push_str("  <Package");
        attribute(out, "PackageId", &p.package_id);
        attribute(out, "PackageVersion", &p.package_version);
        if let Some(from) = &p.deployed_from {
            attribute(out, "DeployedFrom", from);
        }
        out.push_str(" />");
    }
    out.push_str(newline);
    out.push_str("</Deployment>");
}

/// Serialises a whole journal document, byte for byte as the reference writes it.
pub fn serialise(entries: &[JournalEntry]) -> Vec<u8> {
    let mut out = String::with_capacity(64 + entries.len() * 400);
    out.push('\u{FEFF}');
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    if entries.is_empty() {
        out.push_str("<Deployments />");
        return out.into_bytes();
    }
    out.push_str("<Deployments>");
    for e in entries {
        out.push_str("\n  ");
        write_entry(&mut out, e, "\n  ");
    }
    let _ = write!(out, "\n</Deployments>");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn installed_on_spellings() {
        let t = utc(2026, 8, 21, 4, 5, 6);
        let cases: &[(&str, Option<DateTime<Utc>>)] = &[
            ("2026-08-21 04:05:06", Some(t)),
            (" 2026-08-21 04:05:06 ", Some(t)),
            ("2026-08-21 04.05.06", Some(t)),
            ("2026-08-21T04:05:06", Some(t)),
            ("2026-08-21T04:05:06Z", Some(t)),
            ("2026-08-21T06:05:06+02:00", Some(t)),
            (
                "2026-08-21T04:05:06.1234567",
                Some(utc(2026, 8, 21, 4, 5, 6) + chrono::Duration::nanoseconds(123_456_700)),
            ),
            ("8/21/2026 4:05:06 AM", Some(t)),
            ("08/21/2026 04:05:06", Some(t)),
            ("21/08/2026 04:05:06", Some(t)),
            ("21.08.2026 04:05:06", Some(t)),
            ("", None),
            ("yesterday", None),
            ("2026-13-40 99:99:99", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_installed_on(text), *expected, "{text:?}");
        }
        assert_eq!(format_installed_on(&t), "2026-08-21 04:05:06");
    }

    #[test]
    fn corrupt_documents_are_reported() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"   \n", "empty"),
            (b"\xEF\xBB\xBF", "empty"),
            (b"<Deployments><Deployment Id=\"a\"", "not closed"),
            (b"<Deployments><Deployment Id=\"a\" />", "truncated"),
            (b"<Deployments>\n  <Deployment Id=\"a\">\n    <Package", "not closed"),
            (b"<Other />", "root element"),
            (b"<Deployments /><Deployments />", "second root"),
            (b"<Deployments></Deployment>", ""),
            (b"garbage", ""),
            (b"\xff\xfe<\x00", "UTF-8"),
            (b"<Deployments><Deployment Id=\"a\" Id=\"b\" /></Deployments>", "attribute"),
            (b"<?xml version=\"1.0\"?>", "no <Deployments>"),
        ];
        for (bytes, needle) in cases {
            match parse(bytes) {
                Ok(e) => panic!("{:?} parsed as {e:?}", String::from_utf8_lossy(bytes)),
                Err(Corrupt(msg)) => assert!(msg.contains(needle), "{:?}: {msg}", String::from_utf8_lossy(bytes)),
            }
        }
    }

    #[test]
    fn attribute_escaping_round_trips() {
        let entry = JournalEntry {
            id: "x".into(),
            extracted_to: Some("/a & b/<c> \"d\" 'e'\n\tf\r".into()),
            installed_on: Some(utc(2026, 1, 2, 3, 4, 5)),
            was_successful: false,
            ..JournalEntry::default()
        };
        let bytes = serialise(std::slice::from_ref(&entry));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#"ExtractedTo="/a &amp; b/&lt;c&gt; &quot;d&quot; 'e'&#xA;&#x9;f&#xD;""#), "{text}");
        assert_eq!(parse(&bytes).unwrap(), vec![entry]);
    }

    #[test]
    fn literal_line_breaks_in_attributes_read_as_spaces() {
        let doc = "<Deployments><Deployment Id=\"a\" ExtractedTo=\"/x\r\n/y\t/z&#xA;\" /></Deployments>";
        assert_eq!(parse(doc.as_bytes()).unwrap()[0].extracted_to.as_deref(), Some("/x /y /z\n"));
    }

    #[test]
    fn release_attributes_round_trip_and_are_absent_without_a_link() {
        let plain = JournalEntry { id: "p".into(), ..JournalEntry::default() };
        let text = String::from_utf8(serialise(std::slice::from_ref(&plain))).unwrap();
        assert!(!text.contains("CurrentLink") && !text.contains("PreviousTarget"), "{text}");
        let linked = JournalEntry {
            id: "l".into(),
            current_link: Some("/srv/app/current".into()),
            previous_target: Some("/srv/app/releases/1".into()),
            ..JournalEntry::default()
        };
        let first = JournalEntry { previous_target: None, ..linked.clone() };
        let bytes = serialise(&[plain.clone(), linked.clone(), first.clone()]);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(
                r#"WasSuccessful="False" CurrentLink="/srv/app/current" PreviousTarget="/srv/app/releases/1" />"#
            ),
            "{text}"
        );
        assert_eq!(parse(&bytes).unwrap(), vec![plain, linked, first]);
    }

    #[test]
    fn empty_journal_is_written_and_read() {
        let bytes = serialise(&[]);
        assert_eq!(bytes, "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Deployments />".as_bytes());
        assert_eq!(parse(&bytes).unwrap(), vec![]);
    }
}
