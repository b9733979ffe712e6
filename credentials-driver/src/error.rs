//! The credentials domain's errors, mapped to gRPC codes in one place
//! (`service::status`). Messages name the credential, never a secret or an IdP body.

/// What went wrong resolving a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message names the field.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The request field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No credential with this name is configured.
    #[error("no credential named {0:?} is configured")]
    NotFound(String),
    /// The credential's configuration cannot work (an operator must fix it).
    #[error("credential {credential:?} is misconfigured: {reason}")]
    Misconfigured {
        /// The credential.
        credential: String,
        /// What is wrong.
        reason: String,
    },
    /// A token-exchange credential was asked for without a subject token.
    #[error("subject_token: required: credential {0:?} is a token exchange of the caller's token")]
    SubjectTokenRequired(String),
    /// The caller's subject token has already expired.
    #[error("the subject token for credential {0:?} has expired")]
    SubjectExpired(String),
    /// The identity provider gave no token.
    #[error("credential {credential:?}: {error}")]
    Idp {
        /// The credential.
        credential: String,
        /// Why, classified.
        error: crate::idp::IdpError,
    },
}
