//! Extraction tests. This module holds the archive builders (tar with raw headers so
//! hostile names survive, zip, gzip) and the [`Sandbox`] every test extracts in;
//! [`well_formed`] covers good archives of every format, [`hostile`] builds one hostile
//! archive per kind of attack (the error names the entry or cause, no destination and
//! no partial directory is left, nothing outside changes), and [`property`] checks with
//! generated archives that nothing ever lands outside the destination.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;

/// One tar entry, written with raw header fields so hostile names survive.
pub(crate) enum T<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str),
    Fifo(&'a str),
}

fn raw_header(name: &str, kind: ::tar::EntryType, size: u64, mode: u32, link: &str) -> ::tar::Header {
    let mut h = ::tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_600_000_000);
    let old = h.as_old_mut();
    assert!(name.len() <= 100 && link.len() <= 100, "test names fit the old header");
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname = [0; 100];
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    h
}

/// A tar archive of `entries`.
pub(crate) fn tar_bytes(entries: &[T<'_>]) -> Vec<u8> {
    use ::tar::EntryType as E;
    let mut b = ::tar::Builder::new(Vec::new());
    for e in entries {
        let (h, data): (_, &[u8]) = match e {
            T::File(n, d, m) => (raw_header(n, E::Regular, d.len() as u64, *m, ""), d),
            T::Dir(n, m) => (raw_header(n, E::Directory, 0, *m, ""), b""),
            T::Symlink(n, t) => (raw_header(n, E::Symlink, 0, 0o777, t), b""),
            T::Hardlink(n, t) => (raw_header(n, E::Link, 0, 0o644, t), b""),
            T::Char(n) => (raw_header(n, E::Char, 0, 0o644, ""), b""),
            T::Fifo(n) => (raw_header(n, E::Fifo, 0, 0o644, ""), b""),
        };
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// One zip entry.
pub(crate) enum Z<'a> {
    File(&'a str, &'a [u8]),
    Mode(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

pub(crate) fn zip_bytes(entries: &[Z<'_>]) -> Vec<u8> {
    zip_bytes_with(entries, false)
}

/// `lenient`: skip entries the zip writer itself refuses (duplicates after its own
/// normalisation), for generated inputs.
pub(crate) fn zip_bytes_with(entries: &[Z<'_>], lenient: bool) -> Vec<u8> {
    use ::zip::write::SimpleFileOptions;
    let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(::zip::CompressionMethod::Deflated);
    for e in entries {
        let result = match e {
            Z::File(n, d) => w.start_file(*n, opts).map(|()| w.write_all(d).unwrap()),
            Z::Mode(n, d, m) => w.start_file(*n, opts.unix_permissions(*m)).map(|()| w.write_all(d).unwrap()),
            Z::Dir(n) => w.add_directory(*n, opts),
            Z::Symlink(n, t) => w.add_symlink(*n, *t, opts),
        };
        if let Err(e) = result {
            assert!(lenient, "zip writer refused an entry: {e}");
        }
    }
    w.finish().unwrap().into_inner()
}

/// A sandbox: `outside/sentinel` next to `work/`, the destination's parent.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/sentinel"), "keep").unwrap();
        Sandbox { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn dest(&self) -> PathBuf {
        self.path("work/dest")
    }
    /// Every path in the sandbox outside `work/dest`, with its kind and mode.
    fn snapshot(&self) -> Vec<String> {
        let mut all: Vec<String> = walkdir::WalkDir::new(self.dir.path())
            .follow_links(false)
            .into_iter()
            .flatten()
            .filter(|e| !e.path().starts_with(self.dest()) && e.path() != self.path("work"))
            .map(|e| {
                let m = e.path().symlink_metadata().unwrap();
                format!("{} {:o} {}", e.path().display(), m.mode(), m.nlink())
            })
            .collect();
        all.sort();
        all
    }
    fn extract(&self, archive: &Path, options: &ExtractOptions) -> (Result<ExtractSummary, Error>, String) {
        let (log, out, err) = Log::capture();
        let r = extract(archive, &self.dest(), options, &log);
        log.flush();
        (r, format!("{}{}", out.contents(), err.contents()))
    }
    /// Extraction must fail with `needle` in the message and leave no trace.
    #[track_caller]
    fn refuses(&self, archive: &Path, needle: &str) -> String {
        self.refuses_with(archive, needle, &ExtractOptions::default())
    }
    #[track_caller]
    fn refuses_with(&self, archive: &Path, needle: &str, options: &ExtractOptions) -> String {
        let before = self.snapshot();
        let (r, _) = self.extract(archive, options);
        let e = r.expect_err("extraction should fail").to_string();
        assert!(e.contains(needle), "error {e:?} lacks {needle:?}");
        assert!(!self.dest().exists() && self.dest().symlink_metadata().is_err(), "destination exists after failure");
        let left: Vec<_> = std::fs::read_dir(self.path("work")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "partial directories left: {left:?}");
        assert_eq!(before, self.snapshot(), "something outside the destination changed");
        assert_eq!(std::fs::read_to_string(self.path("outside/sentinel")).unwrap(), "keep");
        e
    }
    #[track_caller]
    fn extracts(&self, archive: &Path) -> (ExtractSummary, String) {
        let (r, log) = self.extract(archive, &ExtractOptions::default());
        (r.unwrap_or_else(|e| panic!("extraction failed: {e}")), log)
    }
}

fn mode(p: &Path) -> u32 {
    p.symlink_metadata().unwrap().permissions().mode() & 0o7777
}

mod hostile;
mod property;
mod well_formed;
