//! Machine-readable reasons on error statuses: an `openshell-reason` metadata entry
//! beside the code, so a caller can tell one FAILED_PRECONDITION or INVALID_ARGUMENT
//! from another without reading its (human, changeable) message.

use tonic::Status;
use tonic::metadata::MetadataValue;

/// The metadata key.
pub const KEY: &str = "openshell-reason";

/// A token-exchange credential was resolved without the caller's subject token.
pub const SUBJECT_TOKEN_REQUIRED: &str = "SUBJECT_TOKEN_REQUIRED";

/// `status` carrying `reason`.
pub fn with_reason(mut status: Status, reason: &'static str) -> Status {
    status
        .metadata_mut()
        .insert(KEY, MetadataValue::from_static(reason));
    status
}

/// The reason `status` carries, if any.
pub fn reason_of(status: &Status) -> Option<&str> {
    status.metadata().get(KEY)?.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_rides_along_and_reads_back() {
        let status = with_reason(Status::invalid_argument("x"), SUBJECT_TOKEN_REQUIRED);
        assert_eq!(reason_of(&status), Some(SUBJECT_TOKEN_REQUIRED));
        assert_eq!(reason_of(&Status::invalid_argument("x")), None);
    }
}
