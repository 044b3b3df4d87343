//! `calamari clean`: apply a retention policy to the deployments in the journal
//! (reference `CleanCommand.cs`). The rules live in `calamari::journal::retention`.

use calamari::journal::{self, DeploymentJournal, RetentionPolicy};

use crate::cli::Context;

/// Options of `clean`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The retention policy set whose deployments are considered (exact match).
    #[arg(long = "retentionPolicySet", value_name = "SET")]
    retention_policy_set: Option<String>,
    /// Keep deployments from the last N days (takes precedence over --releases).
    #[arg(long = "days", value_name = "N", allow_negative_numbers = true)]
    days: Option<i64>,
    /// Keep this deployment and the previous N successful deployments.
    #[arg(long = "releases", value_name = "N", allow_negative_numbers = true)]
    releases: Option<i64>,
    /// List what would be deleted, and delete nothing.
    #[arg(
        long = "dryRun",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    dry_run: bool,
}

fn clamp(n: Option<i64>) -> u32 {
    u32::try_from(n.unwrap_or(0).max(0)).unwrap_or(u32::MAX)
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<i32> {
    let (days, releases) = (clamp(args.days), clamp(args.releases));
    if days == 0 && releases == 0 {
        return Err(calamari::Error::command("A value for days to keep or releases to keep must be specified"));
    }
    let set = args.retention_policy_set.unwrap_or_default();
    if set.trim().is_empty() {
        return Err(calamari::Error::command(
            "No retention policy set was specified. Please pass --retentionPolicySet \"Environments-2/projects-161/Step-Package B/Machines-29/<default>\"",
        ));
    }
    let policy = if days > 0 { RetentionPolicy::Days(days) } else { RetentionPolicy::Releases(releases) };
    let variables = ctx.variables()?;
    let Some(journal) = DeploymentJournal::from_variables(&variables)? else {
        ctx.log.warn(
            "The deployment journal location is unknown: neither TentacleJournal nor TentacleHome is set. Did not find any deployments to clean up",
        );
        return Ok(0);
    };
    let journal = journal.with_log(ctx.log.clone());
    let tentacle_home = variables
        .get_raw(&format!("env:{}", calamari::env_vars::TENTACLE_HOME))
        .filter(|h| !h.trim().is_empty())
        .map(std::path::PathBuf::from);
    let summary = journal::retention::clean(
        &journal,
        &set,
        policy,
        args.dry_run,
        journal::retention::now(),
        tentacle_home.as_deref(),
        &ctx.log,
    )?;
    if args.dry_run {
        ctx.log.info(format!(
            "Dry run: {} deployments and {} directories would be removed; nothing was changed.",
            summary.removed_entries.len(),
            summary.removed_directories.len()
        ));
    }
    Ok(0)
}
