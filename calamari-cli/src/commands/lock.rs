//! `calamari lock acquire|status|release`: operator locks on a retention policy set (our
//! extension; see `calamari::operator_lock`).

use calamari::operator_lock;
use calamari::{Outcome, resolve_home};

use crate::context::Context;

/// Options of `lock`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: LockCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LockCommand {
    /// Lock a set: deploy-package and rollback to it exit 1 until it is released.
    Acquire {
        /// The retention policy set to lock (OctopusRetentionPolicySet of its deployments).
        #[arg(long = "retentionPolicySet", value_name = "SET")]
        retention_policy_set: String,
        /// Why: shown to whoever finds the set locked.
        #[arg(long = "message", value_name = "TEXT")]
        message: String,
        /// Who holds it [default: user@host of this process]
        #[arg(long = "holder", value_name = "NAME")]
        holder: Option<String>,
    },
    /// Show the lock of a set, or every lock.
    Status {
        /// The set; every lock when absent.
        #[arg(long = "retentionPolicySet", value_name = "SET")]
        retention_policy_set: Option<String>,
        /// `text` or `json` (an array of {retentionPolicySet, holder, message, since}).
        #[arg(long = "format", value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Lift a set's lock.
    Release {
        /// The retention policy set to unlock.
        #[arg(long = "retentionPolicySet", value_name = "SET")]
        retention_policy_set: String,
    },
}

pub(crate) fn exec(args: Args, ctx: &Context) -> calamari::Result<Outcome> {
    let home = resolve_home(None, &ctx.environment).map_err(|_| operator_lock::Error::NoHome)?;
    match args.command {
        LockCommand::Acquire { retention_policy_set, message, holder } => {
            let holder = holder.unwrap_or_else(operator_lock::default_holder);
            let lock = operator_lock::acquire(&home, &retention_policy_set, &message, &holder)?;
            ctx.log.info(format!(
                "Locked '{}' for {} at {}: {}",
                lock.retention_policy_set, lock.holder, lock.since, lock.message
            ));
        }
        LockCommand::Status { retention_policy_set, format } => {
            let locks = match &retention_policy_set {
                Some(set) => operator_lock::read(&home, set)?.into_iter().collect(),
                None => operator_lock::all(&home)?,
            };
            if format == "json" {
                ctx.log.info(operator_lock::to_json(&locks));
            } else if locks.is_empty() {
                ctx.log.info(match &retention_policy_set {
                    Some(set) => format!("'{set}' is not locked"),
                    None => "No retention policy set is locked".to_string(),
                });
            } else {
                for lock in locks {
                    ctx.log.info(lock.to_string());
                }
            }
        }
        LockCommand::Release { retention_policy_set } => match operator_lock::release(&home, &retention_policy_set)? {
            Some(lock) => ctx.log.info(format!("Released the lock on {lock}")),
            None => ctx.log.info(format!("'{}' was not locked", retention_policy_set.trim())),
        },
    }
    Ok(Outcome::Success)
}
