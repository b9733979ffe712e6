//! API keys: callers that are not OIDC users present `Authorization: Bearer gwk_…`.
//! The key never leaves the gateway: only its SHA-256 is looked up, first among the
//! local keys admins created (authoritative: a revoked local key is refused without
//! asking anyone), and only on a pure local miss in the control plane
//! ([`crate::control_plane`]) through the resolve cache. An active key is a principal
//! of its own owner namespace (`key.<consumer>`) in the key's tenant, unless a local
//! block (the operator's kill switch) disables the tenant or the consumer, whatever
//! the control plane says.

use std::num::NonZeroUsize;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tonic::Status;

use prost::Message as _;
use proto::pb::gateway::v1 as pb;

use super::rate_limit::Rate;
use super::{Identity, Principal, User};
use crate::control_plane::ControlPlane;
use crate::control_plane::cache::{KeyAnswer, Lifetimes, ResolveCache};
use crate::store::{Kind, PLATFORM_TENANT, Store};

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

/// The hex SHA-256 of `key` (the store's key) and its id (the first 16 digits).
pub fn key_id(key: &str) -> (String, String) {
    let hex: String = Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let id = hex[..16].to_owned();
    (hex, id)
}

/// The settings key of a block on `tenant` (or one of its consumers).
pub fn blocked_key(tenant: &str, consumer: Option<&str>) -> String {
    match consumer {
        Some(consumer) => format!("blocked/{tenant}/{consumer}"),
        None => format!("blocked/{tenant}"),
    }
}

/// Resolves API keys.
#[derive(Debug)]
pub struct ApiKeys {
    store: Store,
    control_plane: Option<(ControlPlane, Arc<ResolveCache>)>,
}

impl ApiKeys {
    /// Local keys in `store`, and keys `control_plane` knows (cached with the
    /// contract's lifetimes) when one is configured.
    pub fn new(store: &Store, control_plane: Option<ControlPlane>) -> Self {
        Self {
            store: store.in_tenant(PLATFORM_TENANT),
            control_plane: control_plane.map(|control_plane| {
                let cache = ResolveCache::new(
                    Lifetimes::default(),
                    NonZeroUsize::new(CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN),
                );
                (control_plane, cache)
            }),
        }
    }

    /// The principal of the API key `token`.
    ///
    /// # Errors
    /// UNAUTHENTICATED for a key that is not active (the reason goes to the log);
    /// UNAVAILABLE when the control plane cannot answer and nothing may be served.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Status> {
        let (hex, _) = key_id(token);
        let local = self
            .store
            .get_cached(Kind::ApiKey, &hex)
            .await
            .map_err(unavailable)?;
        let (consumer, tenant, rate) = match local {
            Some(record) => {
                let key = pb::ApiKey::decode(record.body.as_slice())
                    .map_err(|_| Status::internal("a stored API key is corrupt"))?;
                if !key.active {
                    tracing::info!(key = %key.id, "API key refused: revoked");
                    return Err(Status::unauthenticated("API key not valid"));
                }
                let rate = rate(key.rate_per_min, key.burst);
                (key.consumer, key.tenant, rate)
            }
            None => self.ask_control_plane(token).await?,
        };
        for block in [
            blocked_key(&tenant, None),
            blocked_key(&tenant, Some(&consumer)),
        ] {
            if self
                .store
                .get_cached(Kind::Setting, &block)
                .await
                .map_err(unavailable)?
                .is_some()
            {
                tracing::info!(%tenant, %consumer, "API key refused: blocked by the operator");
                return Err(Status::unauthenticated(
                    "API keys of this caller are disabled",
                ));
            }
        }
        let user = User {
            owner: super::owner::key_owner(&consumer),
            subject: consumer,
            admin: false,
            platform_admin: false,
            user_role: true,
            scopes: None,
            bearer: None,
        };
        let mut principal = Principal::new(Identity::User(user)).in_tenant(tenant);
        principal.rate = rate;
        Ok(principal)
    }

    /// (consumer, tenant, rate) of a key the gateway does not know, from the control
    /// plane.
    async fn ask_control_plane(
        &self,
        token: &str,
    ) -> Result<(String, String, Option<Rate>), Status> {
        let Some((control_plane, cache)) = &self.control_plane else {
            return Err(Status::unauthenticated("API key not valid"));
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let control_plane = control_plane.clone();
        let answer = cache
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
                let rate = rate(plan.rate_per_min, plan.burst);
                Ok((plan.consumer, plan.tenant, rate))
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

fn unavailable(error: crate::store::StoreError) -> Status {
    tracing::warn!(%error, "API key lookup failed");
    Status::unavailable("API keys cannot be checked now; retry shortly")
}

/// A key's own limit (`None`: the gateway's default applies).
fn rate(per_min: u32, burst: u32) -> Option<Rate> {
    (per_min > 0).then_some(Rate {
        per_min,
        burst: burst.max(1),
    })
}
