//! The JWKS cache: keys by id, refreshed when older than the TTL, and when a token
//! names an unknown key: one refresh shared by every caller waiting on it, at most one
//! per cooldown, so a flood of forged key ids cannot hammer the IdP.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

use super::jwk::{JwkSet, VerifyingKey};

/// Why no key could be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum KeyError {
    /// The IdP does not publish this key (also after a refresh).
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// The JWKS could not be fetched and no copy is held.
    #[error("the identity provider's keys are unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched: Option<Instant>,
    last_forced: Option<Instant>,
    generation: u64,
}

/// Keys of one issuer.
#[derive(Debug)]
pub(super) struct KeyCache {
    http: reqwest::Client,
    jwks_uri: String,
    ttl: Duration,
    cooldown: Duration,
    state: RwLock<State>,
    refreshing: Mutex<()>,
}

impl KeyCache {
    /// A cache of the JWKS at `jwks_uri`; nothing fetched yet.
    pub(super) fn new(
        http: reqwest::Client,
        jwks_uri: String,
        ttl: Duration,
        cooldown: Duration,
    ) -> Self {
        Self {
            http,
            jwks_uri,
            ttl,
            cooldown,
            state: RwLock::default(),
            refreshing: Mutex::new(()),
        }
    }

    /// Fetches the keys now.
    ///
    /// # Errors
    /// [`KeyError::Unavailable`].
    pub(super) async fn load(&self) -> Result<usize, KeyError> {
        let keys = self.fetch().await?;
        let count = keys.len();
        let mut state = self.state.write().await;
        state.keys = keys;
        state.fetched = Some(Instant::now());
        state.generation += 1;
        Ok(count)
    }

    /// The key `kid`.
    ///
    /// # Errors
    /// [`KeyError`].
    pub(super) async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyError> {
        let seen = {
            let state = self.state.read().await;
            if let Some(key) = state.keys.get(kid)
                && state.fetched.is_some_and(|at| at.elapsed() < self.ttl)
            {
                return Ok(Arc::clone(key));
            }
            state.generation
        };
        let _single_flight = self.refreshing.lock().await;
        let (known, refreshed_meanwhile, cooling) = {
            let state = self.state.read().await;
            let known = state.keys.get(kid).cloned();
            let cooling = state
                .last_forced
                .is_some_and(|at| at.elapsed() < self.cooldown);
            (known, state.generation != seen, cooling)
        };
        if refreshed_meanwhile {
            return known.ok_or(KeyError::UnknownKey);
        }
        if known.is_none() && cooling {
            return Err(KeyError::UnknownKey);
        }
        match self.fetch().await {
            Ok(keys) => {
                let mut state = self.state.write().await;
                state.keys = keys;
                state.fetched = Some(Instant::now());
                state.generation += 1;
                if known.is_none() {
                    state.last_forced = Some(Instant::now());
                }
                state.keys.get(kid).cloned().ok_or(KeyError::UnknownKey)
            }
            Err(error) => {
                if known.is_none() {
                    self.state.write().await.last_forced = Some(Instant::now());
                }
                // A stale copy beats refusing every caller while the IdP is down.
                known.ok_or(error)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerifyingKey>>, KeyError> {
        let unavailable = |e: reqwest::Error| KeyError::Unavailable(e.without_url().to_string());
        let response = self
            .http
            .get(&self.jwks_uri)
            .send()
            .await
            .map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(KeyError::Unavailable(format!(
                "JWKS answered {}",
                response.status()
            )));
        }
        let set: JwkSet = response.json().await.map_err(unavailable)?;
        let keys: HashMap<_, _> = set
            .keys
            .iter()
            .filter_map(|jwk| jwk.verifying_key())
            .map(|key| (key.kid.clone(), Arc::new(key)))
            .collect();
        tracing::debug!(keys = keys.len(), "JWKS fetched");
        Ok(keys)
    }
}
