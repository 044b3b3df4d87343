//! The crate-level [`Error`], the [`ErrorKind`] each error belongs to, and the one function
//! that turns a command's result into a process exit code: [`exit_code`].
//!
//! Every module has its own `thiserror` enum whose variants carry their data (the path, the
//! variable, the archive entry, the stage and script, the lock and how long we waited) and
//! keep their cause as a `source`. No module decides an exit code: this file does, by
//! matching on the errors, so the policy can be read in one place: [`exit_code`]'s table,
//! the one copy (the crate tour and the CLI link to it; `calamari --help` prints it).

use crate::{
    config_transform, conventions, delta, feeds, isolation, journal, lock, package, package_retention, script,
    self_install, structured, substitution, variables,
};

pub use crate::outcome::{Outcome, UsageError, chain};

/// What kind of failure an [`Error`] is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input, the options, the variables or the environment a user controls are wrong,
    /// or a deployment step failed: exit 1.
    User,
    /// A failure nobody could foresee (I/O, a bug): exit 100. A panic exits 100 too.
    Unexpected,
    /// A recursive variable definition (`A -> B -> A`): exit 101.
    RecursiveDefinition,
    /// Calamari received this signal while a script ran or a package was extracted, and
    /// stopped it (the script's group, the extraction and its partial directory): exit
    /// 128 + signal.
    Cancelled(i32),
}

impl ErrorKind {
    /// The process exit code of this kind of failure.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::User => 1,
            ErrorKind::Unexpected => 100,
            ErrorKind::RecursiveDefinition => 101,
            ErrorKind::Cancelled(signal) => 128 + signal,
        }
    }
}

/// The process exit code for a command's result: the whole exit-code policy.
///
/// | exit code | when |
/// |---|---|
/// | 0 | success ([`Outcome::Success`]) |
/// | 1 | [`ErrorKind::User`]: a bad option, input file, password or variable; a failed step; a lock held too long by another process (the reference's `CommandException`) |
/// | 100 | [`ErrorKind::Unexpected`]: an I/O failure nobody could foresee, a bug, a panic |
/// | 101 | [`ErrorKind::RecursiveDefinition`]: a variable whose value refers back to itself |
/// | 3 | [`Outcome::OutOfDate`]: `check-install` found the version missing or incomplete |
/// | N | [`Outcome::ScriptExited`]: `run-script` passes the script's own exit code through |
/// | 128+S | [`ErrorKind::Cancelled`]: Calamari was stopped by signal S (SIGINT 130, SIGTERM 143) while a script ran, a package was extracted or it waited for the script isolation mutex |
pub fn exit_code(result: &Result<Outcome>) -> i32 {
    match result {
        Ok(Outcome::Success) => 0,
        Ok(Outcome::OutOfDate) => 3,
        Ok(Outcome::ScriptExited(code)) => *code,
        Err(e) => e.kind().exit_code(),
    }
}

/// Any failure of a Calamari operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed; the message names the path.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// Loading or evaluating variables failed.
    #[error(transparent)]
    Variables(#[from] variables::Error),
    /// Reading or extracting a package failed.
    #[error(transparent)]
    Package(#[from] package::Error),
    /// Substituting variables into files failed.
    #[error(transparent)]
    Substitution(#[from] substitution::Error),
    /// Structured configuration variable replacement failed.
    #[error(transparent)]
    Structured(#[from] structured::Error),
    /// An XML configuration transform or .NET configuration variables failed.
    #[error(transparent)]
    ConfigTransform(#[from] config_transform::Error),
    /// Running a script failed.
    #[error(transparent)]
    Script(#[from] script::Error),
    /// The deployment journal could not be read or written, or retention could not run.
    #[error(transparent)]
    Journal(#[from] journal::Error),
    /// Installing, checking or pruning a versioned Calamari install failed.
    #[error(transparent)]
    SelfInstall(#[from] self_install::Error),
    /// A convention of deploy-package or transfer-package failed.
    #[error(transparent)]
    Deployment(#[from] conventions::Error),
    /// A release step (current link, shared paths, health check) or `rollback` failed.
    #[error(transparent)]
    Release(#[from] conventions::release::Error),
    /// A command's options are wrong.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// Making or applying a delta failed.
    #[error(transparent)]
    Delta(#[from] delta::Error),
    /// The script isolation options are wrong, or the isolation mutex could not be had.
    #[error(transparent)]
    Isolation(#[from] isolation::Error),
    /// The package retention journal could not be read or written, or a retention variable is bad.
    #[error(transparent)]
    PackageRetention(#[from] package_retention::Error),
    /// `download-package` could not fetch a package from its feed (boxed: its variants
    /// carry the feed, the package and the URL).
    #[error(transparent)]
    Feed(Box<feeds::Error>),
    /// `calamari fleet` could not start, or some hosts failed.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::Error),
    /// The nginx feature could not build, test, install or reload the site's configuration.
    #[error(transparent)]
    Nginx(#[from] crate::nginx::Error),
    /// An operator lock holds the set, or could not be taken, read or lifted.
    #[error(transparent)]
    OperatorLock(#[from] crate::operator_lock::Error),
}

impl From<feeds::Error> for Error {
    fn from(e: feeds::Error) -> Self {
        Error::Feed(Box::new(e))
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is (and so its exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io(_) => ErrorKind::Unexpected,
            Error::Variables(e) => variables_kind(e),
            Error::Package(e) => package_kind(e),
            Error::Substitution(e) => substitution_kind(e),
            Error::Structured(e) => structured_kind(e),
            Error::ConfigTransform(e) => config_transform_kind(e),
            Error::Script(e) => script_kind(e),
            Error::Journal(e) => journal_kind(e),
            Error::SelfInstall(e) => self_install_kind(e),
            Error::Deployment(e) => deployment_kind(e),
            Error::Release(e) => release_kind(e),
            Error::Usage(_) => ErrorKind::User,
            Error::Delta(e) => delta_kind(e),
            Error::Isolation(e) => isolation_kind(e),
            Error::PackageRetention(e) => package_retention_kind(e),
            Error::Feed(e) => feed_kind(e),
            Error::Fleet(e) => fleet_kind(e),
            Error::Nginx(e) => nginx_kind(e),
            Error::OperatorLock(crate::operator_lock::Error::Io(_)) => ErrorKind::Unexpected,
            Error::OperatorLock(_) => ErrorKind::User,
        }
    }

    /// The message and every cause that it does not already include, joined with ": ",
    /// as `OctopusLastError` and the CLI show it.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

fn fleet_kind(e: &crate::fleet::Error) -> ErrorKind {
    use crate::fleet::Error as E;
    match e {
        E::Io(_) | E::Start(_) => ErrorKind::Unexpected,
        E::Variables(e) => variables_kind(e),
        E::Bundle(e) => self_install_kind(e),
        // Failed hosts are failed steps; bad options, hosts and files named are the user's.
        E::Usage(_)
        | E::HostsFile { .. }
        | E::BadHost { .. }
        | E::HostsFailed { .. }
        | E::Package { .. }
        | E::RetryReportUnreadable { .. }
        | E::RetryReportInvalid { .. }
        | E::EventsFile { .. }
        | E::BadBundle { .. } => ErrorKind::User,
    }
}

fn nginx_kind(e: &crate::nginx::Error) -> ErrorKind {
    use crate::nginx::Error as E;
    match e {
        E::Io(_) | E::Spawn { .. } => ErrorKind::Unexpected,
        E::Variables(e) => variables_kind(e),
        // Bad variables, a missing nginx or sudo rule, a configuration nginx rejects.
        _ => ErrorKind::User,
    }
}

fn variables_kind(e: &variables::Error) -> ErrorKind {
    match e {
        variables::Error::RecursiveDefinition { .. } => ErrorKind::RecursiveDefinition,
        // A template past its size or work limit, or a limit variable that is no number.
        variables::Error::LimitExceeded { .. } | variables::Error::InvalidLimit { .. } => ErrorKind::User,
        _ => ErrorKind::User,
    }
}

fn lock_timeout_kind(_: &lock::LockTimeout) -> ErrorKind {
    // Another process held the lock: the step failed and can be retried; not a bug.
    ErrorKind::User
}

fn isolation_kind(e: &isolation::Error) -> ErrorKind {
    use isolation::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        E::Cancelled { signal, .. } => ErrorKind::Cancelled(*signal),
        // Another process held the mutex past the timeout: like any lock timeout, exit 1.
        E::UnknownLevel { .. }
        | E::BadTimeout { .. }
        | E::BadMutexName { .. }
        | E::Incomplete { .. }
        | E::NoTentacleHome
        | E::Timeout { .. } => ErrorKind::User,
    }
}

fn journal_kind(e: &journal::Error) -> ErrorKind {
    match e {
        journal::Error::Io(_) => ErrorKind::Unexpected,
        journal::Error::Variables(e) => variables_kind(e),
        journal::Error::LockTimeout(t) => lock_timeout_kind(t),
        _ => ErrorKind::User,
    }
}

fn package_retention_kind(e: &package_retention::Error) -> ErrorKind {
    match e {
        package_retention::Error::Io(_) => ErrorKind::Unexpected,
        package_retention::Error::Variables(e) => variables_kind(e),
        package_retention::Error::LockTimeout(t) => lock_timeout_kind(t),
        package_retention::Error::InvalidVariable { .. } | package_retention::Error::NoJournalPath => ErrorKind::User,
    }
}

fn self_install_kind(e: &self_install::Error) -> ErrorKind {
    use self_install::Error as E;
    match e {
        E::Io(_) | E::Damaged { .. } | E::SourceVanished { .. } => ErrorKind::Unexpected,
        E::LockTimeout(t) => lock_timeout_kind(t),
        E::InvalidVersion { .. }
        | E::InvalidSha256(_)
        | E::Bundle { .. }
        | E::BundleHash { .. }
        | E::NoHome
        | E::BadFileName { .. }
        | E::NotInstalled { .. }
        | E::ChangedWhileBundling { .. }
        | E::NotCalamari { .. } => ErrorKind::User,
    }
}

fn deployment_kind(e: &conventions::Error) -> ErrorKind {
    use conventions::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        _ => ErrorKind::User,
    }
}

fn release_kind(e: &conventions::release::Error) -> ErrorKind {
    use conventions::release::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        E::Journal(e) => journal_kind(e),
        E::Script(e) => script_kind(e),
        E::Variables(e) => variables_kind(e),
        E::LockTimeout(t) => lock_timeout_kind(t),
        E::LinkNotAbsolute(_)
        | E::NotALink { .. }
        | E::SharedPathsWithoutLink
        | E::SharedPathEscapes(_)
        | E::SharedPathThroughLink(_)
        | E::TwoHealthChecks
        | E::HealthCheckUrl { .. }
        | E::InvalidSeconds { .. }
        | E::HealthCheckFailed { .. }
        | E::NoRetentionPolicySet
        | E::NoJournal
        | E::NoCurrentLink(_)
        | E::NothingToRollBackTo { .. }
        | E::UnknownDeployment { .. }
        | E::CannotRollBackTo { .. }
        | E::RollbackScriptFailed { .. }
        | E::MarksFile { .. }
        | E::NoSuchRelease { .. } => ErrorKind::User,
    }
}

fn package_kind(e: &package::Error) -> ErrorKind {
    use package::Error as E;
    match e {
        E::Io(_) | E::ThreadPanicked { .. } => ErrorKind::Unexpected,
        E::Variable { source, .. } => variables_kind(source),
        E::Cancelled { signal, .. } => ErrorKind::Cancelled(*signal),
        E::DestinationNotWritable { .. }
        | E::InvalidVariable { .. }
        | E::MissingExtension { .. }
        | E::UnsupportedExtension { .. }
        | E::UnsupportedNameExtension { .. }
        | E::NotAPackageFileName { .. }
        | E::NoIdentityInFileName { .. }
        | E::InvalidNuspecVersion { .. }
        | E::DestinationExists { .. }
        | E::DestinationCreatedMeanwhile { .. }
        | E::DestinationHasNoName { .. }
        | E::NoApplicationDirectory { .. }
        | E::NotEnoughFreeSpace { .. }
        | E::Refused { .. }
        | E::Corrupt { .. }
        | E::Limit { .. }
        | E::HashMismatch { .. } => ErrorKind::User,
    }
}

fn delta_kind(e: &delta::Error) -> ErrorKind {
    use delta::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        E::MissingOption { .. }
        | E::BasisNotFound(_)
        | E::DeltaNotFound(_)
        | E::InputNotFound { .. }
        | E::BadNewFileName { .. }
        | E::BasisHashMismatch { .. }
        | E::InvalidChunkSize { .. }
        | E::BadMagic { .. }
        | E::NewerVersion { .. }
        | E::UnsupportedHash { .. }
        | E::UnsupportedRollingChecksum { .. }
        | E::Corrupt { .. }
        | E::Truncated { .. }
        | E::CopyBeyondBasis { .. }
        | E::BasisChanged(_)
        | E::VerificationFailed { .. } => ErrorKind::User,
    }
}

fn substitution_kind(e: &substitution::Error) -> ErrorKind {
    use substitution::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        E::Variables(e) | E::Limit { source: e, .. } => variables_kind(e),
        E::Pattern { .. } | E::TemplateSyntax { .. } | E::Template { .. } => ErrorKind::User,
    }
}

fn config_transform_kind(e: &config_transform::Error) -> ErrorKind {
    use config_transform::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        E::Variables(e) => variables_kind(e),
        // A file that is not XML is the package's (the user's) problem: exit 1, naming it.
        E::BadDefinition { .. } | E::TransformNotXml { .. } | E::ConfigNotXml { .. } | E::TransformFailed { .. } => {
            ErrorKind::User
        }
    }
}

fn structured_kind(e: &structured::Error) -> ErrorKind {
    use structured::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        E::Variables(e) => variables_kind(e),
        // The reference throws a plain `Exception` for a file that does not parse (exit
        // 100); it is the user's file, so their mistake here: exit 1, naming the file.
        E::Unparseable { .. } | E::Syntax { .. } | E::Pattern(_) => ErrorKind::User,
    }
}

fn script_kind(e: &script::Error) -> ErrorKind {
    use script::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        E::Variables(e) => variables_kind(e),
        E::Cancelled { signal, .. } => ErrorKind::Cancelled(*signal),
        E::ScriptNotFound { .. }
        | E::CurrentDirectory { .. }
        | E::UnknownSyntax { .. }
        | E::UnknownSyntaxName { .. }
        | E::NoScriptToRun
        | E::InterpreterMissing { .. }
        | E::ScriptFunctions { .. }
        | E::Start { .. }
        | E::Timeout { .. } => ErrorKind::User,
    }
}

fn feed_kind(e: &feeds::Error) -> ErrorKind {
    use feeds::Error as E;
    match e {
        E::Io(_) => ErrorKind::Unexpected,
        // A feed that is down, refuses us or lacks the package fails the step, as a bad
        // option does; the last failure decides for the whole download.
        E::Failed { source, .. } => feed_kind(source),
        E::UnsupportedFeedType { .. }
        | E::Status { .. }
        | E::Network { .. }
        | E::BadResponse { .. }
        | E::NotFound { .. }
        | E::HashMismatch(_)
        | E::CaBundle { .. } => ErrorKind::User,
    }
}

/// The kind of a module's error, decided by the functions above (for the modules' tests).
#[cfg(test)]
pub(crate) trait Classified {
    fn classify(&self) -> ErrorKind;
}

#[cfg(test)]
macro_rules! classified {
    ($($ty:ty => $f:ident),* $(,)?) => {
        $(impl Classified for $ty {
            fn classify(&self) -> ErrorKind {
                $f(self)
            }
        })*
    };
}

#[cfg(test)]
classified!(
    variables::Error => variables_kind,
    package::Error => package_kind,
    substitution::Error => substitution_kind,
    structured::Error => structured_kind,
    script::Error => script_kind,
    journal::Error => journal_kind,
    self_install::Error => self_install_kind,
    conventions::Error => deployment_kind,
    conventions::release::Error => release_kind,
    delta::Error => delta_kind,
    isolation::Error => isolation_kind,
    feeds::Error => feed_kind,
    package_retention::Error => package_retention_kind,
    crate::fleet::Error => fleet_kind,
);

/// The exit code a module's error gives, for the modules' own tests.
#[cfg(test)]
pub(crate) fn code_of(error: &impl Classified) -> i32 {
    error.classify().exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_kinds_map_to_the_agent_contract() {
        assert_eq!(exit_code(&Ok(Outcome::Success)), 0);
        assert_eq!(exit_code(&Ok(Outcome::OutOfDate)), 3);
        assert_eq!(exit_code(&Ok(Outcome::ScriptExited(42))), 42);
        let user = Error::Usage(UsageError::Conflict("x"));
        assert_eq!(exit_code(&Err(user)), 1);
        let recursive = Error::Variables(variables::Error::RecursiveDefinition { message: "A".into() });
        assert_eq!(exit_code(&Err(recursive)), 101);
        assert_eq!(ErrorKind::Cancelled(15).exit_code(), 143);
    }

    #[test]
    fn a_lock_timeout_is_the_same_kind_in_the_journal_and_the_self_install() {
        let timeout =
            || lock::LockTimeout { purpose: "lock", path: "/x.lock".into(), waited: std::time::Duration::from_secs(1) };
        let journal = Error::Journal(journal::Error::LockTimeout(timeout()));
        let install = Error::SelfInstall(self_install::Error::LockTimeout(timeout()));
        assert_eq!(journal.kind(), ErrorKind::User);
        assert_eq!(install.kind(), journal.kind());
    }

    #[test]
    fn release_mistakes_are_user_errors_and_io_is_unexpected() {
        use conventions::release::Error as R;
        let user = [
            R::NotALink { path: "/srv/current".into(), what: "a directory" },
            R::SharedPathEscapes("../x".into()),
            R::HealthCheckFailed {
                check: "GET http://x/".into(),
                timeout: std::time::Duration::from_secs(1),
                attempts: 2,
                last: "HTTP 500".into(),
            },
            R::NothingToRollBackTo { set: "S".into(), current: "/a".into() },
            R::LockTimeout(lock::LockTimeout {
                purpose: "release lock",
                path: "/x.lock".into(),
                waited: std::time::Duration::from_secs(1),
            }),
        ];
        for e in user {
            assert_eq!(Error::from(e).kind(), ErrorKind::User);
        }
        let io = crate::fs::IoError { op: "write", path: "/x".into(), source: std::io::Error::other("disk") };
        assert_eq!(Error::from(R::Io(io)).kind(), ErrorKind::Unexpected);
    }

    #[test]
    fn chain_adds_causes_the_message_does_not_already_hold() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::Usage(UsageError::Stdout(io));
        assert_eq!(e.chain(), "Could not write the result to standard output: disk on fire");
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(chain(&Outer(std::io::Error::other("inner"))), "outer: inner");
    }
}
