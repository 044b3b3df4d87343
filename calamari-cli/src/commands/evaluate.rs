//! `calamari evaluate`: evaluate an Octostache template against the variables and print
//! the result. For people debugging templates and for scripts. Sensitive values are masked
//! as in every other command's output unless `--showSensitive` is given. Piped, the result
//! is printed exactly; at a terminal a final newline is added when it has none, so the
//! prompt does not run into it.

use calamari::{Outcome, UsageError};
use std::path::PathBuf;

use calamari::ParseMode;

use crate::context::Context;

/// Options of `evaluate`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["template", "file"])))]
pub(crate) struct Args {
    /// The template text.
    #[arg(long = "template", value_name = "TEXT")]
    template: Option<String>,
    /// Read the template from this file.
    #[arg(long = "file", value_name = "PATH")]
    file: Option<PathBuf>,
    /// With false, malformed fragments stay as text and the rest is still evaluated.
    #[arg(long = "haltOnError", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    halt_on_error: bool,
    /// Print sensitive values in clear (they are masked as ******** otherwise).
    #[arg(long = "showSensitive")]
    show_sensitive: bool,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    let template = match (&args.template, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => calamari::fs::read_to_string(path)?,
        (None, None) => unreachable!("clap requires --template or --file"),
    };
    let mode = if args.halt_on_error { ParseMode::Halt } else { ParseMode::Resilient };
    let evaluation = variables.evaluate_with(&template, mode)?;
    if let Some(output) = &evaluation.output {
        use std::io::{IsTerminal as _, Write as _};
        let mut text = if args.show_sensitive { output.clone() } else { ctx.log.mask(output) };
        // Lines the log wrote (variable listings) come first.
        ctx.log.flush();
        let mut stdout = std::io::stdout().lock();
        if stdout.is_terminal() && !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(UsageError::Stdout)?;
    }
    if let Some(error) = evaluation.error {
        return Err(calamari::VariablesError::Template { message: error }.into());
    }
    Ok(Outcome::Success)
}
