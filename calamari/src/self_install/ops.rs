//! The filesystem steps of an install behind a small trait, so a unit test can record
//! their order (files fsync'd → directory renamed → `Success.txt` temp, fsync, rename,
//! directory fsync) without strace.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::fs::{self, IoContext, IoError};

/// One filesystem step at a time.
pub(crate) trait Ops {
    /// Creates one directory (its parent exists).
    fn create_dir(&mut self, path: &Path) -> fs::Result<()>;
    /// Creates a new file (never over an existing one) with `mode` and copies `src` into
    /// it; returns the size and lower-case hex SHA-256 written. Does not fsync.
    fn write_file(&mut self, path: &Path, mode: u32, src: &mut dyn Read, src_label: &Path)
    -> fs::Result<(u64, String)>;
    /// `fsync`s a file.
    fn sync_file(&mut self, path: &Path) -> fs::Result<()>;
    /// `fsync`s a directory.
    fn sync_dir(&mut self, path: &Path) -> fs::Result<()>;
    /// `rename(2)`.
    fn rename(&mut self, from: &Path, to: &Path) -> fs::Result<()>;
    /// Removes a file; missing is fine.
    fn remove_file(&mut self, path: &Path) -> fs::Result<()>;
    /// Removes a directory tree; missing is fine.
    fn remove_dir_all(&mut self, path: &Path) -> fs::Result<()>;
    /// A named point where tests may inject a fault ([`super::fault`]).
    fn checkpoint(&mut self, name: &'static str);
}

/// The real filesystem.
pub(crate) struct RealOps;

impl Ops for RealOps {
    fn create_dir(&mut self, path: &Path) -> fs::Result<()> {
        fs::create_dir(path)
    }

    fn write_file(
        &mut self,
        path: &Path,
        mode: u32,
        src: &mut dyn Read,
        src_label: &Path,
    ) -> fs::Result<(u64, String)> {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).at("create", path)?;
        // The umask may have narrowed the mode; the install's modes are part of its contract.
        file.set_permissions(std::fs::Permissions::from_mode(mode)).at("chmod", path)?;
        copy_hashing(src, src_label, &mut file, path)
    }

    fn sync_file(&mut self, path: &Path) -> fs::Result<()> {
        fs::sync_path(path)
    }

    fn sync_dir(&mut self, path: &Path) -> fs::Result<()> {
        fs::sync_path(path)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> fs::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&mut self, path: &Path) -> fs::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&mut self, path: &Path) -> fs::Result<()> {
        fs::remove_dir_all(path)
    }

    fn checkpoint(&mut self, name: &'static str) {
        crate::fault::checkpoint(name);
    }
}

/// Copies `src` to `dst`, returning the byte count and SHA-256; errors name the side that failed.
pub(crate) fn copy_hashing(
    src: &mut dyn Read,
    src_label: &Path,
    dst: &mut dyn Write,
    dst_path: &Path,
) -> fs::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(IoError { op: "read", path: src_label.to_path_buf(), source: e }),
        };
        dst.write_all(&buf[..n]).at("write", dst_path)?;
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    dst.flush().at("write", dst_path)?;
    Ok((total, hex::encode(hasher.finalize())))
}

/// Size and SHA-256 of everything `src` yields.
pub(crate) fn hash_reader(src: &mut dyn Read, src_label: &Path) -> fs::Result<(u64, String)> {
    copy_hashing(src, src_label, &mut io::sink(), Path::new("/dev/null"))
}

/// Records every step (paths relative to a base) and then performs it for real.
#[cfg(test)]
pub(crate) struct Recorder {
    pub(crate) base: std::path::PathBuf,
    pub(crate) events: Vec<String>,
}

#[cfg(test)]
impl Recorder {
    fn rel(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.base).unwrap_or(path).to_string_lossy().into_owned();
        // Random parts of temp names vary from run to run; keep the recognisable prefix.
        rel.split('/')
            .map(|c| {
                if c.starts_with(".tmp-") {
                    ".tmp-*".to_string()
                } else if c.starts_with(".old-") {
                    ".old-*".to_string()
                } else if c.starts_with(".Success.txt.") {
                    ".Success.txt.*".to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn record(&mut self, what: &str, path: &Path) {
        let line = format!("{what} {}", self.rel(path));
        self.events.push(line);
    }
}

#[cfg(test)]
impl Ops for Recorder {
    fn create_dir(&mut self, path: &Path) -> fs::Result<()> {
        self.record("mkdir", path);
        RealOps.create_dir(path)
    }
    fn write_file(
        &mut self,
        path: &Path,
        mode: u32,
        src: &mut dyn Read,
        src_label: &Path,
    ) -> fs::Result<(u64, String)> {
        self.record("write", path);
        RealOps.write_file(path, mode, src, src_label)
    }
    fn sync_file(&mut self, path: &Path) -> fs::Result<()> {
        self.record("fsync", path);
        RealOps.sync_file(path)
    }
    fn sync_dir(&mut self, path: &Path) -> fs::Result<()> {
        self.record("fsync-dir", path);
        RealOps.sync_dir(path)
    }
    fn rename(&mut self, from: &Path, to: &Path) -> fs::Result<()> {
        let line = format!("rename {} -> {}", self.rel(from), self.rel(to));
        self.events.push(line);
        RealOps.rename(from, to)
    }
    fn remove_file(&mut self, path: &Path) -> fs::Result<()> {
        self.record("rm", path);
        RealOps.remove_file(path)
    }
    fn remove_dir_all(&mut self, path: &Path) -> fs::Result<()> {
        self.record("rm -r", path);
        RealOps.remove_dir_all(path)
    }
    fn checkpoint(&mut self, name: &'static str) {
        self.events.push(format!("checkpoint {name}"));
    }
}
