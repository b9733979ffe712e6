//! Authentication and authorization at the edge: every request to the gateway API goes
//! through [`AuthLayer`], which strips client-sent identity headers, turns the bearer
//! token into a [`Principal`] (a chain of authenticators), checks it against the
//! method's declared mode, role and scope (the table generated from `gateway.proto`),
//! and hands it to the handler as a request extension.

mod authorize;
mod layer;
mod local_token;
mod principal;
pub mod sandbox_token;

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use tonic::Status;

pub use authorize::{ALL_SCOPES, authorize, entry_for};
pub use layer::{AuthLayer, strip_identity_headers};
pub use local_token::{LOCAL_SUBJECT, LocalToken};
pub use principal::{Identity, Principal, SandboxIdentity, User, is_label_value, owner_of};
pub use sandbox_token::{Claims, SigningKey};

/// The chain of authenticators the gateway runs.
#[derive(Clone, Debug)]
pub struct Authenticator {
    /// The local token (dev and single-user set-ups).
    pub local: Option<LocalToken>,
    /// Verifies sandbox tokens.
    pub sandbox_key: SigningKey,
}

impl Authenticator {
    /// The principal of a request, `None` without credentials.
    ///
    /// # Errors
    /// UNAUTHENTICATED when credentials are present but not valid.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        now_secs: u64,
    ) -> Result<Option<Principal>, Status> {
        let Some(token) = bearer(headers)? else {
            return Ok(None);
        };
        if sandbox_token::looks_like_sandbox_token(token) {
            let claims = self
                .sandbox_key
                .verify(token, now_secs)
                .map_err(|error| Status::unauthenticated(error.to_string()))?;
            return Ok(Some(Principal::new(Identity::Sandbox(SandboxIdentity {
                id: claims.sid,
                owner: claims.own,
            }))));
        }
        if let Some(local) = &self.local
            && let Some(principal) = local.authenticate(token, peer)?
        {
            return Ok(Some(principal));
        }
        Err(Status::unauthenticated(
            "bearer token not recognised: use the gateway's local token (--local-token-file) or a sandbox token",
        ))
    }
}

/// The bearer token of `authorization`, if any.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Status> {
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
            Ok(Some(token.trim()))
        }
        _ => Err(Status::unauthenticated(
            "authorization header must be `Bearer <token>`",
        )),
    }
}

/// Shared handle used by the layer.
pub type SharedAuthenticator = Arc<Authenticator>;
