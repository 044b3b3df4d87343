//! What every host's run shares: the request, the password, the bundle, the prepared
//! command, where output and events go.

use super::bundle::BundleSource;
use super::command::PreparedCommand;
use super::events::Events;
use super::ssh::SshOptions;
use super::{FleetOutput, FleetRequest};

/// What every host's run shares.
pub(crate) struct HostContext<'a> {
    pub(crate) request: &'a FleetRequest,
    pub(crate) password: Option<&'a str>,
    pub(crate) bundle: &'a BundleSource,
    pub(crate) ssh: SshOptions,
    pub(crate) output: &'a FleetOutput,
    pub(crate) events: &'a Events,
    /// The command's arguments, its packages hashed once for all hosts.
    pub(crate) command: &'a PreparedCommand,
}
