//! What an archive entry name may be, decided from the name alone.
//!
//! [`entry_path`] reads `\` as `/` (packages made on Windows) and refuses names that would
//! leave the extraction directory or cannot be a file name: absolute paths, drive letters
//! (`C:`), UNC roots (`\\srv`), `..` components, NUL characters, components longer than
//! Linux's `NAME_MAX` and paths longer than `PATH_MAX`. It never touches the filesystem.
//!
//! [`windows_hostile`] says why an accepted name would not extract the same way on
//! Windows; such names are extracted and only warned about.

/// Longest entry path we accept, in bytes (Linux `PATH_MAX`).
pub(crate) const MAX_PATH_BYTES: usize = 4096;
/// Longest path component (Linux `NAME_MAX`).
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// Why an entry name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeName {
    /// The name contains `\0`.
    #[error("the name contains a NUL character")]
    Nul,
    /// The name starts with `/` (or `\`, including UNC roots).
    #[error("the name is an absolute path, outside the intended extraction directory")]
    Absolute,
    /// The name starts with `X:`.
    #[error("the name starts with a Windows drive letter, outside the intended extraction directory")]
    DriveLetter,
    /// A component is `..`.
    #[error("the name contains a '..' component: it would extract outside the intended extraction directory")]
    ParentComponent,
    /// A component is longer than [`MAX_NAME_BYTES`].
    #[error("a path component is longer than {MAX_NAME_BYTES} bytes")]
    ComponentTooLong,
    /// The normalised path is longer than [`MAX_PATH_BYTES`].
    #[error("path too long: the path is longer than {MAX_PATH_BYTES} bytes")]
    PathTooLong,
}

/// A name as shown in messages: names over 100 characters keep their first 60 and last 40
/// characters, with `...` between.
pub(crate) fn shorten(name: &str) -> std::borrow::Cow<'_, str> {
    let count = name.chars().count();
    if count <= 100 {
        return name.into();
    }
    let head: String = name.chars().take(60).collect();
    let tail: String = name.chars().skip(count - 40).collect();
    format!("{head}...{tail}").into()
}

/// True when `bytes` starts with a drive letter and a colon (`C:`).
pub(crate) fn has_drive_letter(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Checks an entry name and returns its normalised relative path (`a/b/c`), or `None` for
/// the root itself (`./`).
///
/// # Errors
/// The reason the name is refused.
pub fn entry_path(raw: &str) -> Result<Option<String>, UnsafeName> {
    if raw.contains('\0') {
        return Err(UnsafeName::Nul);
    }
    let name = raw.replace('\\', "/");
    if name.starts_with('/') {
        return Err(UnsafeName::Absolute);
    }
    if has_drive_letter(name.as_bytes()) {
        return Err(UnsafeName::DriveLetter);
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(UnsafeName::ParentComponent),
            _ if part.len() > MAX_NAME_BYTES => return Err(UnsafeName::ComponentTooLong),
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let path = parts.join("/");
    // `./C:/x` only shows its drive once the `.` components are gone.
    if has_drive_letter(path.as_bytes()) {
        return Err(UnsafeName::DriveLetter);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(UnsafeName::PathTooLong);
    }
    Ok(Some(path))
}

/// Why a file name is not portable to Windows, if it is not: a trailing dot or space, a
/// character Windows forbids, or a reserved device name (`CON`, `COM1`, ...).
pub(crate) fn windows_hostile(name: &str) -> Option<&'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/package` (target `entry_path`, input `./Y:./.`): the drive letter was
    /// looked for before the `.` components were dropped.
    #[test]
    fn a_drive_letter_behind_dot_components_is_refused() {
        for name in ["./Y:./.", "./C:/x", ".//c:x", ".\\D:\\y"] {
            assert_eq!(entry_path(name), Err(UnsafeName::DriveLetter), "{name:?}");
        }
        assert_eq!(entry_path("./x/C:y").unwrap().as_deref(), Some("x/C:y"));
    }

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
            ("../x", UnsafeName::ParentComponent),
            ("a/../../x", UnsafeName::ParentComponent),
            ("a/../b", UnsafeName::ParentComponent),
            ("/etc/passwd", UnsafeName::Absolute),
            ("C:\\x", UnsafeName::DriveLetter),
            ("c:x", UnsafeName::DriveLetter),
            ("\\\\srv\\share\\x", UnsafeName::Absolute),
            ("..\\..\\x", UnsafeName::ParentComponent),
            ("a\0b", UnsafeName::Nul),
            ("//server/x", UnsafeName::Absolute),
        ];
        for (raw, why) in bad {
            assert_eq!(entry_path(raw), Err(why), "{raw:?} should be refused");
        }
        assert_eq!(entry_path(&"x".repeat(256)), Err(UnsafeName::ComponentTooLong));
        assert_eq!(entry_path(&["d"; 3000].join("/")), Err(UnsafeName::PathTooLong));
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        assert_eq!(shorten("short/name"), "short/name");
        let long = format!("{}{}", "a".repeat(100), "b".repeat(100));
        assert_eq!(shorten(&long), format!("{}...{}", "a".repeat(60), "b".repeat(40)));
        assert_eq!(shorten(&"é".repeat(101)).chars().count(), 103);
    }

    #[test]
    fn windows_hostile_names_are_recognised() {
        for (name, hostile) in [
            ("a.txt", false),
            ("trailing.", true),
            ("trailing ", true),
            ("a:b", true),
            ("CON", true),
            ("con.txt", true),
            ("COM1", true),
            ("COM0", false),
            ("LPT9.log", true),
            ("CONSOLE", false),
        ] {
            assert_eq!(windows_hostile(name).is_some(), hostile, "{name}");
        }
    }
}
