//! The control plane's answers, cached by what was asked (an API key's SHA-256, a
//! tenant's id):
//!
//! - an active key is served from memory for 60 s after the answer;
//! - a refusal (inactive, unknown, malformed, any answer that is not a 5xx) for 15 s;
//! - one request in flight per digest: every concurrent caller shares it, and it runs
//!   to the end in a task of its own even when the callers give up;
//! - while the control plane is unreachable (connect error, timeout, 5xx), an expired
//!   active answer keeps serving for up to 300 s more; a definitive answer replaces the
//!   entry at once, and a refusal is never served stale;
//! - at most `capacity` digests, the least recently used evicted one at a time.
//!
//! So a revoked key stops working within 60 s, within 360 s during an outage.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

// A short lock around the maps, never held across an await.
#[allow(clippy::disallowed_types)]
use std::sync::Mutex;

use tokio::sync::watch;
use tokio::time::Instant;

/// A key's SHA-256.
pub type Digest = [u8; 32];

/// What an active key grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The caller (consumer) the key belongs to.
    pub consumer: String,
    /// Its tenant.
    pub tenant: String,
    /// Requests per minute.
    pub rate_per_min: u32,
    /// Burst above the rate.
    pub burst: u32,
}

/// A definitive answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<V> {
    /// What was asked about is active (an API key), or known (a tenant's keys).
    Active(V),
    /// Not usable (why, for the log).
    Refused(String),
}

/// The answer about an API key.
pub type KeyAnswer = Answer<Plan>;

/// What one request to the control plane gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched<V = Plan> {
    /// An answer (any non-5xx reply).
    Answer(Answer<V>),
    /// No answer: connect error, timeout, 5xx (why, for the log).
    Unreachable(String),
}

/// The control plane could not be asked, and nothing may be served in its place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the control plane is unreachable: {0}")]
pub struct Unavailable(pub String);

/// The lifetimes of the rules above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Of an active answer.
    pub positive: Duration,
    /// Of a refusal.
    pub negative: Duration,
    /// How long past `positive` an active answer serves while unreachable.
    pub stale_grace: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            positive: Duration::from_secs(60),
            negative: Duration::from_secs(15),
            stale_grace: Duration::from_secs(300),
        }
    }
}

#[derive(Debug)]
struct Entry<V> {
    answer: Answer<V>,
    at: Instant,
}

type Outcome<V = Plan> = Result<Answer<V>, Unavailable>;

#[derive(Debug)]
struct State<K: Hash + Eq, V> {
    entries: lru::LruCache<K, Entry<V>>,
    inflight: HashMap<K, watch::Receiver<Option<Outcome<V>>>>,
}

/// The cache (shared by every request of the gateway), of answers `V` about `K`.
#[derive(Debug)]
pub struct ResolveCache<K: Hash + Eq = Digest, V = Plan> {
    lifetimes: Lifetimes,
    #[allow(clippy::disallowed_types)]
    state: Mutex<State<K, V>>,
}

impl<K, V> ResolveCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache of at most `capacity` answers.
    #[allow(clippy::disallowed_types)]
    pub fn new(lifetimes: Lifetimes, capacity: NonZeroUsize) -> Arc<Self> {
        Arc::new(Self {
            lifetimes,
            state: Mutex::new(State {
                entries: lru::LruCache::new(capacity),
                inflight: HashMap::new(),
            }),
        })
    }

    /// How many digests are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer for `digest`: from memory while fresh, else from `fetch` (shared
    /// by every concurrent caller of the digest).
    ///
    /// # Errors
    /// [`Unavailable`] when the control plane cannot answer and no active answer is
    /// within its grace.
    pub async fn resolve<F, Fut>(self: &Arc<Self>, digest: K, fetch: F) -> Outcome<V>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Fetched<V>> + Send + 'static,
    {
        let mut waiting = {
            let mut state = self.lock();
            if let Some(entry) = state.entries.get(&digest)
                && self.fresh(entry, Instant::now())
            {
                return Ok(entry.answer.clone());
            }
            match state.inflight.get(&digest) {
                Some(receiver) => receiver.clone(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    state.inflight.insert(digest.clone(), receiver.clone());
                    let request = fetch();
                    let cache = Arc::clone(self);
                    tokio::spawn(async move {
                        let fetched = request.await;
                        let outcome = cache.settle(digest, fetched);
                        let _ = sender.send(Some(outcome));
                    });
                    receiver
                }
            }
        };
        let settled = waiting
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Unavailable("the control-plane request was lost".into()))?;
        settled
            .clone()
            .unwrap_or_else(|| Err(Unavailable("no answer".into())))
    }

    fn fresh(&self, entry: &Entry<V>, now: Instant) -> bool {
        let lifetime = match entry.answer {
            Answer::Active(_) => self.lifetimes.positive,
            Answer::Refused(_) => self.lifetimes.negative,
        };
        now.duration_since(entry.at) < lifetime
    }

    /// Records what a request gave and says what its callers get.
    fn settle(&self, digest: K, fetched: Fetched<V>) -> Outcome<V> {
        let mut state = self.lock();
        state.inflight.remove(&digest);
        let now = Instant::now();
        match fetched {
            Fetched::Answer(answer) => {
                state.entries.put(
                    digest,
                    Entry {
                        answer: answer.clone(),
                        at: now,
                    },
                );
                Ok(answer)
            }
            Fetched::Unreachable(why) => match state.entries.peek(&digest) {
                Some(
                    entry @ Entry {
                        answer: Answer::Active(_),
                        ..
                    },
                ) if now.duration_since(entry.at)
                    < self.lifetimes.positive + self.lifetimes.stale_grace =>
                {
                    tracing::warn!(%why, "control plane unreachable: serving an expired answer within its grace");
                    Ok(entry.answer.clone())
                }
                _ => Err(Unavailable(why)),
            },
        }
    }

    #[allow(clippy::disallowed_types)]
    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        // Poisoned only by a panic while holding it; the maps stay consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
