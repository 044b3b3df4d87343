//! `calamari releases`: a retention policy set's releases from the journal, newest first,
//! and `releases mark-bad|mark-good` (our extension; see `calamari::releases`).

use calamari::{Outcome, ReleaseSelector, journal_of, mark_bad, mark_good, releases, releases_json, releases_table};

use crate::context::Context;

/// Options of `releases`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<MarkCommand>,
    /// The retention policy set whose releases to list.
    #[arg(long = "retentionPolicySet", value_name = "SET")]
    retention_policy_set: Option<String>,
    /// `text` (a table) or `json` (an array of {version, packageId, directory, installedOn,
    /// success, current, rolledBack, bad, badReason, deploymentId}).
    #[arg(long = "format", value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// Which release: by version or by journal entry.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("release").required(true).args(["version", "deployment_id"])))]
struct Which {
    /// The retention policy set.
    #[arg(long = "retentionPolicySet", value_name = "SET")]
    retention_policy_set: String,
    /// The release of this package version (the newest, when several).
    #[arg(long = "version", value_name = "VERSION")]
    version: Option<String>,
    /// The release this journal entry installed.
    #[arg(long = "deploymentId", value_name = "ID")]
    deployment_id: Option<String>,
}

impl Which {
    fn selector(&self) -> ReleaseSelector {
        match (&self.version, &self.deployment_id) {
            (Some(v), _) => ReleaseSelector::Version(v.clone()),
            (None, Some(id)) => ReleaseSelector::DeploymentId(id.clone()),
            (None, None) => unreachable!("clap requires --version or --deploymentId"),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum MarkCommand {
    /// Mark a release bad: a plain rollback skips it.
    MarkBad {
        #[command(flatten)]
        which: Which,
        /// Why (shown by `releases` and when a rollback skips it).
        #[arg(long = "reason", value_name = "TEXT", default_value = "")]
        reason: String,
    },
    /// Lift a release's bad mark.
    MarkGood {
        #[command(flatten)]
        which: Which,
    },
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let variables = ctx.variables()?;
    let journal = journal_of(&variables)?;
    match args.command {
        None => {
            let set = args.retention_policy_set.unwrap_or_default();
            let records = releases(&journal, &set)?;
            if args.format == "json" {
                ctx.log.info(releases_json(&records));
            } else if records.is_empty() {
                ctx.log.info(format!("The journal has no release of '{}'", set.trim()));
            } else {
                ctx.log.info(releases_table(&records));
            }
        }
        Some(MarkCommand::MarkBad { which, reason }) => {
            let record = mark_bad(&journal, &which.retention_policy_set, &which.selector(), &reason)?;
            ctx.log.info(format!(
                "Marked {} {} ({}) bad: a plain rollback skips it",
                record.package_id, record.version, record.directory
            ));
        }
        Some(MarkCommand::MarkGood { which }) => {
            let (record, was) = mark_good(&journal, &which.retention_policy_set, &which.selector())?;
            ctx.log.info(if was {
                format!("{} {} ({}) is no longer marked bad", record.package_id, record.version, record.directory)
            } else {
                format!("{} {} ({}) was not marked bad", record.package_id, record.version, record.directory)
            });
        }
    }
    Ok(Outcome::Success)
}
