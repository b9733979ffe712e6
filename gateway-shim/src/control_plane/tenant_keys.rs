//! Tenants' own provider keys ("bring your own key"): a platform provider the operator
//! opened to them (`--tenant-provider-key PROVIDER=ENV_NAME`) serves a tenant the key
//! named `ENV_NAME` in the tenant's provider-env at the control plane, when it set one.
//!
//! The lookup is per tenant, through the same cache as API keys (60 s, one request in
//! flight per tenant, an expired answer kept only while the control plane is
//! unreachable), and fail-soft: a tenant without the key, a refusal, or a control plane
//! that cannot answer leaves the platform's own credential serving. After a failed
//! lookup the control plane is not asked again for [`RETRY_AFTER`] (so an outage does
//! not add its timeout to every resolve).

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

// A short lock around one instant, never held across an await.
#[allow(clippy::disallowed_types)]
use std::sync::Mutex;

use proto::Secret;
use tokio::time::Instant;

use super::cache::{Answer, Fetched, Lifetimes, ResolveCache};
use super::client::{ControlPlane, TenantEnv};

/// How long after a failed lookup the platform's credential serves without asking.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);
/// How many tenants' keys are held.
pub const CAPACITY: usize = 10_000;

/// The tenants' keys the operator allows.
#[derive(Debug)]
pub struct TenantKeys {
    control_plane: ControlPlane,
    /// Platform provider → env name.
    providers: BTreeMap<String, String>,
    /// Every env name in `providers`: the only ones kept from a tenant's env.
    allowed: BTreeSet<String>,
    cache: Arc<ResolveCache<String, TenantEnv>>,
    #[allow(clippy::disallowed_types)]
    quiet_until: Mutex<Option<Instant>>,
}

impl TenantKeys {
    /// Keys for `providers` (platform provider → env name) from `control_plane`.
    #[allow(clippy::disallowed_types)]
    pub fn new(control_plane: ControlPlane, providers: BTreeMap<String, String>) -> Self {
        Self {
            control_plane,
            allowed: providers.values().cloned().collect(),
            providers,
            cache: ResolveCache::new(
                Lifetimes::default(),
                NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
            ),
            quiet_until: Mutex::new(None),
        }
    }

    /// `tenant`'s own key for platform provider `provider`; `None`: the platform's
    /// credential serves.
    pub async fn key_for(&self, tenant: &str, provider: &str) -> Option<Secret> {
        let name = self.providers.get(provider)?;
        // Recently unreachable: what is cached still serves, nothing is asked.
        let quiet = self.quiet();
        let control_plane = self.control_plane.clone();
        let allowed = self.allowed.clone();
        let owned = tenant.to_owned();
        let answer = self
            .cache
            .resolve(tenant.to_owned(), move || async move {
                if quiet {
                    Fetched::Unreachable("unreachable moments ago".into())
                } else {
                    control_plane.provider_env(&owned, &allowed).await
                }
            })
            .await;
        match answer {
            Ok(Answer::Active(env)) => env.get(name).cloned(),
            Ok(Answer::Refused(why)) => {
                tracing::warn!(%tenant, %why, "tenant keys refused: the platform's credential serves");
                None
            }
            Err(unavailable) => {
                if !quiet {
                    tracing::warn!(%tenant, error = %unavailable, retry_after = ?RETRY_AFTER, "tenant keys unavailable: the platform's credential serves");
                    self.hush();
                }
                None
            }
        }
    }

    fn quiet(&self) -> bool {
        let mut until = self.lock();
        match *until {
            Some(at) if Instant::now() < at => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn hush(&self) {
        *self.lock() = Some(Instant::now() + RETRY_AFTER);
    }

    #[allow(clippy::disallowed_types)]
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.quiet_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
