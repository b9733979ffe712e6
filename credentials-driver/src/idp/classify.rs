//! Token endpoint failures, classified from status and `{error, error_description}`
//! alone (a pure function), following the contracts doc:
//!
//! | answer | class |
//! |---|---|
//! | 401 `invalid_client`/`unauthorized_client`; 400 `unauthorized_client` | the driver's own client is rejected (permanent) |
//! | 400 `invalid_scope`, `invalid_target`, `invalid_client` "Audience not found", other `invalid_request` | misconfigured (permanent) |
//! | exchange: 400 `invalid_request` about the token, `invalid_grant` | the caller's subject token is bad |
//! | 403 `access_denied` | the exchange is refused for this caller |
//! | 429, 5xx, `temporarily_unavailable` | transient (retry with backoff, honour Retry-After) |

use std::time::Duration;

use serde::Deserialize;

/// Why the token endpoint gave no token. Reasons carry the OAuth error code and the
/// HTTP status, never the response body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// The driver's own client credentials were rejected.
    #[error("the identity provider rejected this driver's client ({reason})")]
    ClientRejected {
        /// Status and OAuth error code.
        reason: String,
    },
    /// The request cannot succeed as configured (scope, audience, grant not enabled).
    #[error("the identity provider refused the request as configured ({reason})")]
    Misconfigured {
        /// Status and OAuth error code.
        reason: String,
    },
    /// The caller's subject token is invalid or expired.
    #[error("the subject token was rejected ({reason})")]
    SubjectRejected {
        /// Status and OAuth error code.
        reason: String,
    },
    /// The exchange is not allowed for this caller.
    #[error("the identity provider denied the exchange ({reason})")]
    AccessDenied {
        /// Status and OAuth error code.
        reason: String,
    },
    /// The endpoint is overloaded or failing; try again later.
    #[error("the identity provider is unavailable ({reason})")]
    Transient {
        /// Status and OAuth error code.
        reason: String,
        /// The endpoint's Retry-After, if any.
        retry_after: Option<Duration>,
    },
    /// The endpoint could not be reached.
    #[error("the identity provider is unreachable ({reason})")]
    Unreachable {
        /// Timeout, connection failure, ...
        reason: String,
    },
    /// The endpoint answered something that is not a token response.
    #[error("the identity provider sent an unusable answer ({reason})")]
    BadResponse {
        /// What was wrong.
        reason: String,
    },
}

impl IdpError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Transient { .. } | Self::Unreachable { .. } | Self::BadResponse { .. }
        )
    }
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Classifies a non-2xx token endpoint answer.
pub fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    exchange: bool,
) -> IdpError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.as_str();
    let description = parsed.error_description.to_ascii_lowercase();
    let reason = if code.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {code}")
    };
    if status == 429 || status >= 500 || code == "temporarily_unavailable" {
        return IdpError::Transient {
            reason,
            retry_after,
        };
    }
    match (status, code) {
        (401, "invalid_client" | "unauthorized_client") | (400, "unauthorized_client")
            if !exchange || status == 401 =>
        {
            IdpError::ClientRejected { reason }
        }
        (403, _) | (_, "access_denied") => IdpError::AccessDenied { reason },
        (_, "invalid_grant") if exchange => IdpError::SubjectRejected { reason },
        (_, "invalid_request")
            if exchange
                && (description.contains("invalid token") || description.contains("expired")) =>
        {
            IdpError::SubjectRejected { reason }
        }
        (401, _) => IdpError::ClientRejected { reason },
        _ => IdpError::Misconfigured { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(error: &str, description: &str) -> Vec<u8> {
        format!(r#"{{"error":"{error}","error_description":"{description}"}}"#).into_bytes()
    }

    #[test]
    fn the_table() {
        use IdpError as E;
        /// status, OAuth error, description, is an exchange, expected class.
        type Case = (u16, &'static str, &'static str, bool, fn(&IdpError) -> bool);
        let cases: [Case; 11] = [
            (401, "invalid_client", "", false, |e| {
                matches!(e, E::ClientRejected { .. })
            }),
            (401, "unauthorized_client", "", false, |e| {
                matches!(e, E::ClientRejected { .. })
            }),
            (
                400,
                "unauthorized_client",
                "Client not enabled",
                false,
                |e| matches!(e, E::ClientRejected { .. }),
            ),
            (400, "invalid_scope", "Invalid scopes", false, |e| {
                matches!(e, E::Misconfigured { .. })
            }),
            (400, "invalid_client", "Audience not found", true, |e| {
                matches!(e, E::Misconfigured { .. })
            }),
            (
                400,
                "unauthorized_client",
                "Standard token exchange is not enabled",
                true,
                |e| matches!(e, E::Misconfigured { .. }),
            ),
            (400, "invalid_request", "Invalid token", true, |e| {
                matches!(e, E::SubjectRejected { .. })
            }),
            (
                400,
                "invalid_request",
                "Requested audience not available: x",
                true,
                |e| matches!(e, E::Misconfigured { .. }),
            ),
            (
                403,
                "access_denied",
                "Client is not within the token audience",
                true,
                |e| matches!(e, E::AccessDenied { .. }),
            ),
            (
                503,
                "temporarily_unavailable",
                "",
                false,
                IdpError::is_transient,
            ),
            (429, "", "", false, IdpError::is_transient),
        ];
        for (status, code, description, exchange, check) in cases {
            let error = classify(status, &body(code, description), None, exchange);
            assert!(check(&error), "{status} {code} {description}: {error:?}");
        }
    }

    #[test]
    fn retry_after_is_kept_and_bodies_are_never_echoed() {
        let error = classify(
            429,
            b"{\"error\":\"slow_down\",\"error_description\":\"secret-ish detail\"}",
            Some(Duration::from_secs(7)),
            false,
        );
        assert_eq!(
            error,
            IdpError::Transient {
                reason: "HTTP 429 slow_down".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(!error.to_string().contains("secret-ish"));
        let html = classify(502, b"<html>proxy</html>", None, false);
        assert!(html.is_transient() && !html.to_string().contains("proxy"));
    }
}
