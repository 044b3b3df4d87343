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
    // The reference's own spelling first: it is nearly every entry, and index rebuilds
    // parse every entry.
    if let Ok(naive) = NaiveDateTime::parse_from_str(text, INSTALLED_ON_FORMAT) {
        return Some(naive.and_utc());
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
    let mut scanner = Scanner::new(bytes).map_err(|e| Corrupt(e.to_string()))?;
    let mut entries = Vec::new();
    loop {
        match scanner.next_entry() {
            Ok(Some(found)) => entries.push(found.entry),
            Ok(None) => break,
            Err(ScanError::Corrupt(c)) => return Err(c),
            Err(ScanError::Io(e)) => return Err(Corrupt(e.to_string())),
        }
    }
    match scanner.ending() {
        Some(Ending::Complete(_)) => Ok(entries),
        Some(Ending::Torn { reason, .. }) => Err(Corrupt(reason.clone())),
        None => Err(Corrupt("the document was not read to its end".to_string())),
    }
}

/// Parses one `<Deployment>` element, as the bytes an index record points at hold it.
///
/// # Errors
/// [`Corrupt`] unless the bytes are exactly one `<Deployment>` element.
pub(crate) fn parse_entry(bytes: &[u8]) -> Result<JournalEntry, Corrupt> {
    use std::io::Read as _;
    let document = b"<Deployments>".chain(bytes).chain(b"</Deployments>".as_slice());
    let mut scanner = Scanner::new(document).map_err(|e| Corrupt(e.to_string()))?;
    let found = match scanner.next_entry() {
        Ok(Some(found)) => found,
        Ok(None) => return Err(Corrupt("no <Deployment> element".to_string())),
        Err(ScanError::Corrupt(c)) => return Err(c),
        Err(ScanError::Io(e)) => return Err(Corrupt(e.to_string())),
    };
    let whole = found.offset == 13 && found.len == bytes.len() as u64;
    match scanner.next_entry() {
        Ok(None) if whole && matches!(scanner.ending(), Some(Ending::Complete(_))) => Ok(found.entry),
        _ => Err(Corrupt("not exactly one <Deployment> element".to_string())),
    }
}

/// The directories a `<Deployment>` element names on its start tag: what the retention
/// guard needs of every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Dirs {
    /// `Id`.
    pub id: String,
    /// `ExtractedTo`, when not empty.
    pub extracted_to: Option<String>,
    /// `CustomInstallationDirectory`, when not empty.
    pub custom_installation_directory: Option<String>,
}

/// Reads [`Dirs`] from the start tag at the beginning of `bytes` (a `<Deployment>`
/// element), without reading the rest of the element.
///
/// # Errors
/// [`Corrupt`] when `bytes` does not start with a `<Deployment>` start tag.
pub(crate) fn start_tag_dirs(bytes: &[u8]) -> Result<Dirs, Corrupt> {
    if let Some(dirs) = start_tag_dirs_quickly(bytes) {
        return Ok(dirs);
    }
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let start = match reader.read_event_into(&mut buf) {
        Ok(Event::Start(start) | Event::Empty(start)) if start.local_name().as_ref() == "Deployment" => start,
        Ok(other) => return Err(Corrupt(format!("expected a <Deployment> element, found {other:?}"))),
        Err(e) => return Err(Corrupt(e.to_string())),
    };
    let mut dirs = Dirs::default();
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(|e| Corrupt(format!("a malformed attribute: {e}")))?;
        let slot = match attr.key.local_name().as_ref() {
            "Id" => None,
            "ExtractedTo" => Some(&mut dirs.extracted_to),
            "CustomInstallationDirectory" => Some(&mut dirs.custom_installation_directory),
            _ => continue,
        };
        let value = attribute_value(&attr.value).map_err(|e| Corrupt(format!("attribute {:?}: {e}", attr.key)))?;
        match slot {
            None => dirs.id = value,
            Some(slot) => *slot = non_empty(value),
        }
    }
    Ok(dirs)
}

/// [`start_tag_dirs`] for the start tags both we and the reference write: every attribute
/// as ` Name="value"`. Used only when the tag holds no `'` (in a double-quoted value a `"`
/// is always escaped, so ` Name="` cannot occur inside one; a single-quoted value could
/// hold anything), no line break or tab (which a value would need normalised) and its
/// first `>` ends it (an even number of `"` before it); `None` sends the tag to the XML
/// parser.
fn start_tag_dirs_quickly(bytes: &[u8]) -> Option<Dirs> {
    let rest = bytes.strip_prefix(b"<Deployment ")?;
    let end = memchr::memchr(b'>', rest)?;
    let tag = &rest[..end];
    // An odd number of quotes: the `>` found is inside a value, not the end of the tag.
    if memchr::memchr3(b'\'', b'\n', b'\r', tag).is_some()
        || memchr::memchr(b'\t', tag).is_some()
        || !memchr::memchr_iter(b'"', tag).count().is_multiple_of(2)
    {
        return None;
    }
    static FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 3]> = std::sync::LazyLock::new(|| {
        [" Id=\"", " ExtractedTo=\"", " CustomInstallationDirectory=\""].map(memchr::memmem::Finder::new)
    });
    // ` Name="` (or the tag's first attribute, right after `<Deployment `).
    let value = |finder: &memchr::memmem::Finder<'_>| -> Option<Option<String>> {
        let pattern = finder.needle();
        let at = if tag.starts_with(&pattern[1..]) {
            Some(pattern.len() - 1)
        } else {
            finder.find(tag).map(|at| at + pattern.len())
        };
        let Some(at) = at else { return Some(None) };
        let len = memchr::memchr(b'"', &tag[at..])?;
        let raw = std::str::from_utf8(&tag[at..at + len]).ok()?;
        Some(Some(attribute_value(raw).ok()?))
    };
    let [id, extracted_to, custom] = &*FINDERS;
    Some(Dirs {
        id: value(id)?.unwrap_or_default(),
        extracted_to: value(extracted_to)?.and_then(non_empty),
        custom_installation_directory: value(custom)?.and_then(non_empty),
    })
}

/// Where the parts of a journal document are, in bytes from the start of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Layout {
    /// Where the root element `<Deployments` starts.
    pub root_start: u64,
    /// Just after the root's start tag (`<Deployments>`); for `<Deployments />`, its end.
    pub content_start: u64,
    /// Just after the last thing inside the root that is not white space: where an appended
    /// entry goes. Everything from here on (white space, `</Deployments>`, whatever follows
    /// the root) is the tail that an append rewrites.
    pub tail_start: u64,
    /// The root is the empty element `<Deployments />` (a journal without entries).
    pub empty_root: bool,
    /// White space inside the root beyond one `"\n  "` between elements: what removed
    /// entries left behind.
    pub garbage: u64,
}

/// One `<Deployment>` element found by a [`Scanner`], with its place in the file.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Where `<Deployment` starts.
    pub offset: u64,
    /// The element's length, up to and including its closing `>`.
    pub len: u64,
    /// The entry it holds.
    pub entry: JournalEntry,
}

/// How a scanned document ended.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// One complete `<Deployments>` document.
    Complete(Layout),
    /// The file stops inside the root element, as a write interrupted mid-way leaves it.
    /// Everything up to `layout.tail_start` is sound: the elements found so far are complete.
    Torn {
        /// The layout of the sound part; `tail_start` is the end of the last complete element.
        layout: Layout,
        /// Why the rest does not parse.
        reason: String,
    },
}

/// Why a [`Scanner`] stopped early.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The document is not a journal (and not merely torn at its end).
    Corrupt(Corrupt),
}

impl From<Corrupt> for ScanError {
    fn from(c: Corrupt) -> Self {
        ScanError::Corrupt(c)
    }
}

/// Reads a journal document from any `BufRead` (a file, never wholly in memory) one
/// `<Deployment>` element at a time, noting where each starts and ends, where the root's
/// parts are ([`Layout`]), and whether the file is complete or torn at its end ([`Ending`]).
///
/// Lenient where the reference is (unknown elements and attributes, legacy entries) and
/// strict about the document: anything that is not one `<Deployments>` element is
/// [`ScanError::Corrupt`], except a file that simply stops inside the root, which is
/// [`Ending::Torn`] so that its complete entries can be kept.
pub(crate) struct Scanner<R: std::io::BufRead> {
    reader: quick_xml::Reader<R>,
    /// Bytes before what the reader sees: a byte-order mark, which quick-xml does not count.
    base: u64,
    buf: Vec<u8>,
    /// Open elements, the root included.
    depth: usize,
    /// The `<Deployment>` element being read: its offset and what was read so far.
    open: Option<(u64, (JournalEntry, Legacy))>,
    seen_root: bool,
    /// Anything but white space was seen (to tell an empty file from a foreign one).
    content: bool,
    layout: Layout,
    ending: Option<Ending>,
}

impl<R: std::io::BufRead> Scanner<R> {
    /// A scanner over `input`, which starts at the beginning of the file.
    ///
    /// # Errors
    /// The first bytes could not be read.
    pub(crate) fn new(mut input: R) -> std::io::Result<Self> {
        let mut base = 0;
        // quick-xml skips a byte-order mark without counting it: take it off ourselves so
        // that every offset is a file offset.
        if input.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
            input.consume(3);
            base = 3;
        }
        let mut reader = quick_xml::Reader::from_reader(input);
        reader.config_mut().check_end_names = true;
        Ok(Scanner {
            reader,
            base,
            buf: Vec::with_capacity(1024),
            depth: 0,
            open: None,
            seen_root: false,
            content: false,
            layout: Layout::default(),
            ending: None,
        })
    }

    /// How the document ended, once [`next_entry`](Self::next_entry) returned `Ok(None)`.
    pub(crate) fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    fn position(&self) -> u64 {
        self.base + self.reader.buffer_position()
    }

    /// The next `<Deployment>` element, `None` at the end of the document (see
    /// [`ending`](Self::ending)).
    ///
    /// # Errors
    /// The file could not be read, or it is not a journal document.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Found>, ScanError> {
        if self.ending.is_some() {
            return Ok(None);
        }
        loop {
            let before = self.position();
            // The buffer leaves `self` while the event borrows it, so `event` can take `&mut self`.
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let event = match self.reader.read_event_into(&mut buf) {
                Ok(event) => event,
                Err(quick_xml::Error::Io(e)) => {
                    return Err(ScanError::Io(std::io::Error::new(e.kind(), e.to_string())));
                }
                // Syntax errors are all "the input ended inside a tag, comment...": inside
                // the root, that is a torn end, not a foreign file.
                Err(quick_xml::Error::Syntax(e)) if self.depth > 0 => {
                    self.torn(format!("{e} (truncated)"));
                    return Ok(None);
                }
                Err(quick_xml::Error::Encoding(e)) => {
                    return Err(Corrupt(format!("the file is not UTF-8 ({e}) near byte {before}")).into());
                }
                Err(e) => return Err(Corrupt(format!("{e} at byte {}", self.position())).into()),
            };
            let after = self.position();
            let found = self.event(event, before, after);
            self.buf = buf;
            if let Some(found) = found? {
                return Ok(Some(found));
            }
            if self.ending.is_some() {
                return Ok(None);
            }
        }
    }

    fn torn(&mut self, reason: String) {
        let layout = Layout { tail_start: self.layout.tail_start, ..self.layout };
        self.ending = Some(Ending::Torn { layout, reason });
    }

    /// Something sound that ends at `after` was read inside the root.
    fn sound_until(&mut self, after: u64) {
        if self.depth == 1 {
            self.layout.tail_start = after;
        }
    }

    fn event(&mut self, event: Event<'_>, before: u64, after: u64) -> Result<Option<Found>, ScanError> {
        match event {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {
                self.content = true;
                self.sound_until(after);
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                self.content = true;
                let empty = matches!(event, Event::Empty(_));
                let name = start.local_name();
                let name = name.as_ref();
                match self.depth {
                    0 => {
                        if self.seen_root {
                            return Err(Corrupt(format!("a second root element <{}> at byte {before}", name)).into());
                        }
                        if name != "Deployments" {
                            return Err(
                                Corrupt(format!("the root element is <{}>, expected <Deployments>", name)).into()
                            );
                        }
                        self.seen_root = true;
                        self.layout.root_start = before;
                        self.layout.content_start = after;
                        self.layout.empty_root = empty;
                        // An append to `<Deployments />` rewrites the root from its start.
                        self.layout.tail_start = if empty { before } else { after };
                    }
                    1 if name == "Deployment" => {
                        let entry = read_deployment(start)?;
                        if empty {
                            self.layout.tail_start = after;
                            return Ok(Some(Found { offset: before, len: after - before, entry: finish(entry) }));
                        }
                        self.open = Some((before, entry));
                    }
                    2 if name == "Package" => {
                        if let Some((_, (entry, _))) = self.open.as_mut() {
                            entry.packages.push(read_package(start)?);
                        }
                    }
                    // Unknown elements are ignored, as the reference's LINQ queries ignore them.
                    _ => {}
                }
                if empty {
                    self.sound_until(after);
                } else {
                    self.depth += 1;
                }
            }
            Event::End(_) => {
                if self.depth == 0 {
                    return Err(Corrupt(format!("an unmatched end tag at byte {before}")).into());
                }
                self.depth -= 1;
                if self.depth == 1 {
                    self.layout.tail_start = after;
                    if let Some((offset, entry)) = self.open.take() {
                        return Ok(Some(Found { offset, len: after - offset, entry: finish(entry) }));
                    }
                }
            }
            Event::Text(t) => {
                let blank = t.bytes().all(|b| b.is_ascii_whitespace());
                if self.depth == 0 {
                    if !blank {
                        return Err(Corrupt(format!("text outside the root element: {:?}", truncate(&t, 40))).into());
                    }
                } else if blank {
                    if self.depth == 1 {
                        // One "\n  " between elements is the format; the rest is garbage.
                        self.layout.garbage += (t.len() as u64).saturating_sub(3);
                    }
                } else {
                    self.sound_until(after);
                }
            }
            Event::GeneralRef(r) => {
                if self.depth == 0 {
                    let raw = format!("&{};", &*r);
                    return Err(Corrupt(format!("text outside the root element: {:?}", truncate(&raw, 40))).into());
                }
                self.sound_until(after);
            }
            Event::CData(_) => {
                if self.depth == 0 {
                    return Err(Corrupt("CDATA outside the root element".to_string()).into());
                }
                self.sound_until(after);
            }
            Event::Eof => {
                if !self.seen_root {
                    let reason = if self.content { "there is no <Deployments> element" } else { "the file is empty" };
                    return Err(Corrupt(reason.to_string()).into());
                }
                if self.depth > 0 {
                    let inside = if self.open.is_some() || self.depth > 1 { "<Deployment>" } else { "<Deployments>" };
                    self.torn(format!("the document ends inside {inside} (truncated)"));
                } else {
                    self.ending = Some(Ending::Complete(self.layout));
                }
            }
        }
        Ok(None)
    }
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
        let value = attribute_value(&attr.value).map_err(|e| Corrupt(format!("attribute {key}: {e}")))?;
        out.push((key, value));
    }
    Ok(out)
}

/// An attribute's value as .NET's reader gives it: attribute-value normalisation (XML 1.0
/// §3.3.3), so literal line breaks and tabs read as spaces while escaped ones (`&#xA;`)
/// stay what they are; then entities unescaped.
fn attribute_value(raw: &str) -> Result<String, quick_xml::escape::EscapeError> {
    let breaks = memchr::memchr3(b'\r', b'\n', b'\t', raw.as_bytes()).is_some();
    if !breaks && memchr::memchr(b'&', raw.as_bytes()).is_none() {
        return Ok(raw.to_string());
    }
    if breaks {
        let normalised = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
        quick_xml::escape::unescape(&normalised).map(std::borrow::Cow::into_owned)
    } else {
        quick_xml::escape::unescape(raw).map(std::borrow::Cow::into_owned)
    }
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

/// One `<Deployment>` element as it stands inside the document (its lines after the first
/// indented by two spaces), without the `"\n  "` that precedes it.
pub(crate) fn entry_in_document(entry: &JournalEntry) -> String {
    let mut out = String::with_capacity(400);
    write_entry(&mut out, entry, "\n  ");
    out
}

/// What goes between two elements of the root, and before the first.
pub(crate) const SEPARATOR: &str = "\n  ";
/// The end of a document with entries: what an append writes after the last one.
pub(crate) const CLOSE: &str = "\n</Deployments>";
/// The start of every document we write, up to and including `<Deployments>`.
pub(crate) const PROLOGUE: &str = "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Deployments>";

/// Serialises a whole journal document, byte for byte as the reference writes it.
pub fn serialise(entries: &[JournalEntry]) -> Vec<u8> {
    serialise_with_offsets(entries).0
}

/// [`serialise`], also giving where each entry's element is: `(offset, length)` in bytes.
pub(crate) fn serialise_with_offsets(entries: &[JournalEntry]) -> (Vec<u8>, Vec<(u64, u64)>) {
    let mut out = String::with_capacity(64 + entries.len() * 400);
    let mut places = Vec::with_capacity(entries.len());
    if entries.is_empty() {
        out.push('\u{FEFF}');
        out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        out.push_str("<Deployments />");
        return (out.into_bytes(), places);
    }
    out.push_str(PROLOGUE);
    for e in entries {
        out.push_str(SEPARATOR);
        let start = out.len();
        write_entry(&mut out, e, "\n  ");
        places.push((start as u64, (out.len() - start) as u64));
    }
    let _ = write!(out, "{CLOSE}");
    (out.into_bytes(), places)
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
    fn start_tags_read_quickly_agree_with_the_parser() {
        let entry = JournalEntry {
            id: "x-1".into(),
            extracted_to: Some("/a & b/<c> \"d\" é".into()),
            custom_installation_directory: Some("/www".into()),
            ..JournalEntry::default()
        };
        let element = entry_in_document(&entry);
        let quick = start_tag_dirs_quickly(element.as_bytes()).expect("our own tags take the quick path");
        assert_eq!(quick.id, "x-1");
        assert_eq!(quick.extracted_to.as_deref(), Some("/a & b/<c> \"d\" é"));
        assert_eq!(quick.custom_installation_directory.as_deref(), Some("/www"));
        // Tags the quick path leaves to the parser, and what the parser makes of them.
        let cases: &[(&str, Option<&str>)] = &[
            ("<Deployment Id='a' ExtractedTo='/x' />", Some("/x")),
            ("<Deployment Id=\"a\" Note='ExtractedTo=\"/y\"' ExtractedTo=\"/x\" />", Some("/x")),
            ("<Deployment Id=\"a\"\n  ExtractedTo=\"/x\" />", Some("/x")),
            ("<Deployment Id=\"a\" ExtractedTo=\"/x\ty\" />", Some("/x y")),
            ("<Deployment\tId=\"a\" ExtractedTo=\"\" />", None),
            ("<Deployment Id=\"a\" Note=\"a>b\" ExtractedTo=\"/x\" />", Some("/x")),
        ];
        for (tag, expected) in cases {
            let dirs = start_tag_dirs(tag.as_bytes()).unwrap();
            assert_eq!(dirs.id, "a", "{tag}");
            assert_eq!(dirs.extracted_to.as_deref(), *expected, "{tag}");
        }
        // A tag without the attribute, or the attribute's name inside another's.
        let dirs = start_tag_dirs(b"<Deployment Id=\"a\" XExtractedTo=\"/no\" />").unwrap();
        assert_eq!(dirs.extracted_to, None);
    }

    #[test]
    fn empty_journal_is_written_and_read() {
        let bytes = serialise(&[]);
        assert_eq!(bytes, "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Deployments />".as_bytes());
        assert_eq!(parse(&bytes).unwrap(), vec![]);
    }
}
