//! Every option spelling the reference's parser accepts: `--name`, `-name` or `/name`, the
//! name in any case, and an inline value after `=` or `:` (`-packageId=Blah`,
//! `/PACKAGEID:Blah`), and the value after a separate option whatever it looks like. clap
//! knows `--packageId[=value]`, so the arguments are rewritten to it when they do not parse
//! as they are. Only arguments naming one of our long options are touched: a path such as
//! `/tmp/basis` stays as it is.

use std::collections::HashMap;
use std::ffi::OsString;

/// An argument read as an option: the name as written, and the inline value if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spelled<'a> {
    /// The name, without its prefix.
    pub name: &'a str,
    /// The value after the first `=` or `:`.
    pub value: Option<&'a str>,
}

/// `arg` read with the reference's pattern `^(--|-|/)(name[^:=]+)([:=]value)?$`.
pub(crate) fn spelled(arg: &str) -> Option<Spelled<'_>> {
    let rest = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')).or_else(|| arg.strip_prefix('/'))?;
    let (name, value) = match rest.find([':', '=']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    (!name.is_empty()).then_some(Spelled { name, value })
}

/// Our long options, by lower-case name: (canonical name, whether it takes a value).
fn long_options(command: &clap::Command) -> HashMap<String, (String, bool)> {
    let mut out = HashMap::new();
    let mut stack = vec![command.clone()];
    while let Some(mut command) = stack.pop() {
        command.build();
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                out.insert(long.to_ascii_lowercase(), (long.to_string(), arg.get_action().takes_values()));
            }
        }
        stack.extend(command.get_subcommands().cloned());
    }
    out
}

/// `args` (the program first) with every option written in another of the reference's
/// spellings rewritten as `--canonicalName[=value]`.
pub(crate) fn normalise(args: Vec<OsString>, command: &clap::Command) -> Vec<OsString> {
    let options = long_options(command);
    let mut out: Vec<OsString> = Vec::with_capacity(args.len());
    let mut value_follows = false;
    let mut options_ended = false;
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_str();
        if std::mem::take(&mut value_follows) {
            // The value of the option before, whatever it looks like (clap would take
            // `-x` for an option): joined to it, as the reference's parser reads it.
            if let Some(option) = out.last_mut() {
                option.push("=");
                option.push(&arg);
            }
            continue;
        }
        if i == 0 || options_ended || text.is_none() {
            out.push(arg);
            continue;
        }
        let text = text.unwrap_or_default();
        if text == "--" {
            options_ended = true;
            out.push(arg);
            continue;
        }
        let known = spelled(text).and_then(|s| options.get(&s.name.to_ascii_lowercase()).map(|o| (s, o)));
        match known {
            Some((s, (canonical, takes_value))) => {
                value_follows = *takes_value && s.value.is_none();
                out.push(match s.value {
                    Some(value) => OsString::from(format!("--{canonical}={value}")),
                    None => OsString::from(format!("--{canonical}")),
                });
            }
            None => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("calamari")
            .arg(clap::Arg::new("variables").long("variables").global(true).action(clap::ArgAction::Append))
            .subcommand(
                clap::Command::new("run-script")
                    .arg(clap::Arg::new("script").long("script"))
                    .arg(clap::Arg::new("scriptParameters").long("scriptParameters"))
                    .arg(clap::Arg::new("force").long("forcePackageDownload").action(clap::ArgAction::SetTrue))
                    .arg(clap::Arg::new("files").num_args(0..)),
            )
    }

    fn run(args: &[&str]) -> Vec<String> {
        let args = args.iter().map(OsString::from).collect();
        normalise(args, &command()).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn every_reference_spelling_becomes_ours() {
        assert_eq!(
            run(&["calamari", "run-script", "-script=a.sh", "/SCRIPT:b.sh", "--Script", "c.sh", "-variables:v.json"]),
            ["calamari", "run-script", "--script=a.sh", "--script=b.sh", "--script=c.sh", "--variables=v.json"]
        );
        // A value keeps everything after the first separator.
        assert_eq!(run(&["c", "run-script", "-script=C:\\x=y.sh"]), ["c", "run-script", "--script=C:\\x=y.sh"]);
        assert_eq!(run(&["c", "run-script", "/forcepackagedownload"]), ["c", "run-script", "--forcePackageDownload"]);
    }

    #[test]
    fn values_paths_unknown_options_and_the_end_of_options_stay() {
        assert_eq!(
            run(&["c", "run-script", "--scriptParameters", "-script", "/tmp/a", "-x=1", "--", "-script=z"]),
            ["c", "run-script", "--scriptParameters=-script", "/tmp/a", "-x=1", "--", "-script=z"]
        );
        assert_eq!(spelled("/tmp/basis"), Some(Spelled { name: "tmp/basis", value: None }));
        assert_eq!(spelled("-"), None);
        assert_eq!(spelled("plain"), None);
    }
}
