//! Helpers for the library's own unit tests.

#![allow(clippy::disallowed_methods, clippy::print_stdout)] // test code: plain std::fs, and the SKIP line

use std::io::Write as _;
use std::path::PathBuf;

/// Records that the running test skips its checks, so a skip shows in CI's summary instead
/// of passing silently: prints `SKIP <test>: <reason>` and appends the same line to the file
/// named by `CALAMARI_TEST_SKIP_LOG` (as the integration tests' `util::skip` does; `.ci/run`
/// lists the file's lines at the end). Without the variable, the line goes to
/// `calamari-skipped-tests.log` in the temp directory.
pub(crate) fn skip(reason: &str) {
    let thread = std::thread::current();
    let line = format!("SKIP {}: {}\n", thread.name().unwrap_or("<unnamed test>"), reason.trim().replace('\n', " | "));
    print!("{line}");
    let log = std::env::var_os("CALAMARI_TEST_SKIP_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("calamari-skipped-tests.log"));
    let written =
        std::fs::OpenOptions::new().create(true).append(true).open(&log).and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("cannot record the skip in {}: {e}", log.display());
    }
}
