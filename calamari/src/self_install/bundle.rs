//! The pushable bundle `Calamari.<version>.tar.gz`: writing it, and reading it safely.
//!
//! Format: a gzip-compressed tar whose entries are `manifest.json` (first) and the files it
//! lists, all regular files at plain relative paths, owner 0, mtime 0 (so the same build
//! always gives the same bytes). Beside it, `Calamari.<version>.tar.gz.sha256` in
//! `sha256sum` format.
//!
//! The reader walks the entries itself and refuses anything else: links, devices,
//! directories, absolute or `..` paths, duplicates, entries missing from the manifest or
//! whose size or hash differ from it, a truncated stream.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::Error;
use super::layout::{self, BINARY_NAME, MANIFEST_FILE, MAX_FILES, MAX_MANIFEST_BYTES, MAX_TOTAL_BYTES};
use super::manifest::{Manifest, ManifestFile};
use super::ops::hash_reader;
use super::stager::{CalamariExecutable, Stager};
use crate::fs::{self, IoContext, IoError};

/// `Calamari.<version>.tar.gz`.
pub(crate) fn bundle_file_name(version: &str) -> String {
    format!("Calamari.{version}.tar.gz")
}

/// The mode of the bundle and its `.sha256`: readable by everyone.
const BUNDLE_MODE: u32 = 0o644;

/// Writes `output_dir/Calamari.<VERSION>.tar.gz` holding `executable` as this build's
/// version, and `Calamari.<VERSION>.tar.gz.sha256` beside it; returns the bundle's path.
/// Both files appear atomically.
///
/// # Errors
/// I/O errors naming the path.
pub fn write_bundle(output_dir: &Path, executable: &CalamariExecutable) -> Result<PathBuf, Error> {
    let version = crate::VERSION;
    fs::create_dir_all(output_dir)?;
    let (mut exe, label) = executable.open()?;
    let (size, sha256) = hash_reader(&mut exe, &label)?;
    let manifest =
        Manifest::new(version, vec![ManifestFile { path: BINARY_NAME.to_string(), size, sha256, executable: true }]);
    let json = manifest.to_json();

    let name = bundle_file_name(version);
    let path = output_dir.join(&name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(output_dir)
        .at("create temporary file in", output_dir)?;
    let tmp_path = tmp.path().to_path_buf();
    // Agents on other accounts download the bundle: readable by all, as `cp` would leave
    // it (a temporary file starts 0600).
    fs::set_mode(&tmp_path, BUNDLE_MODE)?;
    let bundle_sha256 = {
        let hashing = HashingWriter { inner: BufWriter::new(tmp.as_file_mut()), hasher: Sha256::new() };
        let gz = flate2::GzBuilder::new().mtime(0).write(hashing, Compression::default());
        let mut tar = tar::Builder::new(gz);
        append(&mut tar, MANIFEST_FILE, 0o644, &mut json.as_slice(), json.len() as u64, &tmp_path)?;
        exe.seek(SeekFrom::Start(0)).at("read", &label)?;
        let mut check = HashingReader { inner: (&mut exe).take(size), hasher: Sha256::new(), label: label.clone() };
        append(&mut tar, BINARY_NAME, 0o755, &mut check, size, &tmp_path)?;
        if hex::encode(check.hasher.finalize()) != manifest.files[0].sha256 {
            return Err(Error::ChangedWhileBundling { path: label.clone() });
        }
        let gz = tar.into_inner().at("write", &tmp_path)?;
        let mut hashing = gz.finish().at("write", &tmp_path)?;
        hashing.inner.flush().at("write", &tmp_path)?;
        hex::encode(hashing.hasher.finalize())
    };
    tmp.as_file().sync_all().at("fsync", &tmp_path)?;
    tmp.persist(&path).map_err(|e| IoError { op: "rename to", path: path.clone(), source: e.error })?;
    fs::sync_path(output_dir)?;
    fs::write_atomic_with_mode(sha256_path(&path), format!("{bundle_sha256}  {name}\n"), Some(BUNDLE_MODE))?;
    Ok(path)
}

/// `<bundle>.sha256`.
pub(crate) fn sha256_path(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    mode: u32,
    data: &mut dyn Read,
    size: u64,
    out: &Path,
) -> Result<(), Error> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(&mut header, name, data).at("write", out)?;
    Ok(())
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    label: PathBuf,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.label.display())))?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Verifies `bundle` completely without writing anything and returns its manifest.
///
/// # Errors
/// [`Error::InvalidSha256`], [`Error::BundleHash`], [`Error::Bundle`] naming the entry or hash.
pub fn verify_bundle(bundle: &Path, expected_sha256: Option<&str>) -> Result<Manifest, Error> {
    Ok(open_verified(bundle, expected_sha256)?.manifest)
}

/// A bundle that passed verification, kept open so extraction reads the same file.
pub(crate) struct VerifiedBundle {
    path: PathBuf,
    file: File,
    pub(crate) manifest: Manifest,
    pub(crate) sha256: String,
}

/// Normalises a `--sha256` value: 64 hex digits, any case, surrounding blanks ignored.
fn normalise_sha256(hex: &str) -> Result<String, Error> {
    let hex = hex.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) { Ok(hex) } else { Err(Error::InvalidSha256(hex)) }
}

pub(crate) fn open_verified(bundle: &Path, expected_sha256: Option<&str>) -> Result<VerifiedBundle, Error> {
    let expected = expected_sha256.map(normalise_sha256).transpose()?;
    let mut file = fs::open(bundle)?;
    let (_, sha256) = hash_reader(&mut file, bundle)?;
    if let Some(expected) = expected
        && expected != sha256
    {
        return Err(Error::BundleHash { bundle: bundle.to_path_buf(), expected, actual: sha256 });
    }
    let corrupt = |problem: String| Error::Bundle { bundle: bundle.to_path_buf(), problem };

    file.seek(SeekFrom::Start(0)).at("read", bundle)?;
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut seen: HashMap<String, (u64, String)> = HashMap::new();
    let mut total = 0u64;
    walk(&mut file, &mut |path, entry| {
        if path == MANIFEST_FILE {
            if manifest_bytes.is_some() {
                return Err(format!("entry '{MANIFEST_FILE}' appears twice"));
            }
            let mut bytes = Vec::new();
            entry
                .take(MAX_MANIFEST_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("entry '{MANIFEST_FILE}' is unreadable: {e}"))?;
            if bytes.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(format!("entry '{MANIFEST_FILE}' is larger than {MAX_MANIFEST_BYTES} bytes"));
            }
            manifest_bytes = Some(bytes);
            return Ok(());
        }
        if seen.contains_key(path) {
            return Err(format!("entry '{path}' appears twice"));
        }
        if seen.len() >= MAX_FILES {
            return Err(format!("more than {MAX_FILES} entries"));
        }
        let remaining = MAX_TOTAL_BYTES - total;
        let (size, hash) = hash_reader(&mut entry.take(remaining + 1), Path::new(path))
            .map_err(|e| format!("entry '{path}' is unreadable: {}", e.source))?;
        total += size;
        if total > MAX_TOTAL_BYTES {
            return Err(format!("more than {MAX_TOTAL_BYTES} bytes of content"));
        }
        seen.insert(path.to_string(), (size, hash));
        Ok(())
    })
    .map_err(corrupt)?;

    let bytes = manifest_bytes.ok_or_else(|| corrupt(format!("no '{MANIFEST_FILE}' entry")))?;
    let manifest = Manifest::parse(&bytes).map_err(|e| corrupt(e.to_string()))?;
    for file in &manifest.files {
        match seen.remove(&file.path) {
            None => return Err(corrupt(format!("file '{}' listed in {MANIFEST_FILE} has no entry", file.path))),
            Some((size, _)) if size != file.size => {
                return Err(corrupt(format!(
                    "entry '{}' has {size} bytes, {MANIFEST_FILE} says {}",
                    file.path, file.size
                )));
            }
            Some((_, hash)) if hash != file.sha256 => {
                return Err(corrupt(format!(
                    "entry '{}' has SHA-256 {hash}, {MANIFEST_FILE} says {}",
                    file.path, file.sha256
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().min() {
        return Err(corrupt(format!("entry '{extra}' is not listed in {MANIFEST_FILE}")));
    }
    if manifest.platform != layout::platform() {
        return Err(corrupt(format!(
            "it is for platform '{}', this machine is '{}'",
            manifest.platform,
            layout::platform()
        )));
    }
    Ok(VerifiedBundle { path: bundle.to_path_buf(), file, manifest, sha256 })
}

/// Walks the regular-file entries of a gzip-compressed tar, refusing anything else, then
/// reads the stream to its end so a truncated or damaged gzip trailer is noticed.
fn walk(file: &mut File, visit: &mut dyn FnMut(&str, &mut dyn Read) -> Result<(), String>) -> Result<(), String> {
    let not_a_bundle = |e: io::Error| format!("not a readable gzip-compressed tar ({e})");
    let mut gz = GzDecoder::new(io::BufReader::new(file));
    {
        let mut archive = tar::Archive::new(&mut gz);
        for entry in archive.entries().map_err(not_a_bundle)? {
            let mut entry = entry.map_err(not_a_bundle)?;
            let raw = entry.path_bytes().into_owned();
            let path = String::from_utf8(raw).map_err(|e| {
                format!("entry '{}' has a path that is not UTF-8", String::from_utf8_lossy(e.as_bytes()))
            })?;
            let kind = entry.header().entry_type();
            if !kind.is_file() {
                return Err(format!("entry '{}' is a {kind:?}; only regular files are allowed", path.escape_debug()));
            }
            layout::validate_rel_path(&path).map_err(|e| format!("entry {e}"))?;
            visit(&path, &mut entry)?;
        }
    }
    io::copy(&mut gz, &mut io::sink()).map_err(not_a_bundle)?;
    Ok(())
}

impl VerifiedBundle {
    /// Extracts the listed files into the staging directory, checking every hash again
    /// (the file could have changed since it was verified).
    pub(crate) fn extract_into(&mut self, stager: &mut Stager<'_>) -> Result<(), Error> {
        let bundle = self.path.clone();
        let corrupt = |problem: String| Error::Bundle { bundle: bundle.clone(), problem };
        self.file.seek(SeekFrom::Start(0)).at("read", &self.path)?;
        let manifest = &self.manifest;
        let mut staged = 0usize;
        let mut failure: Option<Error> = None;
        let result = walk(&mut self.file, &mut |path, entry| {
            if path == MANIFEST_FILE {
                return Ok(());
            }
            let Some(expected) = manifest.file(path) else {
                return Err(format!("entry '{path}' is not listed in {MANIFEST_FILE} (the bundle changed)"));
            };
            let label = PathBuf::from(format!("{}!{path}", bundle.display()));
            match stager.add_file(path, expected.executable, entry, &label) {
                Ok(written) if written.sha256 == expected.sha256 && written.size == expected.size => {
                    staged += 1;
                    Ok(())
                }
                Ok(written) => Err(format!(
                    "entry '{path}' has SHA-256 {}, {MANIFEST_FILE} says {} (the bundle changed while installing)",
                    written.sha256, expected.sha256
                )),
                Err(e) => {
                    failure = Some(e);
                    Err(String::new())
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        result.map_err(corrupt)?;
        if staged != manifest.files.len() {
            return Err(corrupt("the bundle changed while installing: files are missing".to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set up and inspect files with std::fs directly
mod tests {
    use super::*;

    /// Builds a bundle from (path, kind, contents) entries plus the manifest given.
    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // Bypass the builder's own path checks to build hostile archives.
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            tar.append(&header, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn manifest_for(files: &[(&str, &[u8])]) -> Vec<u8> {
        Manifest::new(
            "3.2.1",
            files
                .iter()
                .map(|(p, d)| ManifestFile {
                    path: p.to_string(),
                    size: d.len() as u64,
                    sha256: sha(d),
                    executable: true,
                })
                .collect(),
        )
        .to_json()
    }

    fn check(bytes: &[u8], expected_sha: Option<&str>) -> Result<Manifest, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar.gz");
        std::fs::write(&path, bytes).unwrap();
        verify_bundle(&path, expected_sha)
    }

    const R: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn a_well_formed_bundle_verifies_with_and_without_its_hash() {
        let m = manifest_for(&[("calamari", b"bin")]);
        let bytes = tar_gz(&[("manifest.json", R, &m), ("calamari", R, b"bin")]);
        assert_eq!(check(&bytes, None).unwrap().version, "3.2.1");
        assert!(check(&bytes, Some(&sha(&bytes).to_uppercase())).is_ok());
        let wrong = check(&bytes, Some(&"0".repeat(64))).unwrap_err();
        assert!(matches!(wrong, Error::BundleHash { .. }), "{wrong}");
        assert!(matches!(check(&bytes, Some("abc")).unwrap_err(), Error::InvalidSha256(_)));
    }

    #[test]
    fn bad_bundles_are_refused_naming_the_entry() {
        let m = manifest_for(&[("calamari", b"bin")]);
        let good = tar_gz(&[("manifest.json", R, &m), ("calamari", R, b"bin")]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (tar_gz(&[("manifest.json", R, &m), ("calamari", R, b"BIN")]), "entry 'calamari' has SHA-256"),
            (tar_gz(&[("manifest.json", R, &m), ("calamari", R, b"bin!")]), "entry 'calamari' has 4 bytes"),
            (tar_gz(&[("manifest.json", R, &m)]), "file 'calamari' listed in manifest.json has no entry"),
            (tar_gz(&[("calamari", R, b"bin")]), "no 'manifest.json' entry"),
            (tar_gz(&[("manifest.json", R, &m), ("calamari", R, b"bin"), ("x", R, b"")]), "entry 'x' is not listed"),
            (tar_gz(&[("manifest.json", R, &m), ("../calamari", R, b"bin")]), "unsafe path '../calamari'"),
            (tar_gz(&[("manifest.json", R, &m), ("/calamari", R, b"bin")]), "unsafe path '/calamari'"),
            (tar_gz(&[("manifest.json", R, &m), ("calamari", tar::EntryType::Symlink, b"")]), "only regular files"),
            (tar_gz(&[("manifest.json", R, &m), ("calamari", R, b"bin"), ("calamari", R, b"bin")]), "appears twice"),
            (tar_gz(&[("manifest.json", R, b"{}"), ("calamari", R, b"bin")]), "not a valid manifest"),
            (good[..good.len() - 10].to_vec(), "not a readable gzip-compressed tar|is unreadable"),
            (good[..good.len() - 4].to_vec(), "not a readable gzip-compressed tar"),
            (good[..good.len() / 2].to_vec(), "not a readable gzip-compressed tar|is unreadable"),
            (b"PK\x03\x04 not a tar.gz".to_vec(), "not a readable gzip-compressed tar"),
        ];
        for (bytes, expected) in cases {
            let err = check(&bytes, None).unwrap_err().to_string();
            assert!(expected.split('|').any(|e| err.contains(e)), "{err:?} lacks {expected:?}");
            assert!(err.contains("b.tar.gz"), "{err} names the bundle");
        }
    }

    #[test]
    fn a_bundle_for_another_platform_is_refused() {
        let mut manifest = Manifest::parse(&manifest_for(&[("calamari", b"bin")])).unwrap();
        manifest.platform = "plan9-mips".into();
        let bytes = tar_gz(&[("manifest.json", R, &manifest.to_json()), ("calamari", R, b"bin")]);
        assert!(check(&bytes, None).unwrap_err().to_string().contains("platform 'plan9-mips'"));
    }

    #[test]
    fn write_bundle_is_reproducible_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let exe = super::super::install::tests::fake_calamari(dir.path());
        let out = dir.path().join("out");
        let path = write_bundle(&out, &exe).unwrap();
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), bundle_file_name(crate::VERSION));
        let bytes = std::fs::read(&path).unwrap();
        let sidecar = std::fs::read_to_string(sha256_path(&path)).unwrap();
        assert_eq!(sidecar, format!("{}  {}\n", sha(&bytes), bundle_file_name(crate::VERSION)));
        let manifest = verify_bundle(&path, Some(&sha(&bytes))).unwrap();
        assert_eq!(manifest.version, crate::VERSION);
        let again = write_bundle(&out, &exe).unwrap();
        assert_eq!(std::fs::read(again).unwrap(), bytes, "same build, same bytes");
    }
}
