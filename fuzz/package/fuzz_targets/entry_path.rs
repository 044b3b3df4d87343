//! The entry-name check never panics, and whatever it accepts is a plain relative path:
//! no `..`, no empty or `.` components, no leading `/`, no backslash, no NUL, no drive.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    if let Ok(Some(path)) = calamari::internals::entry_path(name) {
        assert!(!path.starts_with('/') && !path.contains('\\') && !path.contains('\0'), "{path:?}");
        assert!(path.split('/').all(|c| !c.is_empty() && c != "." && c != ".."), "{path:?}");
        let b = path.as_bytes();
        assert!(!(b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'), "{path:?}");
    }
});
