//! The discovery document: what a CLI needs to log in to this gateway, served without
//! authentication at [`PATH`] on the API port (HTTP/2 and HTTP/1.1, so `curl` works).
//!
//! It names the OIDC issuer, the public CLI client, the scopes to request and the
//! audience; nothing in it is secret. `gateway-shim gateway add` reads it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode, header};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

use crate::auth::OidcConfig;

/// Where the document is served.
pub const PATH: &str = "/auth/oidc-config";

/// The document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Whether users authenticate with OIDC tokens (false: only the local token and
    /// sandbox tokens are accepted).
    pub auth_enabled: bool,
    /// How to log in; absent when OIDC is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcLogin>,
}

/// How a CLI logs in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcLogin {
    /// The issuer (its `/.well-known/openid-configuration` has the endpoints).
    pub issuer: String,
    /// The public client to log in with; absent when the operator set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Scopes to request (`openid` first).
    pub scopes: Vec<String>,
    /// The audience the gateway requires of access tokens.
    pub audience: String,
}

impl Discovery {
    /// The document for a gateway configured with `oidc`.
    pub fn new(oidc: Option<&OidcConfig>) -> Self {
        Self {
            auth_enabled: oidc.is_some(),
            oidc: oidc.map(|config| OidcLogin {
                issuer: config.issuer.clone(),
                client_id: config.cli_client_id.clone(),
                scopes: with_openid(&config.cli_scopes),
                audience: config.audience.clone(),
            }),
        }
    }
}

/// `scopes` with `openid` once, first.
pub fn with_openid(scopes: &[String]) -> Vec<String> {
    let mut all = vec!["openid".to_owned()];
    for scope in scopes {
        if !all.contains(scope) {
            all.push(scope.clone());
        }
    }
    all
}

/// Answers `GET` [`PATH`] with the document; passes everything else on.
#[derive(Clone, Debug)]
pub struct DiscoveryLayer {
    body: String,
}

impl DiscoveryLayer {
    /// A layer serving `document`.
    pub fn new(document: &Discovery) -> Self {
        Self {
            body: serde_json::to_string(document).unwrap_or_else(|_| "{}".into()),
        }
    }
}

impl<S> Layer<S> for DiscoveryLayer {
    type Service = DiscoveryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DiscoveryService {
            inner,
            body: self.body.clone(),
        }
    }
}

/// See [`DiscoveryLayer`].
#[derive(Clone, Debug)]
pub struct DiscoveryService<S> {
    inner: S,
    body: String,
}

impl<S, B> Service<Request<B>> for DiscoveryService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path() != PATH {
            return Box::pin(self.inner.call(request));
        }
        let (status, body) = if request.method() == Method::GET {
            (StatusCode::OK, self.body.clone())
        } else {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                r#"{"error":"use GET"}"#.to_owned(),
            )
        };
        let mut response = Response::new(tonic::body::Body::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        Box::pin(std::future::ready(Ok(response)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn openid_is_requested_once_and_first() {
        let scopes = with_openid(&["offline_access".into(), "openid".into(), "a".into()]);
        assert_eq!(scopes, ["openid", "offline_access", "a"]);
    }

    #[test]
    fn without_oidc_the_document_says_so_and_nothing_else() {
        let json = serde_json::to_value(Discovery::new(None)).unwrap();
        assert_eq!(json, serde_json::json!({ "auth_enabled": false }));
    }
}
