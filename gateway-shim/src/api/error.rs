//! The API's errors, named by cause, and the one mapping to gRPC statuses
//! ([`From<ApiError> for Status`](ApiError)), applied at the service edge only.
//! Handlers, the store and the driver clients return typed errors; only here does a
//! cause become a code.

use tonic::{Code, Status};

use crate::drivers::DriverError;
use crate::store::StoreError;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or over a limit; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The object does not exist for this caller (also: it is another user's).
    #[error("{0}")]
    NotFound(String),
    /// A create found the name taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object changed since the caller read it.
    #[error("{0}")]
    Conflict(String),
    /// The request cannot be carried out in the current state (something refers to
    /// the object, a driver is not configured, ...).
    #[error("{0}")]
    Precondition(String),
    /// The caller may not do this (a role, the credential policy).
    #[error("{0}")]
    Denied(String),
    /// The caller's credentials are no longer good (a stopped or deleted sandbox).
    #[error("{0}")]
    Unauthenticated(String),
    /// A per-owner limit is reached.
    #[error("{0}")]
    LimitReached(String),
    /// A driver refused or could not be reached.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The gateway's store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a dead task.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// INVALID_ARGUMENT: `message` should start with the field.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// FAILED_PRECONDITION.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::Precondition(message.into())
    }

    /// PERMISSION_DENIED.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }

    /// ALREADY_EXISTS.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::AlreadyExists(message.into())
    }

    /// ABORTED.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    /// UNAUTHENTICATED.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::Unauthenticated(message.into())
    }

    /// RESOURCE_EXHAUSTED.
    pub fn limit(message: impl Into<String>) -> Self {
        Self::LimitReached(message.into())
    }

    /// INTERNAL.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// The code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::Invalid(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Conflict(_) => Code::Aborted,
            Self::Precondition(_) => Code::FailedPrecondition,
            Self::Denied(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::LimitReached(_) => Code::ResourceExhausted,
            Self::Driver(error) => error.code(),
            Self::Store(error) => match error {
                StoreError::AlreadyExists { .. } => Code::AlreadyExists,
                StoreError::NotFound { .. } | StoreError::MissingReference { .. } => Code::NotFound,
                StoreError::Conflict { .. } => Code::Aborted,
                StoreError::Referenced { .. } => Code::FailedPrecondition,
                StoreError::BadUrl(_) => Code::InvalidArgument,
                StoreError::Database(_) | StoreError::CorruptLabels { .. } => Code::Unavailable,
            },
            Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        match &error {
            // The database's own words stay in the log.
            ApiError::Store(StoreError::Database(_) | StoreError::CorruptLabels { .. }) => {
                tracing::error!(%error, "store failure");
                Status::new(code, "the gateway's store is unavailable; try again")
            }
            ApiError::Internal(_) => {
                tracing::error!(%error, "internal error");
                Status::new(code, error.to_string())
            }
            ApiError::Driver(driver) => {
                let status = Status::new(code, error.to_string());
                match driver.reason() {
                    Some(reason) => match tonic::metadata::MetadataValue::try_from(reason) {
                        Ok(value) => {
                            let mut status = status;
                            status.metadata_mut().insert(proto::reason::KEY, value);
                            status
                        }
                        Err(_) => status,
                    },
                    None => status,
                }
            }
            _ => Status::new(code, error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_maps_to_its_code() {
        let rows: Vec<(ApiError, Code)> = vec![
            (ApiError::invalid("name: bad"), Code::InvalidArgument),
            (ApiError::not_found("gone"), Code::NotFound),
            (ApiError::AlreadyExists("taken".into()), Code::AlreadyExists),
            (ApiError::Conflict("moved".into()), Code::Aborted),
            (ApiError::precondition("attached"), Code::FailedPrecondition),
            (ApiError::denied("policy"), Code::PermissionDenied),
            (
                ApiError::Unauthenticated("stopped".into()),
                Code::Unauthenticated,
            ),
            (
                ApiError::LimitReached("100".into()),
                Code::ResourceExhausted,
            ),
            (ApiError::Internal("bug".into()), Code::Internal),
            (
                ApiError::Driver(DriverError::Unavailable {
                    driver: "compute driver",
                }),
                Code::Unavailable,
            ),
            (
                ApiError::Driver(DriverError::Refused {
                    driver: "compute driver",
                    code: Code::InvalidArgument,
                    message: "sandbox.spec.command: required".into(),
                    reason: None,
                }),
                Code::InvalidArgument,
            ),
            (
                ApiError::Store(StoreError::Conflict {
                    kind: "sandbox",
                    key: "k".into(),
                    expected: 1,
                }),
                Code::Aborted,
            ),
            (
                ApiError::Store(StoreError::AlreadyExists {
                    kind: "sandbox",
                    key: "k".into(),
                }),
                Code::AlreadyExists,
            ),
            (
                ApiError::Store(StoreError::NotFound {
                    kind: "sandbox",
                    key: "k".into(),
                }),
                Code::NotFound,
            ),
            (
                ApiError::Store(StoreError::MissingReference {
                    kind: "provider",
                    key: "p".into(),
                }),
                Code::NotFound,
            ),
            (
                ApiError::Store(StoreError::BadUrl("x".into())),
                Code::InvalidArgument,
            ),
            (
                ApiError::Store(StoreError::Database(sqlx::Error::PoolTimedOut)),
                Code::Unavailable,
            ),
        ];
        for (error, code) in rows {
            let shown = format!("{error:?}");
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{shown}");
        }
    }

    #[test]
    fn store_failures_hide_the_database_s_words_and_driver_reasons_ride_along() {
        let status = Status::from(ApiError::Store(StoreError::Database(
            sqlx::Error::Protocol("secret detail".into()),
        )));
        assert!(!status.message().contains("secret detail"), "{status:?}");
        let status = Status::from(ApiError::Driver(DriverError::Refused {
            driver: "credentials driver",
            code: Code::InvalidArgument,
            message: "subject_token: required".into(),
            reason: Some(proto::reason::SUBJECT_TOKEN_REQUIRED.into()),
        }));
        assert_eq!(
            proto::reason::reason_of(&status),
            Some(proto::reason::SUBJECT_TOKEN_REQUIRED)
        );
        assert_eq!(
            status.message(),
            "credentials driver: subject_token: required"
        );
        let unavailable = Status::from(ApiError::Driver(DriverError::Unavailable {
            driver: "compute driver",
        }));
        assert!(unavailable.message().contains("compute driver"));
    }
}
