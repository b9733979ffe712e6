//! Authentication and authorization at the edge: every request to the gateway API goes
//! through [`AuthLayer`], which strips client-sent identity headers, turns the bearer
//! token into a [`Principal`] (a chain of authenticators: sandbox tokens, the local
//! token, OIDC), checks it against the
//! method's declared mode, role and scope (the table generated from `gateway.proto`),
//! and hands it to the handler as a request extension.

pub mod api_key;
mod authorize;
mod layer;
mod local_token;
mod oidc;
pub mod owner;
mod principal;
pub mod rate_limit;
pub mod sandbox_token;
mod shared_secret;
pub mod trusted_proxy;

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use tonic::Status;

pub use authorize::{ALL_SCOPES, authorize, entry_for};
pub use layer::{AuthLayer, RateLimits, strip_identity_headers};
pub use local_token::{LOCAL_SUBJECT, LocalToken};
pub use oidc::{Oidc, OidcConfig, RoleNames};
pub use principal::{Identity, Principal, SandboxIdentity, User, is_label_value};
pub use sandbox_token::{Claims, SigningKey};
pub use shared_secret::{SharedSecret, read_shared_secret};
pub use trusted_proxy::{TrustedProxy, TrustedProxyConfig};

/// The chain of authenticators the gateway runs: sandbox tokens, the local token,
/// then OIDC.
#[derive(Clone, Debug)]
pub struct Authenticator {
    /// The local token (dev and single-user set-ups).
    pub local: Option<LocalToken>,
    /// Verifies sandbox tokens.
    pub sandbox_key: SigningKey,
    /// Verifies OIDC bearer tokens, when `--oidc-issuer` is set.
    pub oidc: Option<Arc<Oidc>>,
    /// Resolves API keys, when a control plane is configured.
    pub api_keys: Option<Arc<api_key::ApiKeys>>,
}

impl Authenticator {
    /// The principal for a bearer `token` (`None`: no credentials).
    ///
    /// # Errors
    /// UNAUTHENTICATED when the token is not valid; UNAVAILABLE when it cannot be
    /// checked now (the IdP's keys are unreachable).
    pub async fn authenticate(
        &self,
        token: Option<&str>,
        peer: Option<SocketAddr>,
        now_secs: u64,
    ) -> Result<Option<Principal>, Status> {
        let Some(token) = token else {
            return Ok(None);
        };
        if sandbox_token::looks_like_sandbox_token(token) {
            let claims = self
                .sandbox_key
                .verify(token, now_secs)
                .map_err(|error| Status::unauthenticated(error.to_string()))?;
            let tenant = claims
                .tnt
                .unwrap_or_else(|| crate::store::DEFAULT_TENANT.to_owned());
            return Ok(Some(
                Principal::new(Identity::Sandbox(SandboxIdentity {
                    id: claims.sid,
                    owner: claims.own,
                }))
                .in_tenant(tenant),
            ));
        }
        if api_key::looks_like_api_key(token) {
            return match &self.api_keys {
                Some(keys) => keys.authenticate(token).await.map(Some),
                None => Err(Status::unauthenticated(
                    "API keys are not enabled on this gateway",
                )),
            };
        }
        if let Some(local) = &self.local
            && let Some(principal) = local.authenticate(token, peer)?
        {
            return Ok(Some(principal));
        }
        match &self.oidc {
            Some(oidc) => Ok(Some(oidc.verify(token).await?)),
            None => Err(Status::unauthenticated(
                "bearer token not recognised: use the gateway's local token (--local-token-file) or a sandbox token",
            )),
        }
    }
}

/// The bearer token of `authorization`, if any.
///
/// # Errors
/// UNAUTHENTICATED for a malformed header.
pub fn bearer(headers: &HeaderMap) -> Result<Option<String>, Status> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(Status::unauthenticated(
            "authorization header must be `Bearer <token>`",
        )),
    }
}

/// Shared handle used by the layer.
pub type SharedAuthenticator = Arc<Authenticator>;
