//! Creating the files of an extraction: one safe way to create a file, streaming an
//! entry into it, and a pool of writer threads for small files whose data is in memory.
//!
//! Files are created with `O_CREAT|O_EXCL|O_NOFOLLOW`, so nothing that already exists
//! (least of all a symbolic link) is ever followed or replaced; permission bits lose
//! setuid, setgid and sticky. Every byte goes through the shared budget before it is
//! written. The pool exists because creating a file costs about a millisecond of kernel
//! time here, so several creators beat one; its first error wins and stops the others.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::fs::{IoContext, IoError};

use super::Error;
use super::budget::Budget;
use super::error::corrupt;
use super::refusal::Refusal;

/// Size of the copy buffer each writer thread reuses.
pub(crate) const COPY_BUFFER: usize = 128 * 1024;

/// Permission bits to create a file with: setuid, setgid and sticky dropped, and always
/// readable by its owner (`0644` when the archive says nothing).
pub(crate) fn file_mode(mode: Option<u32>) -> u32 {
    mode.map(|m| m & 0o777).filter(|m| *m != 0).unwrap_or(0o644) | 0o400
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

/// A failure to create or write `path` for `entry`: a refusal when something of that
/// name is already there, else an I/O error.
pub(crate) fn write_error(archive: &Path, entry: &str, path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::AlreadyExists => {
            Error::Refused { archive: archive.to_path_buf(), entry: entry.to_string(), reason: Refusal::AlreadyExists }
        }
        _ if e.raw_os_error() == Some(libc::ENAMETOOLONG) => Error::Refused {
            archive: archive.to_path_buf(),
            entry: entry.to_string(),
            reason: Refusal::PathTooLong { length: path.as_os_str().len(), max: super::entry_name::MAX_PATH_BYTES - 1 },
        },
        _ => IoError { op: "write", path: path.to_path_buf(), source: e }.into(),
    }
}

/// Streams `reader` into a new file, counting bytes against the budget (and, given the
/// entry's compressed size, against the ratio limit for that entry). `buf` is the
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
    compressed: Option<u64>,
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
        total += n as u64;
        if let Some(compressed) = compressed {
            budget.check_entry_ratio(entry, total, compressed)?;
        }
        file.write_all(&buf[..n]).at("write", path)?;
    }
    if let Some(t) = mtime {
        file.set_modified(t).at("set modification time of", path)?;
    }
    Ok(total)
}

/// A file whose data is in memory, for the writer pool.
struct Job {
    path: PathBuf,
    entry: String,
    mode: u32,
    mtime: Option<SystemTime>,
    data: Vec<u8>,
}

/// Writer threads that create files from in-memory data.
pub(crate) struct Pool {
    tx: Option<SyncSender<Job>>,
    handles: Vec<JoinHandle<()>>,
    error: Arc<Mutex<Option<Error>>>,
    failed: Arc<AtomicBool>,
    archive: PathBuf,
}

impl Pool {
    /// Starts `threads` writers for files of `archive`.
    pub(crate) fn new(threads: usize, archive: PathBuf) -> Pool {
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
        Pool { tx: Some(tx), handles, error, failed, archive }
    }

    fn take_error(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn refuse(&self, entry: &str, reason: Refusal) -> Error {
        Error::Refused { archive: self.archive.clone(), entry: entry.to_string(), reason }
    }

    /// Queues a new file at `path` (for archive entry `entry`) with `data`; blocks while the
    /// queue is full.
    ///
    /// # Errors
    /// The first error of a writer, once one has failed.
    pub(crate) fn submit(
        &self,
        entry: &str,
        path: PathBuf,
        mode: u32,
        mtime: Option<SystemTime>,
        data: Vec<u8>,
    ) -> Result<(), Error> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(self.take_error().unwrap_or_else(|| self.refuse(entry, Refusal::WriterFailed)));
        }
        let job = Job { path, entry: entry.to_string(), mode, mtime, data };
        if let Some(tx) = &self.tx
            && tx.send(job).is_err()
        {
            return Err(self.take_error().unwrap_or_else(|| self.refuse(entry, Refusal::WritersStopped)));
        }
        Ok(())
    }

    /// Waits for every queued file.
    ///
    /// # Errors
    /// The first error of a writer.
    pub(crate) fn join(mut self) -> Result<(), Error> {
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

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn modes_drop_special_bits() {
        assert_eq!(file_mode(Some(0o104755)), 0o755);
        assert_eq!(file_mode(Some(0o6777)), 0o777);
        assert_eq!(file_mode(None), 0o644);
        assert_eq!(file_mode(Some(0o044)), 0o444);
    }

    #[test]
    fn pool_writes_files_and_reports_the_first_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new(2, PathBuf::from("a.tar"));
        for i in 0..20 {
            pool.submit(&format!("f{i}"), dir.path().join(format!("f{i}")), 0o644, None, vec![b'x'; i]).unwrap();
        }
        pool.join().unwrap();
        assert_eq!(std::fs::read(dir.path().join("f7")).unwrap(), vec![b'x'; 7]);

        let pool = Pool::new(1, PathBuf::from("a.tar"));
        pool.submit("f3", dir.path().join("f3"), 0o644, None, Vec::new()).unwrap();
        let e = pool.join().unwrap_err().to_string();
        assert_eq!(e, "Refused to extract entry 'f3' of 'a.tar': a file of that name already exists");
    }
}
