//! POSIX shell quoting for the remote command line.
//!
//! `ssh` joins its command arguments with spaces and hands the result to the remote user's
//! login shell (`$SHELL -c`), so every argument we send is quoted here, once: wrapped in
//! single quotes, each `'` written as `'\''`. Nothing inside single quotes is special to a
//! POSIX shell (no `$`, backquote, backslash or glob), so any byte string but NUL survives.

/// `value` as one single-quoted shell word.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `sh -c '<script>' calamari-fleet '<arg>'...`: runs `script` under `/bin/sh` whatever the
/// remote user's login shell is, with `args` as `$1`, `$2`...
pub(crate) fn sh_command(script: &str, args: &[impl AsRef<str>]) -> String {
    let mut line = format!("sh -c {} calamari-fleet", quote(script));
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg.as_ref()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_special_character() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("a b $HOME `x` \\ \"q\""), "'a b $HOME `x` \\ \"q\"'");
    }

    #[test]
    fn round_trips_through_a_real_shell() {
        let values = ["a b", "it's", "$(echo no)", "`no`", "\\n", "x\ny", "*", "-n", "\"'\""];
        for value in values {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(value)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
        let line = sh_command("printf '%s|' \"$@\"", &["one two", "it's"]);
        let out = std::process::Command::new("sh").arg("-c").arg(&line).output().expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "one two|it's|");
    }
}
