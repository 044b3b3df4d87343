//! Extraction tests: well-formed archives of every format, and one hostile archive (built
//! here, in memory) for every archive row of the hardening catalogue. Each
//! hostile case checks the error names the entry or cause, that no destination exists
//! afterwards, that no partial directory is left, and that nothing outside changed.

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

// ---- well-formed archives -------------------------------------------------------------

#[test]
fn tar_family_extracts_files_dirs_links_modes_and_times() {
    let tar = tar_bytes(&[
        T::Dir("app/", 0o755),
        T::File("app/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
        T::File("app/readme.txt", b"hello", 0o644),
        T::Dir("app/empty/", 0o750),
        T::Symlink("app/latest", "run.sh"),
        T::Hardlink("app/run-copy.sh", "app/run.sh"),
        T::File("./top.txt", b"top", 0o600),
    ]);
    type Compress = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let compressors: Vec<(&str, Compress)> = vec![
        ("p.1.0.0.tar", Box::new(|d: &[u8]| d.to_vec())),
        ("p.1.0.0.tar.gz", Box::new(gzip)),
        ("p.1.0.0.tgz", Box::new(gzip)),
        (
            "p.1.0.0.tar.bz2",
            Box::new(|d: &[u8]| {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(d).unwrap();
                e.finish().unwrap()
            }),
        ),
        (
            "p.1.0.0.tar.xz",
            Box::new(|d: &[u8]| {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(d).unwrap();
                e.finish().unwrap()
            }),
        ),
        ("p.1.0.0.tar.zst", Box::new(|d: &[u8]| zstd::encode_all(d, 1).unwrap())),
    ];
    for (name, compress) in compressors {
        let s = Sandbox::new();
        let a = s.archive(name, &compress(&tar));
        let (summary, _) = s.extracts(&a);
        let d = s.dest();
        assert_eq!(summary.file_count, 5, "{name}");
        assert_eq!(std::fs::read_to_string(d.join("app/run.sh")).unwrap(), "#!/bin/sh\necho hi\n");
        assert_eq!(mode(&d.join("app/run.sh")) & 0o100, 0o100, "{name}: executable bit kept");
        assert_eq!(mode(&d.join("top.txt")), 0o600, "{name}");
        assert_eq!(mode(&d.join("app/empty")) & 0o700, 0o700);
        assert_eq!(mode(&d.join("app/empty")) & 0o007, 0, "{name}: 0750 kept");
        assert_eq!(std::fs::read_link(d.join("app/latest")).unwrap(), Path::new("run.sh"));
        assert_eq!(d.join("app/run-copy.sh").metadata().unwrap().ino(), d.join("app/run.sh").metadata().unwrap().ino());
        assert_eq!(d.join("app/readme.txt").metadata().unwrap().mtime(), 1_600_000_000, "{name}: mtime kept");
        assert_eq!(d.join("app/empty").metadata().unwrap().mtime(), 1_600_000_000, "{name}: dir mtime kept");
    }
}

#[test]
fn zip_family_extracts_with_modes_links_and_nupkg_rules() {
    let s = Sandbox::new();
    let z = zip_bytes(&[
        Z::Dir("bin/"),
        Z::Mode("bin/tool", b"#!/bin/sh\n", 0o755),
        Z::File("dir\\inner.txt", b"backslash"),
        Z::Dir("empty/"),
        Z::Symlink("bin/link", "tool"),
    ]);
    let a = s.archive("p.1.0.0.whl", &z);
    let (summary, _) = s.extracts(&a);
    let d = s.dest();
    assert_eq!(summary.file_count, 3);
    assert_eq!(mode(&d.join("bin/tool")) & 0o111, 0o111);
    assert_eq!(std::fs::read_to_string(d.join("dir/inner.txt")).unwrap(), "backslash");
    assert!(d.join("empty").is_dir());
    assert_eq!(std::fs::read_link(d.join("bin/link")).unwrap(), Path::new("tool"));

    let s = Sandbox::new();
    let z = zip_bytes(&[
        Z::File("_rels/.rels", b"x"),
        Z::File("[Content_Types].xml", b"x"),
        Z::File("Acme.nuspec", b"<package><metadata><id>Acme</id><version>2.0.0</version></metadata></package>"),
        Z::File("package/services/metadata/core-properties/a.psmdcp", b"x"),
        Z::File("Acme.2.0.0.nupkg.sha512", b"x"),
        Z::File("my%20resource.txt", b"spaced"),
        Z::File("content/keep.nuspec", b"kept"),
    ]);
    let a = s.archive("Other.1.0.0.nupkg", &z);
    let (summary, _) = s.extracts(&a);
    let mut names: Vec<_> =
        walkdir::WalkDir::new(s.dest()).min_depth(1).into_iter().flatten().map(|e| e.file_name().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["content", "keep.nuspec", "my resource.txt"].map(std::ffi::OsString::from));
    assert_eq!(summary.file_count, 2);
    let identity = PackageIdentity::from_file(&a).unwrap();
    assert_eq!((identity.id.as_str(), identity.version.to_string().as_str()), ("Acme", "2.0.0"));
    assert_eq!(identity.file_version.unwrap().to_string(), "1.0.0");
}

#[test]
fn zip64_entries_extract() {
    use ::zip::write::SimpleFileOptions;
    let s = Sandbox::new();
    let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("big.txt", SimpleFileOptions::default().large_file(true)).unwrap();
    w.write_all(b"zip64 entry").unwrap();
    let bytes = w.finish().unwrap().into_inner();
    let a = s.archive("p.1.0.0.zip", &bytes);
    s.extracts(&a);
    assert_eq!(std::fs::read_to_string(s.dest().join("big.txt")).unwrap(), "zip64 entry");
}

#[test]
fn many_files_go_through_the_writer_pools() {
    let names: Vec<String> = (0..300).map(|i| format!("d{}/f{i}.txt", i % 7)).collect();
    let tar = tar_bytes(&names.iter().map(|n| T::File(n, n.as_bytes(), 0o644)).collect::<Vec<_>>());
    let zip = zip_bytes(&names.iter().map(|n| Z::File(n, n.as_bytes())).collect::<Vec<_>>());
    for (name, bytes) in [("m.1.0.0.tar.gz", gzip(&tar)), ("m.1.0.0.zip", zip)] {
        let s = Sandbox::new();
        let a = s.archive(name, &bytes);
        let (summary, _) = s.extracts(&a);
        assert_eq!(summary.file_count, 300);
        for n in &names {
            assert_eq!(std::fs::read_to_string(s.dest().join(n)).unwrap(), *n);
        }
    }
}

#[test]
fn large_tar_entries_stream_and_check_the_gzip_trailer() {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let s = Sandbox::new();
    let a = s.archive("b.1.0.0.tar.gz", &gzip(&tar_bytes(&[T::File("big.bin", &big, 0o644)])));
    s.extracts(&a);
    assert_eq!(std::fs::read(s.dest().join("big.bin")).unwrap(), big);
}

#[test]
fn empty_zip_is_fine_with_a_warning() {
    let s = Sandbox::new();
    let a = s.archive("e.1.0.0.zip", &zip_bytes(&[]));
    let (summary, log) = s.extracts(&a);
    assert_eq!(summary.file_count, 0);
    assert!(log.contains("contains no files"), "{log}");
}

#[test]
fn limits_come_from_variables() {
    let mut v = VariableDictionary::new();
    assert_eq!(ExtractOptions::from_variables(&v).unwrap().max_entries, Some(DEFAULT_MAX_ENTRIES));
    v.set(limit_names::MAXIMUM_UNCOMPRESSED_SIZE, Some("1000".to_string()));
    v.set(limit_names::MAXIMUM_COMPRESSION_RATIO, Some("0".to_string()));
    v.set(limit_names::MAXIMUM_ENTRY_COUNT, Some("5".to_string()));
    let o = ExtractOptions::from_variables(&v).unwrap();
    assert_eq!((o.max_uncompressed_bytes, o.max_ratio, o.max_entries), (Some(1000), None, Some(5)));
    v.set(limit_names::ENABLED, Some("False".to_string()));
    let o = ExtractOptions::from_variables(&v).unwrap();
    assert_eq!((o.max_uncompressed_bytes, o.max_ratio, o.max_entries), (None, None, None));
    v.set(limit_names::ENABLED, Some("true".to_string()));
    v.set(limit_names::MAXIMUM_ENTRY_COUNT, Some("lots".to_string()));
    let e = ExtractOptions::from_variables(&v).unwrap_err().to_string();
    assert!(e.contains("MaximumEntryCount") && e.contains("lots"), "{e}");
}

// ---- the hardening catalogue, archive section -----------------------------------------

#[test]
fn a01_parent_components_are_refused() {
    for name in ["../../x", "a/../../x", "a/../b"] {
        let s = Sandbox::new();
        let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::File("ok.txt", b"x", 0o644), T::File(name, b"p", 0o644)]));
        let e = s.refuses(&a, "'..'");
        assert!(e.contains(name), "{e}");
        let a = s.archive("p.1.0.0.zip", &zip_bytes(&[Z::File(name, b"p")]));
        s.refuses(&a, name);
    }
}

#[test]
fn a02_absolute_and_windows_rooted_paths_are_refused() {
    for (name, why) in [
        ("/tmp/calamari-a02", "absolute"),
        ("C:\\x", "drive letter"),
        ("\\\\srv\\share\\x", "absolute"),
        ("..\\..\\x", "'..'"),
    ] {
        let s = Sandbox::new();
        let a = s.archive("p.1.0.0.tar.gz", &gzip(&tar_bytes(&[T::File(name, b"p", 0o644)])));
        s.refuses(&a, why);
        let a = s.archive("p.1.0.0.zip", &zip_bytes(&[Z::File(name, b"p")]));
        s.refuses(&a, why);
    }
    assert!(!Path::new("/tmp/calamari-a02").exists());
}

#[test]
fn a03_writes_through_a_symlink_are_refused() {
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::Symlink("l", ".."), T::File("l/x/y", b"p", 0o644)]));
    s.refuses(&a, "through the symbolic link 'l'");
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::Symlink("l", "../outside"), T::Dir("l/sub/", 0o755)]));
    s.refuses(&a, "through the symbolic link 'l'");
    let a = s.archive("p.1.0.0.zip", &zip_bytes(&[Z::Symlink("l", ".."), Z::File("l/pwn", b"p")]));
    s.refuses(&a, "through the symbolic link 'l'");
    // A link to the outside alone is not created, with a warning naming it.
    let a = s.archive("q.1.0.0.tar", &tar_bytes(&[T::Symlink("up", "../outside"), T::File("f", b"x", 0o644)]));
    let (summary, log) = s.extracts(&a);
    assert!(s.dest().join("f").exists() && s.dest().join("up").symlink_metadata().is_err());
    assert!(log.contains("Cannot create symbolic link: up -> ../outside"), "{log}");
    assert_eq!(summary.skipped_links, 1);
}

#[test]
fn a04_chained_links_cannot_escape() {
    let s = Sandbox::new();
    let a = s.archive(
        "p.1.0.0.tar",
        &tar_bytes(&[T::Symlink("a", "/tmp"), T::Symlink("b", "a/."), T::File("b/f", b"p", 0o644)]),
    );
    s.refuses(&a, "symbolic link 'b'");
    // Links that only escape through each other are skipped; honest ones are kept.
    let a = s.archive(
        "q.1.0.0.tar",
        &tar_bytes(&[
            T::Dir("d/", 0o755),
            T::Symlink("l", "d/../x"),
            T::Symlink("here", "."),
            T::Symlink("up", "here/.."),
            T::Symlink("d2", "d"),
            T::Symlink("deep", "d2/../d2/../here/x"),
            T::Symlink("loop1", "loop2"),
            T::Symlink("loop2", "loop1"),
        ]),
    );
    let (_, log) = s.extracts(&a);
    let d = s.dest();
    assert!(d.join("l").symlink_metadata().is_ok());
    assert!(d.join("deep").symlink_metadata().is_ok());
    assert!(d.join("up").symlink_metadata().is_err(), "up resolves to ../");
    assert!(log.contains("up -> here/.."), "{log}");
    assert!(d.join("loop1").symlink_metadata().is_err(), "loops are skipped");
    // Targets resolve through the archive's other links, not lexically: with `d3 -> sub/dir`,
    // `d3/../../x` is `x`, inside.
    let s = Sandbox::new();
    let a = s.archive("r.1.0.0.tar", &tar_bytes(&[T::Symlink("l2", "d3/../../x"), T::Symlink("d3", "sub/dir")]));
    let (_, log) = s.extracts(&a);
    assert!(s.dest().join("l2").symlink_metadata().is_ok(), "{log}");
    // The late-link trick: `l3 -> d4/../x` is inside while d4 is a directory name, but
    // `d4 -> .` arriving later makes it `./../x`.
    let s = Sandbox::new();
    let a = s.archive("s.1.0.0.tar", &tar_bytes(&[T::Symlink("l3", "d4/../x"), T::Symlink("d4", ".")]));
    let (_, log) = s.extracts(&a);
    assert!(s.dest().join("l3").symlink_metadata().is_err(), "{log}");
    assert!(s.dest().join("d4").symlink_metadata().is_ok());
}

#[test]
fn a05_directory_over_a_symlink_is_refused_and_nothing_is_chmodded() {
    let s = Sandbox::new();
    let victim = s.path("outside");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = victim.to_str().unwrap().to_string();
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::Symlink("d", &target), T::Dir("d/", 0o777)]));
    s.refuses(&a, "symbolic link (duplicate entry)");
    assert_eq!(mode(&victim), 0o700);
}

#[test]
fn a06_hardlinks_only_to_earlier_files_inside() {
    let s = Sandbox::new();
    for (target, needle) in [
        ("/etc/passwd", "absolute"),
        ("../outside/sentinel", "'..'"),
        ("later.txt", "not a regular file extracted earlier"),
        ("dir", "not a regular file extracted earlier"),
    ] {
        let a = s.archive(
            "p.1.0.0.tar",
            &tar_bytes(&[T::Dir("dir/", 0o755), T::Hardlink("h", target), T::File("later.txt", b"x", 0o644)]),
        );
        s.refuses(&a, needle);
    }
    assert_eq!(s.path("outside/sentinel").metadata().unwrap().nlink(), 1);
}

#[test]
fn a07_devices_and_fifos_are_refused() {
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::Char("null")]));
    s.refuses(&a, "device files");
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::Fifo("pipe")]));
    s.refuses(&a, "FIFOs");
}

#[test]
fn a08_special_mode_bits_are_dropped() {
    let s = Sandbox::new();
    let a = s.archive(
        "p.1.0.0.tar",
        &tar_bytes(&[T::File("suid", b"x", 0o6755), T::Dir("sticky/", 0o1777), T::File("plain", b"x", 0o4644)]),
    );
    s.extracts(&a);
    assert_eq!(mode(&s.dest().join("suid")) & 0o7000, 0);
    assert_eq!(mode(&s.dest().join("suid")) & 0o111, 0o111);
    assert_eq!(mode(&s.dest().join("sticky")) & 0o7000, 0);
    assert_eq!(mode(&s.dest().join("plain")) & 0o7000, 0);
}

#[test]
fn a09_huge_declared_size_with_truncated_data_fails_cleanly() {
    let s = Sandbox::new();
    let mut h = raw_header("huge.bin", ::tar::EntryType::Regular, 8 << 30, 0o644, "");
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(&[7u8; 4096]);
    let a = s.archive("p.1.0.0.tar.gz", &gzip(&bytes));
    s.refuses(&a, "huge.bin");
    let a = s.archive("p.1.0.0.tar", &bytes);
    s.refuses(&a, "huge.bin");
    // A long-name header claiming gigabytes is stopped before it fills memory.
    let mut h = raw_header("././@LongLink", ::tar::EntryType::GNULongName, 4 << 30, 0o644, "");
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'a', 3 << 20));
    let a = s.archive("q.1.0.0.tar", &bytes);
    s.refuses(&a, "exceed 1 MiB");
}

#[test]
fn a09_zip_declaring_a_huge_size_is_not_trusted() {
    // Declared uncompressed size patched to ~4 GiB in both headers; the data is 64 bytes.
    let mut z = zip_bytes(&[Z::File("liar.bin", &[b'q'; 64])]);
    let local = z.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    let central = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z[local + 22..local + 26].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    z[central + 24..central + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.zip", &z);
    let (result, _) = s.extract(&a, &ExtractOptions::default());
    match result {
        // Either the reader notices the lie, or it writes only what the stream holds.
        Err(e) => {
            assert!(e.to_string().contains("liar.bin") || e.to_string().contains("damaged"), "{e}");
            assert!(s.dest().symlink_metadata().is_err());
        }
        Ok(_) => assert_eq!(std::fs::read(s.dest().join("liar.bin")).unwrap(), vec![b'q'; 64]),
    }
}

#[test]
fn a10_bombs_stop_at_the_byte_and_ratio_caps() {
    let s = Sandbox::new();
    let zeros = vec![0u8; 4 << 20];
    let a = s.archive("p.1.0.0.tar.gz", &gzip(&tar_bytes(&[T::File("zeros", &zeros, 0o644)])));
    let small = ExtractOptions { max_uncompressed_bytes: Some(1 << 20), ..ExtractOptions::default() };
    s.refuses_with(&a, "MaximumUncompressedSize", &small);
    let ratio = ExtractOptions { max_ratio: Some(100), ratio_floor_bytes: 0, ..ExtractOptions::default() };
    s.refuses_with(&a, "decompression bomb", &ratio);
    let a = s.archive("p.1.0.0.zip", &zip_bytes(&[Z::File("zeros", &zeros)]));
    s.refuses_with(&a, "decompression bomb", &ratio);
    s.refuses_with(&a, "MaximumUncompressedSize", &small);
}

/// A zip whose two central-directory records point at the same local entry (Fifield).
fn overlapping_zip() -> Vec<u8> {
    let one = zip_bytes(&[Z::File("a.txt", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]);
    let cd = one.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let eocd = one.windows(4).position(|w| w == b"PK\x05\x06").unwrap();
    let record = one[cd..eocd].to_vec();
    let mut second = record.clone();
    // Same offset, different name ("b.txt").
    let name_at = 46;
    second[name_at] = b'b';
    let mut out = one[..cd].to_vec();
    out.extend_from_slice(&record);
    out.extend_from_slice(&second);
    let mut end = one[eocd..].to_vec();
    end[8..10].copy_from_slice(&2u16.to_le_bytes());
    end[10..12].copy_from_slice(&2u16.to_le_bytes());
    end[12..16].copy_from_slice(&((record.len() * 2) as u32).to_le_bytes());
    out.extend_from_slice(&end);
    out
}

#[test]
fn a11_truncated_and_corrupt_compressed_streams_fail() {
    let tar = tar_bytes(&[T::File("a.txt", &[b'x'; 20000], 0o644), T::File("b.txt", b"b", 0o644)]);
    let gz = gzip(&tar);
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.tar.gz", &gz[..gz.len() - 10]);
    s.refuses(&a, "damaged");
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 6] ^= 0xff;
    let a = s.archive("p.1.0.0.tar.gz", &bad_crc);
    s.refuses(&a, "damaged");
    let mut bad_header = gz;
    bad_header[3] = 0xff;
    let a = s.archive("p.1.0.0.tar.gz", &bad_header);
    s.refuses(&a, "damaged");
}

#[test]
fn a12_zip_crc_mismatch_and_bad_central_directory_fail() {
    let data = vec![b'z'; 5000];
    let mut z = zip_bytes(&[Z::File("ok.txt", b"fine"), Z::File("data.bin", &data)]);
    // Flip a byte inside data.bin's compressed stream (after its local header, name, extra).
    let name_at = z.windows(8).position(|w| w == b"data.bin").unwrap();
    let header = name_at - 30;
    let extra = usize::from(u16::from_le_bytes([z[header + 28], z[header + 29]]));
    z[name_at + 8 + extra + 3] ^= 0x55;
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.zip", &z);
    s.refuses(&a, "data.bin");
    let mut z = zip_bytes(&[Z::File("ok.txt", b"fine")]);
    let eocd = z.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    z[eocd + 16] ^= 0x40; // central directory offset
    let a = s.archive("q.1.0.0.zip", &z);
    s.refuses(&a, "damaged");
}

#[test]
fn a13_duplicates_and_type_conflicts_are_refused() {
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::File("a.txt", b"1", 0o644), T::File("a.txt", b"2", 0o644)]));
    s.refuses(&a, "duplicate entry");
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::Dir("a/", 0o755), T::File("a", b"2", 0o644)]));
    s.refuses(&a, "duplicate entry");
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::File("a", b"2", 0o644), T::File("a/b", b"2", 0o644)]));
    s.refuses(&a, "is a file, not a directory");
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::File("x/a", b"1", 0o644), T::File("./x//a", b"2", 0o644)]));
    s.refuses(&a, "duplicate entry");
    // Local header name differs from the central directory's.
    let mut z = zip_bytes(&[Z::File("good.txt", b"data")]);
    let local_name = z.windows(8).position(|w| w == b"good.txt").unwrap();
    z[local_name] = b'e';
    let a = s.archive("p.1.0.0.zip", &z);
    s.refuses(&a, "damaged");
    // Directory entries may repeat.
    let a =
        s.archive("q.1.0.0.tar", &tar_bytes(&[T::Dir("d/", 0o755), T::Dir("d/", 0o755), T::File("d/f", b"", 0o644)]));
    s.extracts(&a);
}

#[test]
fn a14_overlapping_zip_entries_are_refused() {
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.zip", &overlapping_zip());
    s.refuses(&a, "damaged");
}

#[test]
fn a15_hostile_names_fail_cleanly() {
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.zip", &zip_bytes(&[Z::File("a\0b", b"x")]));
    s.refuses(&a, "NUL");
    let long = "n".repeat(300);
    let a = s.archive("p.1.0.0.zip", &zip_bytes(&[Z::File(&long, b"x")]));
    s.refuses(&a, "longer than 255");
    let deep = vec!["d"; 2100].join("/");
    let a = s.archive("p.1.0.0.zip", &zip_bytes(&[Z::File(&deep, b"x")]));
    s.refuses(&a, "longer than 4096");
    let mut tar = tar_bytes(&[T::File("xx.txt", b"x", 0o644)]);
    tar[0] = 0xff; // invalid UTF-8
    let mut h = ::tar::Header::from_byte_slice(&tar[..512]).clone();
    h.set_cksum();
    tar[..512].copy_from_slice(h.as_bytes());
    let a = s.archive("p.1.0.0.tar", &tar);
    s.refuses(&a, "not valid UTF-8");
}

#[test]
fn a16_windows_hostile_names_extract_with_a_warning() {
    let s = Sandbox::new();
    let a = s.archive(
        "p.1.0.0.tar",
        &tar_bytes(&[
            T::File("CON", b"x", 0o644),
            T::File("nul.txt", b"x", 0o644),
            T::File("ab:c", b"x", 0o644),
            T::File("trail.", b"x", 0o644),
            T::File("A.txt", b"x", 0o644),
            T::File("a.txt", b"x", 0o644),
            T::File("fine.txt", b"x", 0o644),
        ]),
    );
    let (summary, log) = s.extracts(&a);
    assert_eq!(summary.file_count, 7);
    for name in ["'CON'", "'nul.txt'", "'ab:c'", "'trail.'", "'a.txt' (differs from another entry only by case)"] {
        assert!(log.contains(name), "{name} not in {log}");
    }
    assert!(!log.contains("fine.txt"), "{log}");
    assert_eq!(entry_name::windows_hostile("COM1.log"), Some("is a reserved device name on Windows"));
    assert_eq!(entry_name::windows_hostile("COM0"), None);
    assert_eq!(entry_name::windows_hostile("console.txt"), None);
}

#[test]
fn a17_empty_and_wrong_files_name_the_formats() {
    let s = Sandbox::new();
    let a = s.archive("p.1.0.0.zip", b"");
    s.refuses(&a, "empty");
    let a = s.archive("p.1.0.0.zip", b"<html><body>login</body></html>");
    s.refuses(&a, "its extension says zip but its content is HTML data");
    let a = s.archive("p.1.0.0.tar.gz", &zip_bytes(&[Z::File("a", b"a")]));
    s.refuses(&a, "its extension says gzip but its content is zip data");
    let a = s.archive("p.1.0.0.zip", &gzip(b"x"));
    s.refuses(&a, "its extension says zip but its content is gzip data");
    let a = s.archive("p.1.0.0.tar.bz2", b"garbage garbage");
    s.refuses(&a, "first bytes 67 61 72");
    let a = s.archive("p.1.0.0.7z", b"7z");
    s.refuses(&a, "Unsupported file extension `.7z`");
    let a = s.archive("package", b"x");
    s.refuses(&a, "missing file extension");
}

#[test]
fn a18_entry_count_cap() {
    let s = Sandbox::new();
    let names: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&names.iter().map(|n| T::File(n, b"", 0o644)).collect::<Vec<_>>()));
    let ten = ExtractOptions { max_entries: Some(10), ..ExtractOptions::default() };
    s.refuses_with(&a, "more than 10 entries", &ten);
    let a = s.archive("p.1.0.0.zip", &zip_bytes(&names.iter().map(|n| Z::File(n, b"")).collect::<Vec<_>>()));
    s.refuses_with(&a, "MaximumEntryCount", &ten);
}

#[test]
fn a19_existing_destination_is_never_written_through() {
    let s = Sandbox::new();
    std::os::unix::fs::symlink(s.path("outside"), s.dest()).unwrap();
    let a = s.archive("p.1.0.0.tar", &tar_bytes(&[T::File("sentinel", b"overwritten", 0o644)]));
    let (log, _, _) = Log::capture();
    let e = extract(&a, &s.dest(), &ExtractOptions::default(), &log).unwrap_err().to_string();
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(std::fs::read_to_string(s.path("outside/sentinel")).unwrap(), "keep");
}

#[test]
fn failure_late_in_the_archive_leaves_no_destination() {
    let s = Sandbox::new();
    let mut entries: Vec<T<'_>> = Vec::new();
    let names: Vec<String> = (0..50).map(|i| format!("ok/{i}.txt")).collect();
    for n in &names {
        entries.push(T::File(n, b"fine", 0o644));
    }
    entries.push(T::File("../evil", b"x", 0o644));
    let a = s.archive("p.1.0.0.tar.gz", &gzip(&tar_bytes(&entries)));
    s.refuses(&a, "../evil");
}

// ---- property: nothing ever lands outside ----------------------------------------------

mod property {
    use super::*;
    use proptest::prelude::*;

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just("".to_string()),
            Just("C:".to_string()),
            Just("outside".to_string()),
            Just("sentinel".to_string()),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        (any::<bool>(), prop::collection::vec(component(), 1..4), prop_oneof![Just("/"), Just("\\")])
            .prop_map(|(abs, parts, sep)| format!("{}{}", if abs { sep } else { "" }, parts.join(sep)))
    }

    #[derive(Debug, Clone)]
    enum Kind {
        File,
        Dir,
        Symlink(String),
        Hardlink(String),
    }

    fn target() -> impl Strategy<Value = String> {
        prop_oneof![
            path(),
            Just("..".to_string()),
            Just("../outside".to_string()),
            Just("a/../..".to_string()),
            Just("b/..".to_string()),
            Just("/tmp".to_string()),
            Just(".".to_string()),
        ]
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            2 => Just(Kind::File),
            1 => Just(Kind::Dir),
            3 => target().prop_map(Kind::Symlink),
            1 => target().prop_map(Kind::Hardlink),
        ]
    }

    fn check_inside(dest: &Path) {
        let real_dest = dest.canonicalize().unwrap();
        for e in walkdir::WalkDir::new(dest).follow_links(false).into_iter().flatten() {
            if let Ok(real) = e.path().canonicalize() {
                assert!(real.starts_with(&real_dest), "{} resolves to {}", e.path().display(), real.display());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn nothing_lands_outside(entries in prop::collection::vec((path(), kind()), 1..8), zip in any::<bool>()) {
            let s = Sandbox::new();
            let archive = if zip {
                // The zip writer refuses duplicate names itself.
                let mut seen = std::collections::HashSet::new();
                let z: Vec<Z<'_>> = entries.iter().filter(|(p, _)| seen.insert(p.clone())).map(|(p, k)| match k {
                    Kind::File | Kind::Hardlink(_) => Z::File(p, b"data"),
                    Kind::Dir => Z::Dir(p),
                    Kind::Symlink(t) => Z::Symlink(p, t),
                }).collect();
                s.archive("p.1.0.0.zip", &zip_bytes_with(&z, true))
            } else {
                let t: Vec<T<'_>> = entries.iter().filter(|(p, _)| p.len() <= 100).map(|(p, k)| match k {
                    Kind::File => T::File(p, b"data", 0o644),
                    Kind::Dir => T::Dir(p, 0o755),
                    Kind::Symlink(t) => T::Symlink(p, if t.len() <= 100 { t } else { "x" }),
                    Kind::Hardlink(t) => T::Hardlink(p, if t.len() <= 100 { t } else { "x" }),
                }).collect();
                s.archive("p.1.0.0.tar", &tar_bytes(&t))
            };
            let before = s.snapshot();
            let (result, _) = s.extract(&archive, &ExtractOptions::default());
            prop_assert_eq!(&before, &s.snapshot());
            prop_assert_eq!(std::fs::read_to_string(s.path("outside/sentinel")).unwrap(), "keep");
            match result {
                Ok(_) => check_inside(&s.dest()),
                Err(_) => prop_assert!(s.dest().symlink_metadata().is_err()),
            }
            let left = std::fs::read_dir(s.path("work")).unwrap().flatten()
                .filter(|e| e.file_name() != "dest").count();
            prop_assert_eq!(left, 0);
        }
    }
}

#[test]
fn formats_by_extension_as_the_reference() {
    use super::Compression::*;
    let cases = [
        ("a.1.0.0.nupkg", Format::Zip { nupkg: true }),
        ("a.1.0.0.NUPKG", Format::Zip { nupkg: true }),
        ("a.1.0.0.zip", Format::Zip { nupkg: false }),
        ("a.1.0.0.whl", Format::Zip { nupkg: false }),
        ("a.1.0.0.jar", Format::Zip { nupkg: false }),
        ("a.1.0.0.war", Format::Zip { nupkg: false }),
        ("a.1.0.0.ear", Format::Zip { nupkg: false }),
        ("a.1.0.0.tar", Format::Tar(None)),
        ("a.1.0.0.tar.gz", Format::Tar(Gzip)),
        ("a.1.0.0.tgz", Format::Tar(Gzip)),
        ("a.1.0.0.tar.bz2", Format::Tar(Bzip2)),
        ("a.1.0.0.tar.bz", Format::Tar(Bzip2)),
        ("a.1.0.0.tbz", Format::Tar(Bzip2)),
        ("a.1.0.0.tar.xz", Format::Tar(Xz)),
        ("a.1.0.0.txz", Format::Tar(Xz)),
        ("a.1.0.0.tar.zst", Format::Tar(Zstd)),
        ("a.1.0.0.tzst", Format::Tar(Zstd)),
    ];
    for (name, want) in cases {
        assert_eq!(Format::from_file_name(Path::new(name)).unwrap(), want, "{name}");
    }
    for bad in ["a.1.0.0.rar", "a.1.0.0.7z", "a.1.0.0.gz", "noext", ".zip"] {
        assert!(Format::from_file_name(Path::new(bad)).is_err(), "{bad}");
    }
}
