//! The hosts a fleet run targets: `--host=DEST` (repeatable) and `--hosts=FILE`.
//!
//! A hosts file holds one destination per line, anything `ssh` accepts (`host`,
//! `user@host`, `ssh://user@host:port`, an alias of the ssh config). `#` starts a comment,
//! to the end of the line; blank lines are ignored. A destination may not start with `-`
//! (it would be read by `ssh` as an option) nor contain whitespace.

use std::path::Path;

use super::Error;

/// Parses the text of a hosts file; `path` names it in errors.
///
/// # Errors
/// [`Error::BadHost`] for a line that cannot be a destination.
pub(crate) fn parse_hosts_file(text: &str, path: &Path) -> Result<Vec<String>, Error> {
    let mut hosts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        check_destination(line).map_err(|reason| Error::BadHost {
            host: line.to_string(),
            source_name: format!("{}:{}", path.display(), number + 1),
            reason,
        })?;
        hosts.push(line.to_string());
    }
    Ok(hosts)
}

/// Why `dest` cannot be handed to `ssh`, if it cannot.
pub(crate) fn check_destination(dest: &str) -> Result<(), &'static str> {
    if dest.is_empty() {
        Err("it is empty")
    } else if dest.starts_with('-') {
        Err("it starts with '-', which ssh would read as an option")
    } else if dest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("it contains whitespace or a control character")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_destinations() {
        let text = "# web servers\nweb1\n\n  deploy@web2  # the second\nssh://u@web3:2222\n#last\n";
        assert_eq!(parse_hosts_file(text, Path::new("h")).unwrap(), ["web1", "deploy@web2", "ssh://u@web3:2222"]);
    }

    #[test]
    fn refuses_option_like_and_spaced_destinations() {
        let err = parse_hosts_file("ok\n-oProxyCommand=x\n", Path::new("hosts.txt")).unwrap_err();
        assert!(err.to_string().contains("hosts.txt:2"), "{err}");
        assert!(parse_hosts_file("a b\n", Path::new("h")).is_err());
    }
}
