//! The crate-level [`Error`]: one variant per module error, plus the exit code each maps to.
//!
//! Exit codes follow the reference (`ExitStatus.cs`): 1 for an expected/user error (the
//! reference's `CommandException`), 100 for an unexpected failure, 101 for a recursive
//! variable definition. A script's own exit code is not an error: commands return it as
//! their `Ok` value.

/// Exit code for a user error: bad option, bad input file, wrong password.
pub const EXIT_USER_ERROR: i32 = 1;
/// Exit code for an unexpected failure (I/O errors, bugs).
pub const EXIT_UNEXPECTED: i32 = 100;
/// Exit code for a recursive variable definition (`A -> B -> A`).
pub const EXIT_RECURSIVE_DEFINITION: i32 = 101;

/// Any failure of a Calamari operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed; the message names the path.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// Loading or evaluating variables failed.
    #[error(transparent)]
    Variables(#[from] crate::variables::Error),
    /// Reading or extracting a package failed.
    #[error(transparent)]
    Package(#[from] crate::package::Error),
    /// Substituting variables into files failed.
    #[error(transparent)]
    Substitution(#[from] crate::substitution::Error),
    /// Structured configuration variable replacement failed.
    #[error(transparent)]
    Structured(#[from] crate::structured::Error),
    /// Running a script failed.
    #[error(transparent)]
    Script(#[from] crate::script::Error),
    /// The deployment journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] crate::journal::Error),
    /// Installing, checking or pruning a versioned Calamari install failed.
    #[error(transparent)]
    SelfInstall(#[from] crate::self_install::Error),
    /// A user error with its message (the reference's `CommandException`).
    #[error("{0}")]
    Command(String),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds a user error (exit code 1) from a message.
    pub fn command(message: impl Into<String>) -> Self {
        Error::Command(message.into())
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io(_) => EXIT_UNEXPECTED,
            Error::Variables(e) => e.exit_code(),
            Error::Package(e) => e.exit_code(),
            Error::Substitution(e) => e.exit_code(),
            Error::Structured(e) => e.exit_code(),
            Error::Script(e) => e.exit_code(),
            Error::Journal(e) => e.exit_code(),
            Error::SelfInstall(e) => e.exit_code(),
            Error::Command(_) => EXIT_USER_ERROR,
        }
    }
}
