//! One hostile archive per kind of attack on extraction, each built here in memory. Every
//! case must fail (or, for Windows-hostile names, warn) naming the entry or the cause, and
//! leave no destination, no partial directory and nothing changed outside.

use super::*;

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
