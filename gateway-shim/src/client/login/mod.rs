//! Logging in to a gateway's OIDC issuer with the `oauth2` crate: the browser
//! (Authorization Code with PKCE and a loopback redirect), the device authorization
//! grant for headless machines, client credentials for CI (the secret in the request
//! body, as Keycloak-style servers want), refresh, and revocation at logout.
//!
//! - [`flows`]: the grants.
//! - [`loopback`]: the one-shot redirect listener of the browser login.

pub mod flows;
pub mod loopback;

use std::path::Path;
use std::time::Duration;

use oauth2::{ErrorResponseType, HttpClientError, RequestTokenError, StandardErrorResponse};
use serde::Deserialize;

/// Bound on one request to the identity provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a login, a renewal or a logout failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The issuer's metadata could not be read.
    #[error("cannot read the identity provider's metadata at {url}: {why}")]
    Discovery {
        /// Where.
        url: String,
        /// Why.
        why: String,
    },
    /// The identity provider refused.
    #[error("the identity provider refused {what}: {error}{}{}", description_of(.description), hint_for(.error))]
    Refused {
        /// What was asked.
        what: String,
        /// The OAuth2 error code.
        error: String,
        /// Its description, when it gave one.
        description: Option<String>,
    },
    /// The identity provider could not be reached or answered nonsense.
    #[error("{what} failed: {why}")]
    Transport {
        /// What was asked.
        what: String,
        /// Why.
        why: String,
    },
    /// Something of ours is missing or wrong.
    #[error("{0}")]
    Setup(String),
}

fn description_of(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// What to do about an OAuth2 error code.
fn hint_for(error: &str) -> &'static str {
    match error {
        "invalid_client" => {
            ": check --client-id and the client secret; the identity provider did not accept them"
        }
        "unauthorized_client" => {
            ": this client may not use this kind of login; ask the identity provider's admin to enable it"
        }
        "access_denied" => ": the sign-in was denied; run `gateway-shim login` again to retry",
        "expired_token" => {
            ": the code expired before it was approved; run `gateway-shim login --device` again and approve it sooner"
        }
        "invalid_grant" => ": the login expired or was revoked; run `gateway-shim login` again",
        "invalid_scope" => {
            ": a requested scope is not allowed for this client; check --scope and the gateway's --oidc-cli-scopes"
        }
        _ => "",
    }
}

impl LoginError {
    /// From an `oauth2` request error.
    pub(crate) fn from_oauth<T>(
        what: &str,
        error: RequestTokenError<HttpClientError<reqwest::Error>, StandardErrorResponse<T>>,
    ) -> Self
    where
        T: ErrorResponseType + AsRef<str> + std::fmt::Display + 'static,
    {
        match error {
            RequestTokenError::ServerResponse(response) => Self::Refused {
                what: what.to_owned(),
                error: response.error().as_ref().to_owned(),
                description: response.error_description().cloned(),
            },
            RequestTokenError::Request(e) => Self::Transport {
                what: what.to_owned(),
                why: proto::error_chain(&e),
            },
            RequestTokenError::Parse(e, _) => Self::Transport {
                what: what.to_owned(),
                why: format!("unreadable answer: {e}"),
            },
            RequestTokenError::Other(why) => Self::Transport {
                what: what.to_owned(),
                why,
            },
        }
    }
}

/// An HTTP client for the identity provider and the gateway's discovery document:
/// no redirects followed, bounded requests, `ca_file` trusted besides the system roots.
///
/// # Errors
/// [`LoginError::Setup`] naming an unreadable CA file.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, LoginError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| LoginError::Setup(format!("--ca-file {}: {e}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            LoginError::Setup(format!(
                "--ca-file {}: not PEM certificates: {e}",
                path.display()
            ))
        })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|e| LoginError::Setup(format!("HTTP client: {e}")))
}

/// The endpoints of an issuer, from its `/.well-known/openid-configuration`.
#[derive(Clone, Debug, Deserialize)]
pub struct Endpoints {
    /// The issuer as it names itself.
    pub issuer: String,
    /// Where browsers sign in.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Where tokens are issued.
    pub token_endpoint: String,
    /// Where devices ask for a user code.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// Where tokens are revoked.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

impl Endpoints {
    /// Reads `issuer`'s metadata; the issuer it names must be `issuer`.
    ///
    /// # Errors
    /// [`LoginError::Discovery`].
    pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Self, LoginError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let failed = |why: String| LoginError::Discovery {
            url: url.clone(),
            why,
        };
        let response = http
            .get(&url)
            .send()
            .await
            .map_err(|e| failed(proto::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        let endpoints: Self = response
            .json()
            .await
            .map_err(|e| failed(proto::error_chain(&e)))?;
        if endpoints.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(failed(format!(
                "it names itself {:?}, not {issuer:?}",
                endpoints.issuer
            )));
        }
        Ok(endpoints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_says_what_to_do() {
        for (code, expected) in [
            ("invalid_client", "--client-id"),
            ("access_denied", "denied"),
            ("expired_token", "--device"),
            ("invalid_grant", "gateway-shim login"),
        ] {
            let error = LoginError::Refused {
                what: "the login".into(),
                error: code.into(),
                description: Some("why".into()),
            };
            let text = error.to_string();
            assert!(text.contains(code) && text.contains("(why)"), "{text}");
            assert!(text.contains(expected), "{text}");
        }
    }
}
