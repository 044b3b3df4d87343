//! The one place that decides what an archive may write, shared by every format.
//!
//! Entry names are checked lexically first ([`super::entry_name`]). The [`Sink`] then keeps
//! a map of everything it created in the (fresh, private) extraction directory, so it never
//! needs to ask the filesystem: a path under a symbolic link entry, a second entry with the
//! same name, or a file where a directory is needed is refused before any system call.
//! Files are created by the `writer` module, never through anything that already exists.
//!
//! Links are made last: hard links only to regular files extracted earlier; symbolic links
//! only when their target, resolved through every other link of the archive, stays inside
//! (otherwise a warning names the link and it is skipped). Devices, FIFOs and sockets are
//! refused. Permission bits are kept without setuid/setgid/sticky (the umask applies, as
//! for `tar` run by a normal user); modification times are kept. Bytes and entries are
//! counted against the limits of [`ExtractOptions`] by a shared budget ([`super::budget`]).

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::Log;
use crate::fs::IoContext;

use super::budget::Budget;
use super::entry_name::{MAX_PATH_BYTES, entry_path, has_drive_letter, windows_hostile};
use super::refusal::Refusal;
use super::writer::Pool;
use super::{Error, ExtractOptions, ExtractSummary};

/// Longest symbolic link target.
pub(crate) const MAX_LINK_BYTES: usize = 4096;
/// Most symbolic links followed while resolving one target (as Linux `MAXSYMLINKS`).
const MAX_LINK_DEPTH: u32 = 40;

/// What the sink created at a relative path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink,
}

/// The process umask, read without changing it (`umask(2)` would race other threads).
fn process_umask() -> u32 {
    crate::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok()))
        })
        .unwrap_or(0o022)
}

/// Where one extraction writes, and what it has written.
pub(crate) struct Sink<'a> {
    root: PathBuf,
    archive: &'a Path,
    log: &'a Log,
    nodes: HashMap<String, Node>,
    symlinks: Vec<(String, String, String)>,
    hardlinks: Vec<(String, String)>,
    dir_meta: Vec<(String, Option<u32>, Option<SystemTime>)>,
    files: u64,
    dirs: u64,
    threads: usize,
    umask: u32,
    lowercase: HashSet<String>,
    windows_names: Vec<String>,
    budget: Arc<Budget>,
    pool: Option<Pool>,
}

impl<'a> Sink<'a> {
    /// A sink writing into `root`, an empty directory only this extraction uses.
    pub(crate) fn new(
        root: &Path,
        archive: &'a Path,
        options: &ExtractOptions,
        archive_size: u64,
        log: &'a Log,
    ) -> Self {
        Sink {
            root: root.to_path_buf(),
            archive,
            log,
            nodes: HashMap::new(),
            symlinks: Vec::new(),
            hardlinks: Vec::new(),
            dir_meta: Vec::new(),
            files: 0,
            dirs: 0,
            threads: options.writer_threads.max(1),
            umask: process_umask(),
            lowercase: HashSet::new(),
            windows_names: Vec::new(),
            budget: Arc::new(Budget::new(options, archive.to_path_buf(), archive_size, root)),
            pool: None,
        }
    }

    /// Writer threads to use.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// The shared byte budget.
    pub(crate) fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// The log.
    pub(crate) fn log(&self) -> &Log {
        self.log
    }

    /// An error refusing `entry` for `reason`.
    pub(crate) fn refuse(&self, entry: &str, reason: Refusal) -> Error {
        Error::Refused { archive: self.archive.to_path_buf(), entry: entry.to_string(), reason }
    }

    /// Counts one more entry against the entry limit.
    pub(crate) fn count_entry(&mut self) -> Result<(), Error> {
        self.budget.add_entry()
    }

    /// Validates an entry name; `None` for the root.
    pub(crate) fn path_of(&self, entry: &str) -> Result<Option<String>, Error> {
        let rel = entry_path(entry).map_err(|reason| self.refuse(entry, reason.into()))?;
        if let Some(rel) = &rel {
            // The kernel refuses paths of PATH_MAX bytes or more (counting the NUL).
            let length = self.root.as_os_str().len() + 1 + rel.len();
            if length >= MAX_PATH_BYTES {
                return Err(self.refuse(entry, Refusal::PathTooLong { length, max: MAX_PATH_BYTES - 1 }));
            }
        }
        Ok(rel)
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
                    return Err(self.refuse(entry, Refusal::ThroughSymlink { link: prefix.to_string() }));
                }
                Some(Node::File) => {
                    return Err(self.refuse(entry, Refusal::ParentIsFile { parent: prefix.to_string() }));
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

    /// Notes names that would not deploy the same way to Windows: reserved
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
            Some(Node::Symlink) => Err(self.refuse(entry, Refusal::DuplicateOfSymlink)),
            Some(Node::Dir) => Err(self.refuse(entry, Refusal::DuplicateOfDirectory)),
            Some(Node::File) => Err(self.refuse(entry, Refusal::Duplicate)),
        }
    }

    /// A directory entry. Directories repeat harmlessly; a directory where a file or link
    /// was is refused.
    pub(crate) fn dir(
        &mut self,
        entry: &str,
        rel: &str,
        mode: Option<u32>,
        mtime: Option<SystemTime>,
    ) -> Result<(), Error> {
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
    pub(crate) fn file(&mut self, entry: &str, rel: &str) -> Result<PathBuf, Error> {
        self.prepare_parents(entry, rel)?;
        self.claim(entry, rel, Node::File)?;
        self.files += 1;
        Ok(self.root.join(rel))
    }

    /// A regular file whose (small) data is in memory: written by the pool.
    pub(crate) fn submit(
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
        pool.submit(entry, path, mode, mtime, data)
    }

    /// Waits for the writer pool; its first error, if any.
    pub(crate) fn drain_pool(&mut self) -> Result<(), Error> {
        match self.pool.take() {
            Some(pool) => pool.join(),
            None => Ok(()),
        }
    }

    /// A symbolic link entry: recorded now (so nothing is written through it), created at
    /// the end if its target stays inside.
    pub(crate) fn symlink(&mut self, entry: &str, rel: &str, target: &str) -> Result<(), Error> {
        if target.contains('\0') || target.is_empty() {
            return Err(self.refuse(entry, Refusal::EmptyOrNulLinkTarget));
        }
        if target.len() > MAX_LINK_BYTES {
            return Err(self.refuse(entry, Refusal::LinkTargetTooLong));
        }
        self.prepare_parents(entry, rel)?;
        self.claim(entry, rel, Node::Symlink)?;
        self.symlinks.push((rel.to_string(), target.to_string(), entry.to_string()));
        Ok(())
    }

    /// A hard link entry: only to a regular file extracted earlier from this archive.
    pub(crate) fn hardlink(&mut self, entry: &str, rel: &str, target: &str) -> Result<(), Error> {
        let target_rel = match entry_path(target) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(self.refuse(entry, Refusal::HardLinkToRoot)),
            Err(reason) => {
                return Err(self.refuse(entry, Refusal::UnsafeHardLinkTarget { target: target.to_string(), reason }));
            }
        };
        if self.nodes.get(&target_rel) != Some(&Node::File) {
            return Err(self.refuse(entry, Refusal::HardLinkTargetNotExtracted { target: target.to_string() }));
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
        if has_drive_letter(target.as_bytes()) {
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
    pub(crate) fn finish(mut self) -> Result<ExtractSummary, Error> {
        self.drain_pool()?;
        for (rel, target) in &self.hardlinks {
            let (from, to) = (self.root.join(target), self.root.join(rel));
            crate::fs::hard_link(&from, &to)?;
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
                crate::fs::symlink(target, &path)?;
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
                crate::fs::set_mode(&path, mode & !umask)?;
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

/// Unix seconds to a `SystemTime`.
pub(crate) fn unix_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
    }
}
