//! The token endpoint client: RFC 6749 client_credentials and RFC 8693 token exchange
//! as form posts, with every failure classified (see [`classify`]) so callers never
//! retry what cannot succeed.

mod classify;

use std::time::Duration;

use proto::Secret;
use serde::Deserialize;

pub use classify::{IdpError, classify};

use crate::config::{AuthMethod, OAuthClient};

/// The RFC 8693 grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The RFC 8693 access-token type URI.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What to ask the token endpoint for.
#[derive(Debug)]
pub enum Grant<'a> {
    /// client_credentials.
    ClientCredentials,
    /// Token exchange of the caller's token.
    Exchange {
        /// The caller's token.
        subject_token: &'a Secret,
        /// Its type URI.
        subject_token_type: &'a str,
    },
}

/// A token from the endpoint. `expires_in` is measured from receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The access token.
    pub token: Secret,
    /// Lifetime from receipt (None: the endpoint did not say).
    pub expires_in: Option<Duration>,
    /// Token type, normalised (`bearer` → `Bearer`).
    pub token_type: String,
    /// Granted scopes, when the endpoint said.
    pub scopes: Vec<String>,
    /// RFC 8693 issued token type, for exchanges.
    pub issued_token_type: String,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    expires_in: Option<u64>,
    token_type: Option<String>,
    scope: Option<String>,
    issued_token_type: Option<String>,
}

/// Timeouts and trust for the token endpoint.
#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Extra CA certificates (PEM) to trust.
    pub extra_ca_pem: Option<Vec<u8>>,
}

/// A client for token endpoints.
///
/// The HTTP client (its TLS roots loaded from the system store) is built at the first
/// request, not at start: a driver serving only file credentials never loads them
/// (about 1 MiB of its idle RSS). Bad settings still fail at start.
#[derive(Clone, Debug)]
pub struct Idp {
    http: std::sync::Arc<LazyHttp>,
}

/// What building the HTTP client needs, and the client once built.
#[derive(Debug)]
struct LazyHttp {
    timeout: Duration,
    connect_timeout: Duration,
    extra_roots: Vec<reqwest::Certificate>,
    built: std::sync::OnceLock<reqwest::Client>,
}

impl Idp {
    /// A client with these settings.
    ///
    /// # Errors
    /// A message when the CA bundle is not valid PEM.
    pub fn new(config: &IdpConfig) -> Result<Self, String> {
        let extra_roots = match &config.extra_ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("--idp-ca-file: {e}"))?,
            None => Vec::new(),
        };
        Ok(Self {
            http: std::sync::Arc::new(LazyHttp {
                timeout: config.timeout,
                connect_timeout: config.connect_timeout,
                extra_roots,
                built: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The HTTP client, built on first use.
    fn http(&self) -> Result<&reqwest::Client, IdpError> {
        let lazy = &*self.http;
        if let Some(http) = lazy.built.get() {
            return Ok(http);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(lazy.timeout)
            .connect_timeout(lazy.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("credentials-driver/", env!("CARGO_PKG_VERSION")));
        for cert in &lazy.extra_roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        let built = builder.build().map_err(|e| IdpError::Unreachable {
            reason: format!("the HTTP client cannot be built: {e}"),
        })?;
        // A racing first request may have set it: either client is as good.
        Ok(lazy.built.get_or_init(|| built))
    }

    /// Asks `client`'s token endpoint for a token.
    ///
    /// # Errors
    /// [`IdpError`], classified by [`classify`] (or `Unreachable` for transport errors).
    pub async fn request(
        &self,
        client: &OAuthClient,
        secret: &Secret,
        grant: Grant<'_>,
        audience: &[String],
        scopes: &[String],
    ) -> Result<Issued, IdpError> {
        let mut form: Vec<(&str, &str)> = Vec::new();
        match &grant {
            Grant::ClientCredentials => form.push(("grant_type", "client_credentials")),
            Grant::Exchange {
                subject_token,
                subject_token_type,
            } => {
                form.push(("grant_type", TOKEN_EXCHANGE));
                form.push(("subject_token", subject_token.expose()));
                form.push(("subject_token_type", subject_token_type));
                form.push(("requested_token_type", ACCESS_TOKEN_TYPE));
            }
        }
        let scope = scopes.join(" ");
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        for aud in audience {
            form.push(("audience", aud));
        }
        let mut request = self
            .http()?
            .post(&client.token_endpoint)
            .header("accept", "application/json");
        match client.auth_method {
            AuthMethod::Basic => {
                let user = form_urlencode(&client.client_id);
                let pass = form_urlencode(secret.expose());
                request = request.basic_auth(user, Some(pass));
            }
            AuthMethod::Post => {
                form.push(("client_id", &client.client_id));
                form.push(("client_secret", secret.expose()));
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| IdpError::Unreachable {
                reason: transport_reason(&e),
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| IdpError::Unreachable {
            reason: transport_reason(&e),
        })?;
        if !(200..300).contains(&status) {
            return Err(classify(
                status,
                &body,
                retry_after,
                matches!(grant, Grant::Exchange { .. }),
            ));
        }
        let parsed: TokenBody =
            serde_json::from_slice(&body).map_err(|_| IdpError::BadResponse {
                reason: format!("HTTP {status} without a token response body"),
            })?;
        if parsed.access_token.is_empty() {
            return Err(IdpError::BadResponse {
                reason: "empty access_token".into(),
            });
        }
        let token_type = match parsed.token_type.as_deref() {
            None => "Bearer".to_owned(),
            Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
            Some(t) => t.to_owned(),
        };
        Ok(Issued {
            token: Secret::new(parsed.access_token),
            expires_in: parsed.expires_in.map(Duration::from_secs),
            token_type,
            scopes: parsed
                .scope
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            issued_token_type: parsed.issued_token_type.unwrap_or_default(),
        })
    }
}

/// RFC 6749 2.3.1: the client id and secret are form-urlencoded before Basic auth.
fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A transport error's kind, without URLs' query strings or bodies.
fn transport_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "transport error".into()
    }
}

#[cfg(test)]
mod tests {
    use super::form_urlencode;

    #[test]
    fn basic_credentials_are_form_urlencoded_first() {
        assert_eq!(form_urlencode("a b+c:d/é"), "a+b%2Bc%3Ad%2F%C3%A9");
        assert_eq!(form_urlencode("plain-id_1.x"), "plain-id_1.x");
    }
}
