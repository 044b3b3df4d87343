//! Filesystem helpers whose errors always name the operation and the path, and the
//! atomic-write primitives (temp file + fsync + rename + fsync of the directory) that markers
//! such as `Success.txt` and the journal rely on.
//!
//! This is the one module that calls `std::fs` directly: `clippy.toml` disallows the
//! `std::fs` free functions (and `File::open`/`File::create`) everywhere else, so every
//! filesystem error the crate reports reads "failed to <op> '<path>': <cause>". Each wrapper
//! is a thin function over its `std::fs` namesake; code that needs other options (mode,
//! `O_EXCL`, `O_NOFOLLOW`) uses `OpenOptions`/`DirBuilder` and attaches the path with
//! [`IoContext::at`].
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O error with the operation and the path it concerned.
#[derive(Debug)]
pub struct IoError {
    /// What we were doing, e.g. "create directory".
    pub op: &'static str,
    /// The path concerned.
    pub path: PathBuf,
    /// The underlying error.
    pub source: io::Error,
}

impl IoError {
    /// The kind of the underlying error (e.g. to treat `NotFound` specially).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to {} '{}': {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `Result` with [`IoError`].
pub type Result<T> = std::result::Result<T, IoError>;

/// Attaches an operation and a path to an `io::Result`.
pub trait IoContext<T> {
    /// Wraps the error with `op` and `path`.
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|source| IoError { op, path: path.as_ref().to_path_buf(), source })
    }
}

// ---------------------------------------------------------------------------------------
// Reading and writing whole files, opening files

/// Reads a whole file.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    fs::read(path).at("read", path)
}

/// Reads a whole UTF-8 file.
pub fn read_to_string(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    fs::read_to_string(path).at("read", path)
}

/// Writes a whole file (not atomically; see [`write_atomic`]).
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<()> {
    let path = path.as_ref();
    fs::write(path, contents).at("write", path)
}

/// Opens a file for reading ([`File::open`]).
pub fn open(path: impl AsRef<Path>) -> Result<File> {
    let path = path.as_ref();
    File::open(path).at("open", path)
}

/// Creates (or truncates) a file for writing ([`File::create`]).
pub fn create(path: impl AsRef<Path>) -> Result<File> {
    let path = path.as_ref();
    File::create(path).at("create", path)
}

/// Opens `path` for appending, creating it when missing.
pub fn open_append(path: impl AsRef<Path>) -> Result<File> {
    let path = path.as_ref();
    OpenOptions::new().create(true).append(true).open(path).at("open", path)
}

// ---------------------------------------------------------------------------------------
// Directories

/// Creates one directory; its parent must exist and it must not.
pub fn create_dir(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    fs::create_dir(path).at("create directory", path)
}

/// Creates a directory and its parents.
pub fn create_dir_all(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    fs::create_dir_all(path).at("create directory", path)
}

/// Removes an empty directory; a missing directory is not an error.
pub fn remove_dir(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    match fs::remove_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.at("remove directory", path),
    }
}

/// Removes a directory tree; a missing directory is not an error.
pub fn remove_dir_all(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.at("remove directory", path),
    }
}

/// Lists a directory. The entries' errors name the directory too.
pub fn read_dir(path: impl AsRef<Path>) -> Result<ReadDir> {
    let path = path.as_ref();
    let inner = fs::read_dir(path).at("read directory", path)?;
    Ok(ReadDir { inner, path: path.to_path_buf() })
}

/// The entries of a directory, from [`read_dir`].
#[derive(Debug)]
pub struct ReadDir {
    inner: fs::ReadDir,
    path: PathBuf,
}

impl Iterator for ReadDir {
    type Item = Result<fs::DirEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.inner.next()?.at("read directory", &self.path))
    }
}

// ---------------------------------------------------------------------------------------
// Files, links and metadata

/// Removes a file; a missing file is not an error.
pub fn remove_file(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.at("remove file", path),
    }
}

/// Renames `from` to `to` (atomic on one filesystem).
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    fs::rename(from, to).at("rename to", to)
}

/// Copies a file, keeping its permissions.
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    fs::copy(from, to).at("copy to", to)
}

/// Makes `link` a hard link to the file `original`.
pub fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    fs::hard_link(original, link).at("create hard link", link)
}

/// Makes `link` a symbolic link whose target is `target` (stored as given).
pub fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) -> Result<()> {
    let link = link.as_ref();
    std::os::unix::fs::symlink(target, link).at("create symbolic link", link)
}

/// The target a symbolic link points to.
pub fn read_link(path: impl AsRef<Path>) -> Result<PathBuf> {
    let path = path.as_ref();
    fs::read_link(path).at("read link", path)
}

/// The absolute path with symbolic links and `..` resolved; the path must exist.
pub fn canonicalize(path: impl AsRef<Path>) -> Result<PathBuf> {
    let path = path.as_ref();
    fs::canonicalize(path).at("resolve", path)
}

/// `stat` following symlinks.
pub fn metadata(path: impl AsRef<Path>) -> Result<fs::Metadata> {
    let path = path.as_ref();
    fs::metadata(path).at("read metadata of", path)
}

/// `lstat`: the metadata of a symbolic link itself, not of its target.
pub fn symlink_metadata(path: impl AsRef<Path>) -> Result<fs::Metadata> {
    let path = path.as_ref();
    fs::symlink_metadata(path).at("read metadata of", path)
}

/// Sets a path's permissions (follows symlinks, as `chmod` does).
pub fn set_permissions(path: impl AsRef<Path>, permissions: fs::Permissions) -> Result<()> {
    let path = path.as_ref();
    fs::set_permissions(path, permissions).at("chmod", path)
}

/// Sets a path's Unix permission bits (`chmod <mode>`).
pub fn set_mode(path: impl AsRef<Path>, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    set_permissions(path, fs::Permissions::from_mode(mode))
}

// ---------------------------------------------------------------------------------------
// Durability: fsync and atomic replacement

/// `fsync`s a file or directory by path.
pub fn sync_path(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    File::open(path).and_then(|f| f.sync_all()).at("fsync", path)
}

/// `fsync`s the directory that contains `path`, so a rename into it is durable.
pub fn sync_parent(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_path(parent),
        _ => sync_path("."),
    }
}

/// Replaces `path` with `contents` atomically and durably: the data goes to a temp file
/// in the same directory, which is fsync'd, renamed over `path`, and then the directory
/// is fsync'd. A crash at any moment leaves either the old file or the new one, never a
/// torn or empty one.
pub fn write_atomic(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<()> {
    write_atomic_with_mode(path, contents, None)
}

/// As [`write_atomic`], creating the file with the given Unix mode.
pub fn write_atomic_with_mode(path: impl AsRef<Path>, contents: impl AsRef<[u8]>, mode: Option<u32>) -> Result<()> {
    let path = path.as_ref();
    let tmp = write_temp_beside(path, contents.as_ref(), mode)?;
    tmp.persist(path).map_err(|e| IoError { op: "rename to", path: path.to_path_buf(), source: e.error })?;
    sync_path(parent_or_dot(path))
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `contents` to a new temp file beside `path` (named as [`remove_stale_temp_files`]
/// recognises), with `mode`, fsync'd; the file is removed when the returned path is dropped.
fn write_temp_beside(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<tempfile::TempPath> {
    let mut tmp = create_temp_beside(path, mode)?;
    tmp.write_all(contents).at("write", tmp.path())?;
    tmp.as_file().sync_all().at("fsync", tmp.path())?;
    // Closed now: a run staging thousands of files holds no descriptor per file.
    Ok(tmp.into_temp_path())
}

/// Creates an empty temp file beside `path` (named as [`remove_stale_temp_files`]
/// recognises), with `mode`; the file is removed when the returned value is dropped.
fn create_temp_beside(path: &Path, mode: Option<u32>) -> Result<tempfile::NamedTempFile> {
    let dir = parent_or_dot(path);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}.{TEMP_MARK}{}.", std::process::id()))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .at("create temporary file in", dir)?;
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(fs::Permissions::from_mode(mode)).at("chmod", tmp.path())?;
    }
    Ok(tmp)
}

/// The new contents of an existing file, written piece by piece into a temp file beside
/// it (with its permission bits) and then handed to [`StagedReplacements::stage_file`]:
/// what a rewrite that streams uses instead of [`StagedReplacements::stage`]. Dropped
/// without being staged, the temp file is removed.
#[derive(Debug)]
pub struct StagingFile {
    target: PathBuf,
    tmp: io::BufWriter<tempfile::NamedTempFile>,
}

impl StagingFile {
    /// An empty temp file beside the existing file `target`, with its permission bits.
    ///
    /// # Errors
    /// `target` has no metadata, or the temp file cannot be created.
    pub fn create(target: &Path) -> Result<StagingFile> {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = metadata(target)?.permissions().mode() & 0o7777;
        let tmp = create_temp_beside(target, Some(mode))?;
        Ok(StagingFile { target: target.to_path_buf(), tmp: io::BufWriter::with_capacity(64 * 1024, tmp) })
    }

    /// Appends `bytes`.
    ///
    /// # Errors
    /// The write fails (the error names the temp file).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.tmp.write_all(bytes).at("write", self.tmp.get_ref().path())
    }

    /// Empties the file, to write it again from the start.
    ///
    /// # Errors
    /// The file cannot be truncated.
    pub fn truncate(&mut self) -> Result<()> {
        use std::io::Seek as _;
        self.tmp.flush().at("write", self.tmp.get_ref().path())?;
        let tmp = self.tmp.get_mut();
        tmp.as_file().set_len(0).at("truncate", tmp.path())?;
        tmp.rewind().at("seek in", tmp.path())?;
        Ok(())
    }

    /// The file this one is to replace.
    pub fn target(&self) -> &Path {
        &self.target
    }
}

/// New contents for existing files, staged as temp files beside them and put in place
/// all together by [`commit`](Self::commit): what a command that rewrites several files
/// uses so that a failure half-way (a file that does not parse, a template error) leaves
/// every file as it was. Dropped without `commit`, it removes the temp files.
///
/// Each staged file keeps the permission bits of the file it replaces. The renames at the
/// end are each atomic; only a failure among them (a disk error, a file removed meanwhile)
/// can leave some files new and the others old.
#[derive(Debug, Default)]
pub struct StagedReplacements {
    staged: Vec<(PathBuf, tempfile::TempPath)>,
}

impl StagedReplacements {
    /// Nothing staged yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages `contents` as the new contents of the existing file `path` (replacing what
    /// was staged for it before).
    ///
    /// # Errors
    /// `path` has no metadata, or the temp file cannot be written.
    pub fn stage(&mut self, path: &Path, contents: &[u8]) -> Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = metadata(path)?.permissions().mode() & 0o7777;
        let tmp = write_temp_beside(path, contents, Some(mode))?;
        match self.staged.iter_mut().find(|(p, _)| p == path) {
            Some(entry) => entry.1 = tmp,
            None => self.staged.push((path.to_path_buf(), tmp)),
        }
        Ok(())
    }

    /// Stages what was written to `file` as the new contents of its target (replacing what
    /// was staged for it before): flushed, fsync'd and closed.
    ///
    /// # Errors
    /// The flush or the fsync fails.
    pub fn stage_file(&mut self, file: StagingFile) -> Result<()> {
        let StagingFile { target, tmp } = file;
        let path = tmp.get_ref().path().to_path_buf();
        let tmp = tmp.into_inner().map_err(|e| IoError { op: "write", path, source: e.into_error() })?;
        tmp.as_file().sync_all().at("fsync", tmp.path())?;
        let tmp = tmp.into_temp_path();
        match self.staged.iter_mut().find(|(p, _)| *p == target) {
            Some(entry) => entry.1 = tmp,
            None => self.staged.push((target, tmp)),
        }
        Ok(())
    }

    /// The file holding what is staged for `path`, if anything is: what a second pass over
    /// the same file reads instead of the file itself.
    pub fn staged(&self, path: &Path) -> Option<&Path> {
        self.staged.iter().find(|(p, _)| p == path).map(|(_, tmp)| &**tmp)
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// Renames every staged file over its target, in the order staged, then fsyncs their
    /// directories. Returns the files replaced.
    ///
    /// # Errors
    /// A rename or fsync fails; the temp files not yet renamed are removed.
    pub fn commit(self) -> Result<Vec<PathBuf>> {
        let mut done = Vec::with_capacity(self.staged.len());
        for (path, tmp) in self.staged {
            tmp.persist(&path).map_err(|e| IoError { op: "rename to", path: path.clone(), source: e.error })?;
            done.push(path);
        }
        let dirs: std::collections::BTreeSet<&Path> = done.iter().map(|p| parent_or_dot(p)).collect();
        for dir in dirs {
            sync_path(dir)?;
        }
        Ok(done)
    }
}

/// What [`write_atomic`]'s temp files are named: `.<file>.calamari<pid>.<random>.tmp`. The
/// writer's pid lets a later run tell a file left by a killed writer from one being written.
const TEMP_MARK: &str = "calamari";
const TEMP_SUFFIX: &str = ".tmp";

/// Removes the temp files that [`write_atomic`] left in `dir` when its process was killed
/// between creating and renaming them: those whose writer's pid is no longer running (a
/// pid reused by another process keeps its file, which errs on the safe side). Returns what
/// was removed. Temp files of this process and of running ones are left alone.
///
/// # Errors
/// An unreadable directory, or a stale file that cannot be removed.
pub fn remove_stale_temp_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let mut removed = Vec::new();
    for entry in read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_file_writer) else { continue };
        if pid == std::process::id() || process_is_running(pid) {
            continue;
        }
        let path = entry.path();
        match remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// [`remove_stale_temp_files`] in each directory that holds one of `files`, once per
/// directory: what a run that is about to rewrite these files calls first, so an earlier run
/// killed while rewriting them leaves nothing behind.
///
/// # Errors
/// As [`remove_stale_temp_files`].
pub fn remove_stale_temp_files_beside(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let dirs: std::collections::BTreeSet<&Path> = files.iter().filter_map(|f| f.parent()).collect();
    let mut removed = Vec::new();
    for dir in dirs {
        removed.extend(remove_stale_temp_files(dir)?);
    }
    Ok(removed)
}

/// Removes every temp file [`write_atomic`] left next to `path`, whatever its writer: for a
/// caller that holds the lock every writer of `path` takes (a journal), so none of them is
/// in use. Best effort: what cannot be listed or removed stays for the next time.
pub fn remove_temp_files_of(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(&prefix) && file_name.ends_with(TEMP_SUFFIX) {
            let _ = remove_file(entry.path());
        }
    }
}

/// The writer's pid, when `name` is one of [`write_atomic`]'s temp file names.
fn temp_file_writer(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let (before_random, _random) = rest.rsplit_once('.')?;
    let (_file, marked) = before_random.rsplit_once('.')?;
    marked.strip_prefix(TEMP_MARK)?.parse().ok().filter(|&pid| pid > 0)
}

/// Whether a process with this pid exists (signal 0: no signal is sent).
fn process_is_running(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

/// A file being written whole that will be fsync'd at the end (a download, a rebuilt
/// package): every [`Writeback::EVERY`] bytes it asks the kernel to start writing the
/// bytes so far to disk (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait),
/// so the disk works while the data still arrives and the final fsync has little left to
/// do. Without it, all of a 100 MB download is written back during that fsync.
pub struct Writeback<'f> {
    file: &'f File,
    written: u64,
    started: u64,
}

impl<'f> Writeback<'f> {
    /// How many bytes are written between two write-back requests.
    pub const EVERY: u64 = 8 << 20;

    /// Wraps `file`, whose write position is at its start.
    pub fn new(file: &'f File) -> Self {
        Writeback { file, written: 0, started: 0 }
    }

    fn start_writeback(&mut self) {
        use std::os::fd::AsRawFd as _;
        let (Ok(offset), Ok(len)) = (i64::try_from(self.started), i64::try_from(self.written - self.started)) else {
            return;
        };
        // SAFETY: the descriptor is open for the lifetime of `self.file`; the call only
        // reads its arguments. A failure (a filesystem without it) is harmless: the final
        // fsync writes everything anyway, so the result is ignored.
        let _ = unsafe { libc::sync_file_range(self.file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        self.started = self.written;
    }
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= Self::EVERY {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.file).flush()
    }
}

/// [`write_atomic_with_mode`] keeping the mode of the file it replaces, or `new_mode` when
/// there is none yet (rather than a temp file's 0600).
pub fn write_atomic_keeping_mode(path: impl AsRef<Path>, contents: impl AsRef<[u8]>, new_mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = path.as_ref();
    let mode = metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(new_mode);
    write_atomic_with_mode(path, contents, Some(mode))
}

/// Replaces an existing file's contents atomically ([`write_atomic`]), keeping its Unix
/// permission bits.
pub fn replace_keeping_mode(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = path.as_ref();
    let mode = metadata(path)?.permissions().mode() & 0o7777;
    write_atomic_with_mode(path, contents, Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_names_carry_their_writer() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path().join("a.b.json"), "x").unwrap();
        assert_eq!(read_dir(dir.path()).unwrap().count(), 1, "the temp file is renamed away");
        assert_eq!(temp_file_writer(".a.b.json.calamari42.XyZ123.tmp"), Some(42));
        for other in
            [".a.json.calamari.XyZ.tmp", ".a.json.calamari0.XyZ.tmp", "a.json.calamari4.X.tmp", ".a.json.4.X.tmp"]
        {
            assert_eq!(temp_file_writer(other), None, "{other}");
        }
    }

    #[test]
    fn errors_name_the_operation_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let cases: [(Result<()>, &str); 4] = [
            (read(&missing).map(drop), "read"),
            (read_dir(&missing).map(drop), "read directory"),
            (symlink_metadata(&missing).map(drop), "read metadata of"),
            (set_mode(&missing, 0o700), "chmod"),
        ];
        for (result, op) in cases {
            let message = result.unwrap_err().to_string();
            assert!(message.starts_with(&format!("failed to {op} '{}': ", missing.display())), "{message}");
        }
        assert_eq!(read_link(&missing).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn staged_replacements_are_all_or_nothing_and_keep_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        write(&a, "old a").unwrap();
        write(&b, "old b").unwrap();
        set_mode(&a, 0o640).unwrap();

        // Dropped without commit: nothing changes and no temp file stays.
        let mut staged = StagedReplacements::new();
        staged.stage(&a, b"new a").unwrap();
        assert_eq!(read(staged.staged(&a).unwrap()).unwrap(), b"new a");
        assert!(staged.staged(&b).is_none());
        drop(staged);
        assert_eq!(read(&a).unwrap(), b"old a");
        assert_eq!(read_dir(dir.path()).unwrap().count(), 2);

        // Staged twice, then committed: the last contents, the old mode, no temp file.
        let mut staged = StagedReplacements::new();
        staged.stage(&a, b"first").unwrap();
        staged.stage(&b, b"new b").unwrap();
        staged.stage(&a, b"second").unwrap();
        assert_eq!(staged.commit().unwrap(), [a.clone(), b.clone()]);
        assert_eq!(read(&a).unwrap(), b"second");
        assert_eq!(read(&b).unwrap(), b"new b");
        assert_eq!(metadata(&a).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(read_dir(dir.path()).unwrap().count(), 2);

        // A file that is not there cannot be staged, and the error names it.
        let missing = dir.path().join("missing.txt");
        let err = StagedReplacements::new().stage(&missing, b"x").unwrap_err();
        assert_eq!(err.path, missing);
    }

    #[test]
    fn removing_what_is_missing_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        remove_file(&missing).unwrap();
        remove_dir(&missing).unwrap();
        remove_dir_all(&missing).unwrap();
    }

    #[test]
    fn links_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        write(&file, "x").unwrap();
        symlink("f", dir.path().join("soft")).unwrap();
        hard_link(&file, dir.path().join("hard")).unwrap();
        assert_eq!(read_link(dir.path().join("soft")).unwrap(), Path::new("f"));
        assert!(symlink_metadata(dir.path().join("soft")).unwrap().file_type().is_symlink());
        assert_eq!(canonicalize(dir.path().join("soft")).unwrap(), canonicalize(&file).unwrap());
        let mut names: Vec<_> = read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["f", "hard", "soft"]);
    }
}
