//! `calamari rollback --retentionPolicySet=SET [--deploymentId=ID] [--script=FILE]`: point
//! the set's current link (`Calamari.Release.CurrentLink`) back at an earlier release. Our
//! extension; the rules live in `calamari::rollback`.

use std::path::PathBuf;

use calamari::{Outcome, RollbackRequest, rollback};

use crate::context::Context;

/// Options of `rollback`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The retention policy set whose current link is rolled back.
    #[arg(long = "retentionPolicySet", value_name = "SET")]
    retention_policy_set: Option<String>,
    /// The journal entry to make current [default: the release before the current one that
    /// is not marked bad]
    #[arg(long = "deploymentId", value_name = "ID", conflicts_with = "to")]
    deployment_id: Option<String>,
    /// The package version to make current (its newest successful release).
    #[arg(long = "to", value_name = "VERSION")]
    to: Option<String>,
    /// A script (.sh, .py, .ps1) run in the restored directory after the switch, with the
    /// usual helpers; no script runs without it.
    #[arg(long = "script", value_name = "FILE")]
    script: Option<PathBuf>,
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let working_directory = ctx.environment.working_directory()?.to_path_buf();
    let request = RollbackRequest {
        retention_policy_set: args.retention_policy_set.unwrap_or_default(),
        deployment_id: args.deployment_id.filter(|id| !id.trim().is_empty()),
        to_version: args.to.filter(|v| !v.trim().is_empty()),
        script: args.script.map(|s| working_directory.join(s)),
    };
    let mut variables = ctx.variables()?;
    rollback(&request, &mut variables, &ctx.log)?;
    Ok(Outcome::Success)
}
