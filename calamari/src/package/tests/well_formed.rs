//! Well-formed archives of every format extract completely: files, directories, links,
//! modes and times, through both writer pools, with the limits read from variables.

use super::*;

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

#[test]
fn formats_by_extension_as_the_reference() {
    use crate::package::Compression::*;
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
