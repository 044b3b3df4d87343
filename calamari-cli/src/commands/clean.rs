//! `calamari clean`: apply a retention policy to the deployments in the journal
//! (reference `CleanCommand.cs`). The rules live in `calamari::journal::retention`.

use calamari::Outcome;
use calamari::{CleanRequest, clean_deployments};

use crate::context::Context;

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

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let request = CleanRequest {
        retention_policy_set: args.retention_policy_set.unwrap_or_default(),
        days: args.days,
        releases: args.releases,
        dry_run: args.dry_run,
    };
    request.policy()?;
    let variables = ctx.variables()?;
    clean_deployments(&request, &variables, &ctx.log)?;
    Ok(Outcome::Success)
}
