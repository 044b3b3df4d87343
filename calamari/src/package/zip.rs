//! Zip-based packages: `.zip`, `.nupkg`, `.whl`, `.jar`, `.war`, `.ear`.
//!
//! The central directory is read once and checked as a whole before anything is written:
//! local and central headers must agree, names must be unique, and no two entries may
//! share bytes (the overlapping-entry zip bomb). Directories are created on this thread
//! in one pass; then a few writer threads, each with its own clone of the archive reading
//! with `pread` (no shared file position), inflate and write the files in parallel: every
//! zip entry is an independent stream.
//!
//! For a `.nupkg`, NuGet's own metadata is skipped (`_rels/`, `package/services/metadata/`,
//! `[Content_Types].xml`, the root `.nuspec`, `*.nupkg.sha512`) and names are URL-unescaped
//! (`my%20resource.txt`), as the reference's `NupkgExtractor` does.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::SystemTime;

use ::zip::ZipArchive;
use ::zip::read::HasZipMetadata as _;

use super::Error;
use super::error::corrupt;
use super::refusal::Refusal;
use super::sink::{self, Sink};
use super::writer::{self, file_mode};
use crate::version::Version;

/// A `Read + Seek` over a shared file using positioned reads, so clones read independently.
#[derive(Debug, Clone)]
pub(crate) struct PositionedReader {
    file: Arc<File>,
    len: u64,
    pos: u64,
}

impl PositionedReader {
    /// Wraps an open file.
    pub(crate) fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(PositionedReader { file: Arc::new(file), len, pos: 0 })
    }
}

impl Read for PositionedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PositionedReader {
    fn seek(&mut self, from: SeekFrom) -> io::Result<u64> {
        let new = match from {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the file")),
        }
    }
}

/// True for NuGet metadata entries that the reference does not extract.
pub(crate) fn is_nupkg_metadata(name: &str) -> bool {
    let lower = name.replace('\\', "/").to_ascii_lowercase();
    lower.starts_with("_rels/")
        || lower.starts_with("package/services/metadata/")
        || lower == "[content_types].xml"
        || (!lower.contains('/') && lower.ends_with(".nuspec"))
        || lower.ends_with(".nupkg.sha512")
}

fn open(path: &Path) -> Result<ZipArchive<PositionedReader>, Error> {
    let file = crate::fs::open(path)?;
    let reader = PositionedReader::new(file).map_err(|e| crate::fs::IoError {
        op: "read metadata of",
        path: path.to_path_buf(),
        source: e,
    })?;
    ZipArchive::new(reader).map_err(|e| corrupt(path, None, &e))
}

/// DOS date and time (local time, as `unzip` reads it) to a `SystemTime`.
fn dos_time(t: ::zip::DateTime) -> Option<SystemTime> {
    use chrono::TimeZone as _;
    let naive = chrono::NaiveDate::from_ymd_opt(i32::from(t.year()), u32::from(t.month()), u32::from(t.day()))?
        .and_hms_opt(u32::from(t.hour()), u32::from(t.minute()), u32::from(t.second()))?;
    let local = chrono::Local.from_local_datetime(&naive).earliest()?;
    Some(sink::unix_time(local.timestamp()))
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

struct FileJob {
    index: usize,
    path: PathBuf,
    entry: String,
    mode: u32,
    mtime: Option<SystemTime>,
    compressed: u64,
}

/// General-purpose flag bit 11: the name and comment are UTF-8.
const UTF8_FLAG: u16 = 1 << 11;

/// Bytes for a message: printable ASCII as is, everything else (and `\`) as `\xNN`.
fn escape_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| if (0x20..0x7f).contains(&b) && b != b'\\' { (b as char).to_string() } else { format!("\\x{b:02x}") })
        .collect()
}

/// Extracts a zip-based package through `sink`.
pub(crate) fn extract(path: &Path, nupkg: bool, sink: &mut Sink<'_>) -> Result<(), Error> {
    let mut zip = open(path)?;
    zip.validate_header_consistency().map_err(|e| corrupt(path, None, &e))?;
    let mut jobs = Vec::new();
    for index in 0..zip.len() {
        let (raw_name, unix_mode, mtime, encrypted, size, compressed) = {
            let entry = zip.by_index_data(index).map_err(|e| corrupt(path, None, &e))?;
            let meta = entry.get_metadata();
            // Bit 11 says the name is UTF-8; the zip crate would read a name that is not as
            // CP437, so such a name is refused here instead.
            if meta.flags.as_u16() & UTF8_FLAG != 0 && std::str::from_utf8(entry.name_raw()).is_err() {
                return Err(sink.refuse(&escape_bytes(entry.name_raw()), Refusal::NameNotUtf8));
            }
            let name: String = entry.name().map_err(|e| corrupt(path, None, &e))?.into_owned();
            (
                name,
                entry.unix_mode(),
                entry.last_modified().and_then(dos_time),
                meta.flags.is_encrypted(),
                entry.size(),
                entry.compressed_size(),
            )
        };
        if nupkg && is_nupkg_metadata(&raw_name) {
            continue;
        }
        sink.count_entry()?;
        let name = if nupkg { crate::text_encoding::percent_decode(&raw_name) } else { raw_name.clone() };
        let Some(rel) = sink.path_of(&name)? else { continue };
        if encrypted {
            return Err(sink.refuse(&name, Refusal::Encrypted));
        }
        let kind = unix_mode.map(|m| m & S_IFMT).unwrap_or(0);
        let is_dir = raw_name.ends_with('/') || raw_name.ends_with('\\') || kind == S_IFDIR;
        if is_dir {
            sink.dir(&name, &rel, unix_mode, mtime)?;
        } else if kind == S_IFLNK {
            if size > sink::MAX_LINK_BYTES as u64 {
                return Err(sink.refuse(&name, Refusal::LinkTargetTooLong));
            }
            let mut target = Vec::new();
            zip.by_index(index)
                .map_err(|e| corrupt(path, Some(&name), &e))?
                .take(sink::MAX_LINK_BYTES as u64 + 1)
                .read_to_end(&mut target)
                .map_err(|e| corrupt(path, Some(&name), &e))?;
            let target = String::from_utf8(target)
                .map_err(|_| sink.refuse(&name, Refusal::NotUtf8 { what: "symbolic link target" }))?;
            sink.symlink(&name, &rel, &target)?;
        } else if kind == 0 || kind == S_IFREG {
            let file_path = sink.file(&name, &rel)?;
            sink.budget().declare(&name, size)?;
            jobs.push(FileJob { index, path: file_path, entry: name, mode: file_mode(unix_mode), mtime, compressed });
        } else {
            return Err(sink.refuse(&name, Refusal::SpecialFile { kinds: "device files, FIFOs and sockets" }));
        }
    }
    write_files(path, &zip, &jobs, sink)
}

/// Inflates and writes the files, in parallel when there are several.
fn write_files(
    path: &Path,
    zip: &ZipArchive<PositionedReader>,
    jobs: &[FileJob],
    sink: &Sink<'_>,
) -> Result<(), Error> {
    let workers = sink.threads().min(jobs.len()).max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let budget = sink.budget();
    let run = |mut zip: ZipArchive<PositionedReader>| -> Result<(), Error> {
        let mut buf = vec![0u8; writer::COPY_BUFFER];
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= jobs.len() || failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let job = &jobs[i];
            let result =
                zip.by_index(job.index).map_err(|e| corrupt(path, Some(&job.entry), &e)).and_then(|mut reader| {
                    writer::write_stream(
                        &job.path,
                        &job.entry,
                        path,
                        job.mode,
                        job.mtime,
                        &mut reader,
                        budget,
                        Some(job.compressed),
                        &mut buf,
                    )
                });
            if let Err(e) = result {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    };
    if workers == 1 {
        return run(zip.clone());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(|| run(zip.clone()))).collect();
        let mut first = Ok(());
        for handle in handles {
            let result = handle.join().unwrap_or(Err(Error::ThreadPanicked { thread: "a zip writer" }));
            if first.is_ok() {
                first = result;
            }
        }
        first
    })
}

/// The id and version from the `.nuspec` at the root of a `.nupkg`, if it has one.
///
/// # Errors
/// When the file is not a readable zip, or the nuspec's version does not parse.
pub(crate) fn read_nuspec_identity(path: &Path) -> Result<Option<(String, Version)>, Error> {
    let mut zip = open(path)?;
    let index = (0..zip.len()).find(|&i| {
        zip.by_index_data(i)
            .ok()
            .and_then(|e| e.name().ok().map(|n| !n.contains('/') && n.to_ascii_lowercase().ends_with(".nuspec")))
            .unwrap_or(false)
    });
    let Some(index) = index else { return Ok(None) };
    let mut xml = Vec::new();
    zip.by_index(index)
        .map_err(|e| corrupt(path, Some("nuspec"), &e))?
        .take(4 << 20)
        .read_to_end(&mut xml)
        .map_err(|e| corrupt(path, Some("nuspec"), &e))?;
    let (id, version) = parse_nuspec(&xml);
    match (id, version) {
        (Some(id), Some(version)) => {
            let parsed = Version::parse(&version)
                .ok_or_else(|| Error::InvalidNuspecVersion { path: path.to_path_buf(), version: version.clone() })?;
            Ok(Some((id, parsed)))
        }
        _ => Ok(None),
    }
}

/// `<package><metadata><id>` and `<version>` of a nuspec.
fn parse_nuspec(xml: &[u8]) -> (Option<String>, Option<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut stack: Vec<String> = Vec::new();
    let (mut id, mut version) = (None, None);
    let mut buf = Vec::new();
    // The escaped text of the metadata element being read: quick-xml reports `a&amp;b` as
    // text, an entity reference and text, so the pieces are joined before unescaping.
    let mut raw: Option<String> = None;
    let in_metadata = |stack: &[String]| stack.len() == 3 && stack[0] == "package" && stack[1] == "metadata";
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => stack.push(e.local_name().as_ref().to_string()),
            Ok(Event::End(_)) => {
                if let Some(raw) = raw.take().filter(|_| in_metadata(&stack)) {
                    let text = quick_xml::escape::unescape(&raw).map(|c| c.trim().to_string()).unwrap_or_default();
                    match stack[2].as_str() {
                        "id" if id.is_none() => id = Some(text),
                        "version" if version.is_none() => version = Some(text),
                        _ => {}
                    }
                }
                stack.pop();
            }
            Ok(Event::Text(t)) if in_metadata(&stack) => raw.get_or_insert_default().push_str(&t),
            Ok(Event::GeneralRef(r)) if in_metadata(&stack) => {
                let raw = raw.get_or_insert_default();
                raw.push('&');
                raw.push_str(&r);
                raw.push(';');
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    (id, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nupkg_metadata_is_recognised() {
        for name in [
            "_rels/.rels",
            "[Content_Types].xml",
            "Acme.Core.nuspec",
            "package/services/metadata/core-properties/x.psmdcp",
            "Acme.Core.1.0.0.nupkg.sha512",
        ] {
            assert!(is_nupkg_metadata(name), "{name}");
        }
        for name in ["content/a.nuspec", "lib/net45/a.dll", "my%20resource.txt", "package/other.txt"] {
            assert!(!is_nupkg_metadata(name), "{name}");
        }
    }

    #[test]
    fn name_bytes_are_escaped() {
        assert_eq!(escape_bytes(b"caf\xe9\\x.txt"), "caf\\xe9\\x5cx.txt");
    }

    #[test]
    fn nuspec_id_and_version() {
        let xml = br#"<?xml version="1.0"?>
<package xmlns="http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd">
  <metadata><id>Acme.Core</id><version>1.0.01</version><title>x</title></metadata>
</package>"#;
        assert_eq!(parse_nuspec(xml), (Some("Acme.Core".to_string()), Some("1.0.01".to_string())));
    }
}
