//! The status-code table of DESIGN.md as one function: may a caller retry this code?

use tonic::Code;

/// What a caller may do after a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryClass {
    /// Permanent for this request: fix the request or the configuration.
    Never,
    /// Transient (UNAVAILABLE, RESOURCE_EXHAUSTED): retry with backoff.
    WithBackoff,
    /// The deadline passed: retry only if the call is idempotent.
    IfIdempotent,
    /// The caller's own credentials failed: retry only after re-authenticating.
    AfterReauthentication,
}

/// Classifies a status code by the suite's one table.
///
/// | code | class |
/// |---|---|
/// | UNAVAILABLE, RESOURCE_EXHAUSTED | [`RetryClass::WithBackoff`] |
/// | DEADLINE_EXCEEDED | [`RetryClass::IfIdempotent`] |
/// | UNAUTHENTICATED | [`RetryClass::AfterReauthentication`] |
/// | everything else (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, PERMISSION_DENIED, UNIMPLEMENTED, ABORTED, INTERNAL, ...) | [`RetryClass::Never`] |
pub fn classify(code: Code) -> RetryClass {
    match code {
        Code::Unavailable | Code::ResourceExhausted => RetryClass::WithBackoff,
        Code::DeadlineExceeded => RetryClass::IfIdempotent,
        Code::Unauthenticated => RetryClass::AfterReauthentication,
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => RetryClass::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows() {
        let rows = [
            (Code::InvalidArgument, RetryClass::Never),
            (Code::NotFound, RetryClass::Never),
            (Code::AlreadyExists, RetryClass::Never),
            (Code::FailedPrecondition, RetryClass::Never),
            (Code::PermissionDenied, RetryClass::Never),
            (Code::Unauthenticated, RetryClass::AfterReauthentication),
            (Code::Unavailable, RetryClass::WithBackoff),
            (Code::ResourceExhausted, RetryClass::WithBackoff),
            (Code::DeadlineExceeded, RetryClass::IfIdempotent),
            (Code::Unimplemented, RetryClass::Never),
        ];
        for (code, class) in rows {
            assert_eq!(classify(code), class, "{code:?}");
        }
    }
}
