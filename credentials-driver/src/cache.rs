//! The token cache: callers never wait on the identity provider in steady state.
//!
//! Per key (credential, audience, scopes, hash of the subject token):
//! - a fresh token is served from memory;
//! - a token due for refresh is still served while one background refresh runs;
//! - an expired or missing token is fetched once: concurrent callers wait on the same
//!   fetch, which runs on its own task, so a caller that gives up cancels nothing;
//! - a permanent failure is remembered for a short time (negative caching);
//! - a transient failure is remembered until the next backoff step (with jitter and
//!   the endpoint's Retry-After), so an outage costs the endpoint one request per
//!   backoff interval, not one per caller. A valid token is served meanwhile, never an
//!   expired one.
//!
//! Entries for exchanged tokens (one per subject) live in a bounded LRU.

// Slot and map locks are held for a few field updates, never across `.await`.
#![allow(clippy::disallowed_types)]

mod policy;

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lru::LruCache;
use proto::{Backoff, Secret};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

pub use policy::{Freshness, Lifetime, refresh_margin};

use crate::idp::IdpError;

/// A cached token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedToken {
    /// The token.
    pub token: Secret,
    /// Expiry in epoch ms for callers (0: never).
    pub expires_at_ms: i64,
    /// Token type.
    pub token_type: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// RFC 8693 issued token type.
    pub issued_token_type: String,
    /// Monotonic refresh and expiry times.
    pub lifetime: Lifetime,
}

/// What a cache entry is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    credential: String,
    audience: Vec<String>,
    scopes: Vec<String>,
    subject: Option<[u8; 32]>,
}

impl Key {
    /// The key for a credential, its requested audience and scopes (order does not
    /// matter), and the caller's subject token (hashed; never stored).
    pub fn new(
        credential: &str,
        audience: &[String],
        scopes: &[String],
        subject: Option<&Secret>,
    ) -> Self {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            v
        };
        Self {
            credential: credential.to_owned(),
            audience: sorted(audience),
            scopes: sorted(scopes),
            subject: subject.map(|s| Sha256::digest(s.expose().as_bytes()).into()),
        }
    }
}

/// Cache settings.
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    /// How long a permanent failure is remembered (default 15 s).
    pub negative_ttl: Duration,
    /// Delays after transient failures (default 500 ms doubling to 30 s, 50 % jitter).
    pub backoff: Backoff,
    /// Most exchanged-token entries kept (default 10,000).
    pub max_exchanged: NonZeroUsize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            negative_ttl: Duration::from_secs(15),
            backoff: Backoff::try_new(Duration::from_millis(500), Duration::from_secs(30), 0.5)
                .unwrap_or(Backoff::CALL),
            max_exchanged: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

type Outcome = Option<Result<CachedToken, IdpError>>;

#[derive(Debug)]
struct SlotState {
    token: Option<CachedToken>,
    failure: Option<(IdpError, Instant)>,
    inflight: Option<watch::Receiver<Outcome>>,
    backoff: proto::retry::BackoffSession,
}

type Slot = Mutex<SlotState>;

/// Cache counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Served from memory.
    pub hits: u64,
    /// Had to wait for a fetch.
    pub misses: u64,
    /// Fetches started (initial and refresh).
    pub fetches: u64,
}

/// The token cache (see the module docs).
#[derive(Debug)]
pub struct TokenCache {
    config: CacheConfig,
    fixed: Mutex<HashMap<Key, Arc<Slot>>>,
    exchanged: Mutex<LruCache<Key, Arc<Slot>>>,
    stats: Mutex<CacheStats>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            fixed: Mutex::new(HashMap::new()),
            exchanged: Mutex::new(LruCache::new(config.max_exchanged)),
            stats: Mutex::new(CacheStats::default()),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        *lock(&self.stats)
    }

    /// Number of exchanged-token entries.
    pub fn exchanged_len(&self) -> usize {
        lock(&self.exchanged).len()
    }

    /// Drops every entry (after a config reload).
    pub fn clear(&self) {
        lock(&self.fixed).clear();
        lock(&self.exchanged).clear();
    }

    fn slot(&self, key: &Key) -> Arc<Slot> {
        let fresh = || {
            Arc::new(Mutex::new(SlotState {
                token: None,
                failure: None,
                inflight: None,
                backoff: self.config.backoff.session(),
            }))
        };
        if key.subject.is_some() {
            let mut map = lock(&self.exchanged);
            map.get_or_insert(key.clone(), fresh).clone()
        } else {
            lock(&self.fixed)
                .entry(key.clone())
                .or_insert_with(fresh)
                .clone()
        }
    }

    fn count(&self, update: impl FnOnce(&mut CacheStats)) {
        update(&mut lock(&self.stats));
    }

    /// The token for `key`, fetching it with `fetch` only when needed (see the module
    /// docs for the rules).
    ///
    /// # Errors
    /// The fetch's [`IdpError`], or a remembered one.
    pub async fn get<F, Fut>(&self, key: &Key, fetch: F) -> Result<CachedToken, IdpError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedToken, IdpError>> + Send + 'static,
    {
        self.get_served(key, fetch).await.map(|(token, _)| token)
    }

    /// [`TokenCache::get`], saying whether the token came from memory (`true`) or
    /// from a request to the identity provider this call made or joined (`false`).
    ///
    /// # Errors
    /// The fetch's [`IdpError`], or a remembered one.
    pub async fn get_served<F, Fut>(
        &self,
        key: &Key,
        fetch: F,
    ) -> Result<(CachedToken, bool), IdpError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedToken, IdpError>> + Send + 'static,
    {
        let slot = self.slot(key);
        let mut receiver = {
            let mut state = lock(&slot);
            let now = Instant::now();
            let backing_off = state
                .failure
                .as_ref()
                .is_some_and(|(_, until)| now < *until);
            if let Some(token) = &state.token {
                match token.lifetime.freshness(now) {
                    Freshness::Fresh => {
                        let token = token.clone();
                        drop(state);
                        self.count(|s| s.hits += 1);
                        return Ok((token, true));
                    }
                    Freshness::RefreshDue => {
                        let token = token.clone();
                        if state.inflight.is_none() && !backing_off {
                            state.inflight = Some(self.spawn_fetch(&slot, fetch()));
                        }
                        drop(state);
                        self.count(|s| s.hits += 1);
                        return Ok((token, true));
                    }
                    Freshness::Expired => state.token = None,
                }
            }
            if let Some((error, until)) = &state.failure
                && now < *until
            {
                return Err(error.clone());
            }
            match &state.inflight {
                Some(receiver) => receiver.clone(),
                None => {
                    let receiver = self.spawn_fetch(&slot, fetch());
                    state.inflight = Some(receiver.clone());
                    receiver
                }
            }
        };
        self.count(|s| s.misses += 1);
        let outcome = receiver.wait_for(Option::is_some).await.map(|v| v.clone());
        match outcome {
            Ok(Some(result)) => result.map(|token| (token, false)),
            _ => Err(IdpError::BadResponse {
                reason: "the token fetch was abandoned".into(),
            }),
        }
    }

    fn spawn_fetch<Fut>(&self, slot: &Arc<Slot>, fetch: Fut) -> watch::Receiver<Outcome>
    where
        Fut: Future<Output = Result<CachedToken, IdpError>> + Send + 'static,
    {
        self.count(|s| s.fetches += 1);
        let (tx, rx) = watch::channel(None);
        let slot = Arc::clone(slot);
        let negative_ttl = self.config.negative_ttl;
        let max_backoff = self.config.backoff.max();
        tokio::spawn(async move {
            let result = fetch.await;
            {
                let mut state = lock(&slot);
                state.inflight = None;
                let now = Instant::now();
                match &result {
                    Ok(token) => {
                        state.token = Some(token.clone());
                        state.failure = None;
                        state.backoff.reset();
                    }
                    Err(error) if error.is_transient() => {
                        let mut delay = state.backoff.next_delay();
                        if let IdpError::Transient {
                            retry_after: Some(hint),
                            ..
                        } = error
                        {
                            delay = delay.max((*hint).min(max_backoff));
                        }
                        state.failure = Some((error.clone(), now + delay));
                    }
                    Err(error) => state.failure = Some((error.clone(), now + negative_ttl)),
                }
            }
            let _ = tx.send(Some(result));
        });
        rx
    }
}

#[cfg(test)]
mod tests;
