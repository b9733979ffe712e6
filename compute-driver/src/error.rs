//! The compute domain's errors. Mapped to gRPC codes in exactly one place
//! (`service::status`), following the suite's status-code table.

use std::path::PathBuf;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a compute request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message names the field and the fix.
    #[error("{0}")]
    InvalidArgument(#[from] crate::validate::InvalidField),
    /// No sandbox with this id (or name).
    #[error("sandbox {0:?} not found")]
    NotFound(String),
    /// A sandbox with this id exists with a different spec.
    #[error(
        "sandbox {0:?} already exists with a different spec; delete it first or use another id"
    )]
    AlreadyExists(String),
    /// A valid request this backend cannot satisfy.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The platform refused this driver (e.g. Kubernetes RBAC): an operator must fix
    /// the driver's permissions.
    #[error("{0}")]
    PermissionDenied(String),
    /// The platform could not be reached or is overloaded: worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// The backend does not do this.
    #[error("{0}")]
    Unimplemented(String),
    /// The caller's deadline passed before the platform answered.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The driver's own storage failed (details are logged, not returned).
    #[error("{action} {path:?}: {source}")]
    Storage {
        /// What the driver was doing.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another driver already manages this state directory.
    #[error(
        "state directory {0:?} is in use by another compute-driver: give each driver its own --state-dir"
    )]
    StateDirInUse(PathBuf),
    /// Starting or signalling a process failed (details are logged, not returned).
    #[error("{action}: {source}")]
    Process {
        /// What the driver was doing.
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A storage error constructor for `map_err`.
    pub(crate) fn storage(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Storage {
            action,
            path,
            source,
        }
    }
}
