//! Scripts: running bash, PowerShell and Python scripts with their bootstraps, streaming
//! output, service messages and output variables (issue 5).

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem call failed.
    #[error(transparent)]
    Io(#[from] crate::fs::IoError),
    /// A user error with its message.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io(_) => crate::error::EXIT_UNEXPECTED,
            Error::Invalid(_) => crate::error::EXIT_USER_ERROR,
        }
    }
}
