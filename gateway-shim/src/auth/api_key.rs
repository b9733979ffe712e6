//! API keys: callers that are not OIDC users present `Authorization: Bearer gwk_…`.
//! The key never leaves the gateway: only its SHA-256 is looked up, in the control
//! plane ([`crate::control_plane`]) through the resolve cache. An active key is a
//! principal of its own owner namespace (`key.<consumer>`) in the tenant the control
//! plane names.

use std::num::NonZeroUsize;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tonic::Status;

use super::{Identity, Principal, User};
use crate::control_plane::ControlPlane;
use crate::control_plane::cache::{KeyAnswer, Lifetimes, ResolveCache};

/// The prefix every API key starts with.
pub const PREFIX: &str = "gwk_";
/// How many key digests the cache holds.
pub const CACHE_CAPACITY: usize = 10_000;
/// Prefix of API-key owner keys.
const OWNER_PREFIX: &str = "key.";

/// Whether `token` is an API key (other authenticators skip it).
pub fn looks_like_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Resolves API keys.
#[derive(Debug)]
pub struct ApiKeys {
    control_plane: ControlPlane,
    cache: Arc<ResolveCache>,
}

impl ApiKeys {
    /// Keys resolved by `control_plane`, cached with the contract's lifetimes.
    pub fn new(control_plane: ControlPlane) -> Self {
        Self {
            control_plane,
            cache: ResolveCache::new(
                Lifetimes::default(),
                NonZeroUsize::new(CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN),
            ),
        }
    }

    /// The principal of the API key `token`.
    ///
    /// # Errors
    /// UNAUTHENTICATED for a key that is not active (the reason goes to the log);
    /// UNAVAILABLE when the control plane cannot answer and nothing may be served.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Status> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let control_plane = self.control_plane.clone();
        let answer = self
            .cache
            .resolve(digest, move || async move {
                control_plane.resolve_key(&digest).await
            })
            .await
            .map_err(|unavailable| {
                tracing::warn!(error = %unavailable, "API key not checked");
                Status::unavailable("API keys cannot be checked now; retry shortly")
            })?;
        match answer {
            KeyAnswer::Active(plan) => {
                let user = User {
                    owner: super::owner::key_owner(&plan.consumer),
                    subject: plan.consumer,
                    admin: false,
                    platform_admin: false,
                    user_role: true,
                    scopes: None,
                    bearer: None,
                };
                Ok(Principal::new(Identity::User(user)).in_tenant(plan.tenant))
            }
            KeyAnswer::Refused(why) => {
                tracing::info!(reason = %why, "API key refused");
                Err(Status::unauthenticated("API key not valid"))
            }
        }
    }
}

/// The owner-key prefix of API-key principals (for [`super::owner`]).
pub(super) const fn owner_prefix() -> &'static str {
    OWNER_PREFIX
}
