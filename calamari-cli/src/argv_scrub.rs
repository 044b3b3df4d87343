//! Scrubbing passwords out of `/proc/<pid>/cmdline`.
//!
//! The reference takes `--variablesPassword=<pw>` on the command line, where every user of
//! the machine can read it. We must accept it for compatibility, so as soon as
//! the arguments are parsed we overwrite the password bytes in the process's original argv
//! area, which is what `/proc/<pid>/cmdline` shows. glibc passes `(argc, argv, envp)` to
//! functions in `.init_array`; that is how the original argv is found. A short window between
//! exec and the scrub remains: prefer `--variablesPasswordFile` (and `--feedPasswordFile`).

use std::ffi::{CStr, c_char, c_int};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(std::ptr::null_mut());
static ARGC: AtomicUsize = AtomicUsize::new(0);

extern "C" fn capture(argc: c_int, argv: *mut *mut c_char, _envp: *mut *mut c_char) {
    ARGC.store(usize::try_from(argc).unwrap_or(0), Ordering::Relaxed);
    ARGV.store(argv, Ordering::Relaxed);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[unsafe(link_section = ".init_array")]
static CAPTURE: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture;

/// Options whose values are secrets.
const SECRET_OPTIONS: [&str; 3] = ["variablesPassword", "sensitiveVariablesPassword", "feedPassword"];
/// Options whose values are URLs that may hold `user:password@`.
const URL_OPTIONS: [&str; 1] = ["feedUri"];

/// Overwrites the password of a URL's `user:password@` with `*`.
fn scrub_userinfo(url: &mut [u8]) {
    let Some(scheme_end) = url.windows(3).position(|w| w == b"://") else { return };
    let start = scheme_end + 3;
    let end = url[start..].iter().position(|b| matches!(b, b'/' | b'?' | b'#')).map_or(url.len(), |i| start + i);
    let Some(at) = url[start..end].iter().rposition(|&b| b == b'@').map(|i| start + i) else { return };
    if let Some(colon) = url[start..at].iter().position(|&b| b == b':').map(|i| start + i) {
        url[colon + 1..at].fill(b'*');
    }
}

/// Overwrites the values of password options in the original argv with `*`, and the
/// password of a `user:password@` in a feed URL.
pub(crate) fn scrub_passwords() {
    let argv = ARGV.load(Ordering::Relaxed);
    let argc = ARGC.load(Ordering::Relaxed);
    if argv.is_null() {
        return;
    }
    let mut previous_was_secret_flag = false;
    let mut previous_was_url_flag = false;
    for i in 0..argc {
        // SAFETY: glibc handed us argv with argc valid, NUL-terminated entries that live for
        // the whole process; we only overwrite bytes inside each string, never its NUL.
        unsafe {
            let arg = *argv.add(i);
            if arg.is_null() {
                break;
            }
            let len = CStr::from_ptr(arg).to_bytes().len();
            let bytes = std::slice::from_raw_parts_mut(arg.cast::<u8>(), len);
            if previous_was_secret_flag {
                bytes.fill(b'*');
                previous_was_secret_flag = false;
                continue;
            }
            if previous_was_url_flag {
                scrub_userinfo(bytes);
                previous_was_url_flag = false;
                continue;
            }
            // Any spelling the option parser accepts (`--name=`, `-name:`, `/NAME` ...).
            let Some((is_url, is_secret, value_start)) =
                std::str::from_utf8(bytes).ok().and_then(crate::option_spelling::spelled).map(|o| {
                    (
                        URL_OPTIONS.iter().any(|n| n.eq_ignore_ascii_case(o.name)),
                        SECRET_OPTIONS.iter().any(|n| n.eq_ignore_ascii_case(o.name)),
                        o.value.map(|v| len - v.len()),
                    )
                })
            else {
                continue;
            };
            match (is_url, is_secret, value_start) {
                (true, _, Some(start)) => scrub_userinfo(&mut bytes[start..]),
                (true, _, None) => previous_was_url_flag = true,
                (_, true, Some(start)) => bytes[start..].fill(b'*'),
                (_, true, None) => previous_was_secret_flag = true,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_password_of_a_url_is_scrubbed() {
        let mut url = b"https://me:s3cret@feed:8443/v3/index.json".to_vec();
        super::scrub_userinfo(&mut url);
        assert_eq!(url, b"https://me:******@feed:8443/v3/index.json");
        let mut plain = b"http://feed/a@b".to_vec();
        super::scrub_userinfo(&mut plain);
        assert_eq!(plain, b"http://feed/a@b");
    }
}
