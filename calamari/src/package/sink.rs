//! The one place that decides what an archive may write (hardening P3), shared by every
//! format.
//!
//! Entry names are checked lexically ([`entry_path`]): `\` is read as `/` (packages made on
//! Windows), and absolute paths, drive letters (`C:`), UNC roots (`\\srv`), `..` and NUL
//! are refused. The [`Sink`] keeps a map of everything it created in the (fresh, private)
//! extraction directory, so it never needs to ask the filesystem: a path under a symbolic
//! link entry, a second entry with the same name, or a file where a directory is needed is
//! refused before any system call. Files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`.
//!
//! Links are made last: hard links only to regular files extracted earlier; symbolic links
//! only when their target, resolved through every other link of the archive, stays inside
//! (otherwise a warning names the link and it is skipped). Devices, FIFOs and sockets are
//! refused. Permission bits are kept without setuid/setgid/sticky (the umask applies, as
//! for `tar` run by a normal user); modification times are kept.
//!
//! Bytes written, entries and the expansion ratio are counted against [`ExtractOptions`]
//! limits as the data streams, never from declared sizes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::Log;
use crate::fs::{IoContext, IoError};

use super::{Error, ExtractOptions, ExtractSummary};

/// Longest entry path we accept, in bytes (Linux `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;
/// Longest path component (Linux `NAME_MAX`).
const MAX_NAME_BYTES: usize = 255;
/// Longest symbolic link target.
pub(crate) const MAX_LINK_BYTES: usize = 4096;
/// Most symbolic links followed while resolving one target (as Linux `MAXSYMLINKS`).
const MAX_LINK_DEPTH: u32 = 40;

/// Checks an entry name and returns its normalised relative path (`a/b/c`), or `None` for
/// the root itself (`./`). The error is the reason for refusing it.
pub fn entry_path(raw: &str) -> Result<Option<String>, String> {
    if raw.contains('\0') {
        return Err("the name contains a NUL character".to_string());
    }
    let name = raw.replace('\\', "/");
    if name.starts_with('/') {
        return Err("the name is an absolute path".to_string());
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("the name starts with a Windows drive letter".to_string());
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("the name contains a '..' component".to_string()),
            _ if part.len() > MAX_NAME_BYTES => {
                return Err(format!("a path component is longer than {MAX_NAME_BYTES} bytes"));
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let path = parts.join("/");
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("the path is longer than {MAX_PATH_BYTES} bytes"));
    }
    Ok(Some(path))
}

/// Bytes written so far, checked against the size and ratio limits. Shared with the
/// writer threads.
#[derive(Debug)]
pub(crate) struct Budget {
    written: AtomicU64,
    max_bytes: Option<u64>,
    max_ratio: Option<u64>,
    ratio_floor: u64,
    archive_size: u64,
    archive: PathBuf,
}

impl Budget {
    /// Counts `n` more bytes; fails once a limit is passed.
    pub(crate) fn add(&self, n: u64) -> Result<(), Error> {
        let total = self.written.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(max) = self.max_bytes
            && total > max
        {
            {
                return Err(Error::Limit {
                    archive: self.archive.clone(),
                    message: format!(
                        "it expands to more than {max} bytes (set {} to raise the limit, 0 for none)",
                        super::limit_names::MAXIMUM_UNCOMPRESSED_SIZE
                    ),
                });
            }
        }
        if let Some(ratio) = self.max_ratio
            && total > self.ratio_floor
            && total / self.archive_size.max(1) >= ratio
        {
            {
                return Err(Error::Limit {
                    archive: self.archive.clone(),
                    message: format!(
                        "it expands to more than {ratio} times its size of {} bytes, which looks like a decompression bomb (set {} to raise the limit, 0 for none)",
                        self.archive_size,
                        super::limit_names::MAXIMUM_COMPRESSION_RATIO
                    ),
                });
            }
        }
        Ok(())
    }

    /// Bytes counted so far.
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink,
}

/// A file whose data is in memory, for the writer pool.
struct Job {
    path: PathBuf,
    entry: String,
    mode: u32,
    mtime: Option<SystemTime>,
    data: Vec<u8>,
}

/// Writer threads that create files from in-memory data (tar: file creation costs ~1 ms
/// of kernel time here, so several creators beat one).
struct Pool {
    tx: Option<SyncSender<Job>>,
    handles: Vec<JoinHandle<()>>,
    error: Arc<Mutex<Option<Error>>>,
    failed: Arc<AtomicBool>,
}

impl Pool {
    fn new(threads: usize, archive: PathBuf) -> Pool {
        let (tx, rx) = sync_channel::<Job>(threads * 4);
        let rx = Arc::new(Mutex::new(rx));
        let error = Arc::new(Mutex::new(None));
        let failed = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let (rx, error, failed, archive) = (rx.clone(), error.clone(), failed.clone(), archive.clone());
                std::thread::spawn(move || worker(&rx, &error, &failed, &archive))
            })
            .collect();
        Pool { tx: Some(tx), handles, error, failed }
    }

    fn take_error(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn join(mut self) -> Result<(), Error> {
        self.tx = None;
        for handle in std::mem::take(&mut self.handles) {
            let _ = handle.join();
        }
        match self.take_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.failed.store(true, Ordering::Relaxed);
        self.tx = None;
        for handle in std::mem::take(&mut self.handles) {
            let _ = handle.join();
        }
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, error: &Mutex<Option<Error>>, failed: &AtomicBool, archive: &Path) {
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        if failed.load(Ordering::Relaxed) {
            continue;
        }
        let result = create_file(&job.path, job.mode)
            .and_then(|mut f| {
                f.write_all(&job.data)?;
                if let Some(t) = job.mtime {
                    f.set_modified(t)?;
                }
                Ok(())
            })
            .map_err(|e| write_error(archive, &job.entry, &job.path, e));
        if let Err(e) = result {
            failed.store(true, Ordering::Relaxed);
            let mut slot = error.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e);
            }
        }
    }
}

fn write_error(archive: &Path, entry: &str, path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::AlreadyExists => Error::Refused {
            archive: archive.to_path_buf(),
            entry: entry.to_string(),
            reason: "a file of that name already exists".to_string(),
        },
        _ => IoError { op: "write", path: path.to_path_buf(), source: e }.into(),
    }
}

/// Creates a new regular file: never follows or replaces anything that is already there.
pub(crate) fn create_file(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Size of the copy buffer each writer thread reuses.
pub(crate) const COPY_BUFFER: usize = 128 * 1024;

/// Streams `reader` into a new file, counting bytes against the budget. `buf` is the
/// caller's reusable copy buffer (allocating one per file costs an mmap each time).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_stream(
    path: &Path,
    entry: &str,
    archive: &Path,
    mode: u32,
    mtime: Option<SystemTime>,
    reader: &mut dyn Read,
    budget: &Budget,
    buf: &mut [u8],
) -> Result<u64, Error> {
    let mut file = create_file(path, mode).map_err(|e| write_error(archive, entry, path, e))?;
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(archive, Some(entry), &e)),
        };
        budget.add(n as u64)?;
        file.write_all(&buf[..n]).at("write", path)?;
        total += n as u64;
    }
    if let Some(t) = mtime {
        file.set_modified(t).at("set modification time of", path)?;
    }
    Ok(total)
}

/// A read error of an archive as a [`Error::Corrupt`].
pub(crate) fn corrupt(archive: &Path, entry: Option<&str>, e: &dyn std::fmt::Display) -> Error {
    Error::Corrupt { archive: archive.to_path_buf(), entry: entry.map(str::to_string), message: e.to_string() }
}

/// The process umask, read without changing it (`umask(2)` would race other threads).
fn process_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok()))
        })
        .unwrap_or(0o022)
}

/// Where one extraction writes, and what it has written.
pub struct Sink<'a> {
    root: PathBuf,
    archive: &'a Path,
    log: &'a Log,
    nodes: HashMap<String, Node>,
    symlinks: Vec<(String, String, String)>,
    hardlinks: Vec<(String, String)>,
    dir_meta: Vec<(String, Option<u32>, Option<SystemTime>)>,
    max_entries: Option<u64>,
    entries: u64,
    files: u64,
    dirs: u64,
    threads: usize,
    umask: u32,
    lowercase: std::collections::HashSet<String>,
    windows_names: Vec<String>,
    budget: Arc<Budget>,
    pool: Option<Pool>,
}

impl<'a> Sink<'a> {
    /// A sink writing into `root`, an empty directory only this extraction uses.
    pub fn new(root: &Path, archive: &'a Path, options: &ExtractOptions, archive_size: u64, log: &'a Log) -> Self {
        Sink {
            root: root.to_path_buf(),
            archive,
            log,
            nodes: HashMap::new(),
            symlinks: Vec::new(),
            hardlinks: Vec::new(),
            dir_meta: Vec::new(),
            max_entries: options.max_entries,
            entries: 0,
            files: 0,
            dirs: 0,
            threads: options.writer_threads.max(1),
            umask: process_umask(),
            lowercase: std::collections::HashSet::new(),
            windows_names: Vec::new(),
            budget: Arc::new(Budget {
                written: AtomicU64::new(0),
                max_bytes: options.max_uncompressed_bytes,
                max_ratio: options.max_ratio,
                ratio_floor: options.ratio_floor_bytes,
                archive_size,
                archive: archive.to_path_buf(),
            }),
            pool: None,
        }
    }

    /// The archive being extracted.
    pub fn archive(&self) -> &Path {
        self.archive
    }

    /// Writer threads to use.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The shared byte budget.
    pub(crate) fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// The log.
    pub fn log(&self) -> &Log {
        self.log
    }

    /// An error refusing `entry` for `reason`.
    pub fn refuse(&self, entry: &str, reason: impl Into<String>) -> Error {
        Error::Refused { archive: self.archive.to_path_buf(), entry: entry.to_string(), reason: reason.into() }
    }

    /// Counts one more entry against the entry limit.
    pub fn count_entry(&mut self) -> Result<(), Error> {
        self.entries += 1;
        match self.max_entries {
            Some(max) if self.entries > max => Err(Error::Limit {
                archive: self.archive.to_path_buf(),
                message: format!(
                    "it has more than {max} entries (set {} to raise the limit, 0 for none)",
                    super::limit_names::MAXIMUM_ENTRY_COUNT
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Validates an entry name; `None` for the root.
    pub fn path_of(&self, entry: &str) -> Result<Option<String>, Error> {
        entry_path(entry).map_err(|reason| self.refuse(entry, reason))
    }

    /// Makes sure every parent of `rel` is a directory we created, creating missing ones.
    fn prepare_parents(&mut self, entry: &str, rel: &str) -> Result<(), Error> {
        let Some(slash) = rel.rfind('/') else { return Ok(()) };
        let parent = &rel[..slash];
        if self.nodes.get(parent) == Some(&Node::Dir) {
            return Ok(());
        }
        for (i, _) in rel.match_indices('/') {
            let prefix = &rel[..i];
            match self.nodes.get(prefix) {
                Some(Node::Dir) => {}
                Some(Node::Symlink) => {
                    return Err(self.refuse(entry, format!("it would be written through the symbolic link '{prefix}'")));
                }
                Some(Node::File) => {
                    return Err(self.refuse(entry, format!("'{prefix}' is a file, not a directory")));
                }
                None => {
                    let path = self.root.join(prefix);
                    std::fs::DirBuilder::new().mode(0o777).create(&path).at("create directory", &path)?;
                    self.nodes.insert(prefix.to_string(), Node::Dir);
                    self.dirs += 1;
                }
            }
        }
        Ok(())
    }

    /// Notes names that would not deploy the same way to Windows (hardening A-16): reserved
    /// device names, characters Windows forbids, trailing dots or spaces, and case twins.
    fn note_name(&mut self, rel: &str) {
        if self.windows_names.len() >= 5 {
            return;
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let reason = if !self.lowercase.insert(rel.to_lowercase()) {
            Some("differs from another entry only by case")
        } else {
            windows_hostile(name)
        };
        if let Some(reason) = reason {
            self.windows_names.push(format!("'{rel}' ({reason})"));
        }
    }

    fn claim(&mut self, entry: &str, rel: &str, node: Node) -> Result<(), Error> {
        match self.nodes.get(rel) {
            None => {
                self.nodes.insert(rel.to_string(), node);
                self.note_name(rel);
                Ok(())
            }
            Some(Node::Symlink) => {
                Err(self.refuse(entry, "an earlier entry of the same name is a symbolic link (duplicate entry)"))
            }
            Some(Node::Dir) => {
                Err(self.refuse(entry, "an earlier entry of the same name is a directory (duplicate entry)"))
            }
            Some(Node::File) => Err(self.refuse(entry, "an earlier entry has the same name (duplicate entry)")),
        }
    }

    /// A directory entry. Directories repeat harmlessly; a directory where a file or link
    /// was is refused.
    pub fn dir(&mut self, entry: &str, rel: &str, mode: Option<u32>, mtime: Option<SystemTime>) -> Result<(), Error> {
        self.prepare_parents(entry, rel)?;
        match self.nodes.get(rel) {
            Some(Node::Dir) => {}
            Some(_) => return self.claim(entry, rel, Node::Dir),
            None => {
                let path = self.root.join(rel);
                std::fs::DirBuilder::new().mode(0o777).create(&path).at("create directory", &path)?;
                self.nodes.insert(rel.to_string(), Node::Dir);
                self.note_name(rel);
                self.dirs += 1;
            }
        }
        // Directories are made 0777 minus the umask; only other modes need a chmod.
        let umask = self.umask;
        let mode = mode.map(|m| m & 0o777).filter(|m| (m | umask) & 0o777 != 0o777);
        if mode.is_some() || mtime.is_some() {
            self.dir_meta.push((rel.to_string(), mode, mtime));
        }
        Ok(())
    }

    /// Reserves `rel` for a regular file and returns the path to create it at.
    pub fn file(&mut self, entry: &str, rel: &str) -> Result<PathBuf, Error> {
        self.prepare_parents(entry, rel)?;
        self.claim(entry, rel, Node::File)?;
        self.files += 1;
        Ok(self.root.join(rel))
    }

    /// A regular file whose (small) data is in memory: written by the pool.
    pub fn submit(
        &mut self,
        entry: &str,
        path: PathBuf,
        mode: u32,
        mtime: Option<SystemTime>,
        data: Vec<u8>,
    ) -> Result<(), Error> {
        self.budget.add(data.len() as u64)?;
        let threads = self.threads;
        let pool = self.pool.get_or_insert_with(|| Pool::new(threads, self.archive.to_path_buf()));
        if pool.failed.load(Ordering::Relaxed) {
            return Err(pool.take_error().unwrap_or_else(|| self.refuse(entry, "a writer thread failed")));
        }
        let job = Job { path, entry: entry.to_string(), mode, mtime, data };
        if let Some(tx) = &pool.tx
            && tx.send(job).is_err()
        {
            {
                return Err(pool.take_error().unwrap_or_else(|| self.refuse(entry, "the writer threads stopped")));
            }
        }
        Ok(())
    }

    /// Waits for the writer pool; its first error, if any.
    pub fn drain_pool(&mut self) -> Result<(), Error> {
        match self.pool.take() {
            Some(pool) => pool.join(),
            None => Ok(()),
        }
    }

    /// A symbolic link entry: recorded now (so nothing is written through it), created at
    /// the end if its target stays inside.
    pub fn symlink(&mut self, entry: &str, rel: &str, target: &str) -> Result<(), Error> {
        if target.contains('\0') || target.is_empty() {
            return Err(self.refuse(entry, "the symbolic link target is empty or contains NUL"));
        }
        if target.len() > MAX_LINK_BYTES {
            return Err(self.refuse(entry, "the symbolic link target is too long"));
        }
        self.prepare_parents(entry, rel)?;
        self.claim(entry, rel, Node::Symlink)?;
        self.symlinks.push((rel.to_string(), target.to_string(), entry.to_string()));
        Ok(())
    }

    /// A hard link entry: only to a regular file extracted earlier from this archive.
    pub fn hardlink(&mut self, entry: &str, rel: &str, target: &str) -> Result<(), Error> {
        let target_rel = match entry_path(target) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(self.refuse(entry, "the hard link points at the extraction directory itself")),
            Err(reason) => {
                return Err(self.refuse(entry, format!("the hard link target '{target}' is unsafe: {reason}")));
            }
        };
        if self.nodes.get(&target_rel) != Some(&Node::File) {
            return Err(self.refuse(
                entry,
                format!("the hard link target '{target}' is not a regular file extracted earlier from this archive"),
            ));
        }
        self.prepare_parents(entry, rel)?;
        self.claim(entry, rel, Node::File)?;
        self.files += 1;
        self.hardlinks.push((rel.to_string(), target_rel));
        Ok(())
    }

    /// Resolves a symbolic link target against the link's directory, expanding every link
    /// of the archive on the way. `None` when it leaves the root.
    fn resolve(&self, links: &HashMap<&str, &str>, dir: &[String], target: &str, depth: u32) -> Option<Vec<String>> {
        if target.starts_with('/') || depth > MAX_LINK_DEPTH {
            return None;
        }
        let bytes = target.as_bytes();
        if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
            return None;
        }
        let mut current = dir.to_vec();
        for part in target.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    current.pop()?;
                }
                name => {
                    current.push(name.to_string());
                    let key = current.join("/");
                    if let Some(next) = links.get(key.as_str()) {
                        current.pop();
                        current = self.resolve(links, &current, next, depth + 1)?;
                    }
                }
            }
        }
        Some(current)
    }

    /// Waits for the writers, makes the links, applies directory modes and times.
    pub fn finish(mut self) -> Result<ExtractSummary, Error> {
        self.drain_pool()?;
        for (rel, target) in &self.hardlinks {
            let (from, to) = (self.root.join(target), self.root.join(rel));
            std::fs::hard_link(&from, &to).at("create hard link", &to)?;
        }
        let links: HashMap<&str, &str> = self.symlinks.iter().map(|(p, t, _)| (p.as_str(), t.as_str())).collect();
        let mut skipped = 0;
        for (rel, target, _entry) in &self.symlinks {
            let dir: Vec<String> = match rel.rfind('/') {
                Some(i) => rel[..i].split('/').map(str::to_string).collect(),
                None => Vec::new(),
            };
            if self.resolve(&links, &dir, target, 0).is_some() {
                let path = self.root.join(rel);
                std::os::unix::fs::symlink(target, &path).at("create symbolic link", &path)?;
                self.files += 1;
            } else {
                skipped += 1;
                self.log.warn(format!(
                    "Cannot create symbolic link: {rel} -> {target}, because its target is outside the extraction directory"
                ));
            }
        }
        if !self.windows_names.is_empty() {
            self.log.warn(format!(
                "The package has names that would not extract the same way on Windows: {}",
                self.windows_names.join(", ")
            ));
        }
        let umask = self.umask;
        self.dir_meta.sort_by_key(|(rel, _, _)| std::cmp::Reverse(rel.matches('/').count()));
        for (rel, mode, mtime) in &self.dir_meta {
            let path = self.root.join(rel);
            if let Some(mode) = mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !umask)).at("chmod", &path)?;
            }
            if let Some(t) = mtime {
                let ts = rustix::fs::Timestamps {
                    last_access: rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
                    last_modification: to_timespec(*t),
                };
                rustix::fs::utimensat(rustix::fs::CWD, &path, &ts, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io::Error::from)
                    .at("set modification time of", &path)?;
            }
        }
        Ok(ExtractSummary {
            file_count: self.files,
            directory_count: self.dirs,
            bytes_written: self.budget.written(),
            skipped_links: skipped,
        })
    }
}

fn to_timespec(t: SystemTime) -> rustix::fs::Timespec {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => rustix::fs::Timespec { tv_sec: d.as_secs() as i64, tv_nsec: i64::from(d.subsec_nanos()) as _ },
        Err(e) => rustix::fs::Timespec { tv_sec: -(e.duration().as_secs() as i64), tv_nsec: 0 },
    }
}

/// Why a file name is not portable to Windows, if it is not.
pub fn windows_hostile(name: &str) -> Option<&'static str> {
    if name.ends_with('.') || name.ends_with(' ') {
        return Some("ends with a dot or space");
    }
    if name.chars().any(|c| matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') || u32::from(c) < 32) {
        return Some("has a character Windows forbids");
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end().to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0');
    reserved.then_some("is a reserved device name on Windows")
}

/// Unix seconds to a `SystemTime`.
pub(crate) fn unix_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
    }
}

/// Permission bits to create a file with: setuid, setgid and sticky dropped.
pub(crate) fn file_mode(mode: Option<u32>) -> u32 {
    mode.map(|m| m & 0o777).filter(|m| *m != 0).unwrap_or(0o644) | 0o400
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_checked_lexically() {
        let ok = [
            ("a.txt", "a.txt"),
            ("./a/b/", "a/b"),
            ("a//b", "a/b"),
            ("dir\\file.txt", "dir/file.txt"),
            ("my resource.txt", "my resource.txt"),
            ("á_ó_í_çø.txt", "á_ó_í_çø.txt"),
            ("a/./b", "a/b"),
        ];
        for (raw, want) in ok {
            assert_eq!(entry_path(raw).unwrap().as_deref(), Some(want), "{raw}");
        }
        assert_eq!(entry_path("./").unwrap(), None);
        assert_eq!(entry_path("").unwrap(), None);
        let bad = [
            "../x",
            "a/../../x",
            "a/../b",
            "/etc/passwd",
            "C:\\x",
            "c:x",
            "\\\\srv\\share\\x",
            "..\\..\\x",
            "a\0b",
            "//server/x",
        ];
        for raw in bad {
            assert!(entry_path(raw).is_err(), "{raw:?} should be refused");
        }
        assert!(entry_path(&"x".repeat(256)).is_err());
        assert!(entry_path(&["d"; 3000].join("/")).is_err());
    }

    #[test]
    fn modes_drop_special_bits() {
        assert_eq!(file_mode(Some(0o104755)), 0o755);
        assert_eq!(file_mode(Some(0o6777)), 0o777);
        assert_eq!(file_mode(None), 0o644);
        assert_eq!(file_mode(Some(0o044)), 0o444);
    }
}
