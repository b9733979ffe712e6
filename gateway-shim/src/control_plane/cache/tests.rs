//! Each rule of the cache on a paused clock, with a fetch that counts its requests.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

fn plan() -> Plan {
    Plan {
        consumer: "ci-bot".into(),
        tenant: "acme".into(),
        rate_per_min: 60,
        burst: 10,
    }
}

/// A control plane whose next answer the test sets, counting requests.
#[derive(Clone)]
#[allow(clippy::disallowed_types)]
struct Peer {
    answer: Arc<std::sync::Mutex<Fetched>>,
    requests: Arc<AtomicUsize>,
    latency: Duration,
}

#[allow(clippy::disallowed_types)]
impl Peer {
    fn new(answer: Fetched) -> Self {
        Self {
            answer: Arc::new(std::sync::Mutex::new(answer)),
            requests: Arc::new(AtomicUsize::new(0)),
            latency: Duration::ZERO,
        }
    }

    fn set(&self, answer: Fetched) {
        *self.answer.lock().unwrap() = answer;
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    async fn ask(&self, cache: &Arc<ResolveCache>, digest: Digest) -> Outcome {
        let peer = self.clone();
        cache
            .resolve(digest, move || async move {
                peer.requests.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(peer.latency).await;
                peer.answer.lock().unwrap().clone()
            })
            .await
    }
}

fn cache(capacity: usize) -> Arc<ResolveCache> {
    ResolveCache::new(Lifetimes::default(), NonZeroUsize::new(capacity).unwrap())
}

const KEY: Digest = [7; 32];
fn active() -> Fetched {
    Fetched::Answer(KeyAnswer::Active(plan()))
}
fn inactive() -> Fetched {
    Fetched::Answer(KeyAnswer::Refused("inactive".into()))
}
fn down() -> Fetched {
    Fetched::Unreachable("503".into())
}

#[tokio::test(start_paused = true)]
async fn a_hit_makes_no_request_until_the_positive_lifetime_ends() {
    let (cache, peer) = (cache(10), Peer::new(active()));
    assert_eq!(peer.ask(&cache, KEY).await, Ok(KeyAnswer::Active(plan())));
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(peer.ask(&cache, KEY).await.is_ok());
    assert_eq!(peer.requests(), 1, "a hit makes no request");
    // Revocation shows once the 60 s are over.
    peer.set(inactive());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        peer.ask(&cache, KEY).await,
        Ok(KeyAnswer::Refused("inactive".into()))
    );
    assert_eq!(peer.requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn refusals_are_cached_fifteen_seconds() {
    let (cache, peer) = (cache(10), Peer::new(inactive()));
    assert!(matches!(
        peer.ask(&cache, KEY).await,
        Ok(KeyAnswer::Refused(_))
    ));
    peer.set(active());
    tokio::time::advance(Duration::from_secs(14)).await;
    assert!(matches!(
        peer.ask(&cache, KEY).await,
        Ok(KeyAnswer::Refused(_))
    ));
    assert_eq!(peer.requests(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(peer.ask(&cache, KEY).await, Ok(KeyAnswer::Active(plan())));
    assert_eq!(peer.requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_outage_serves_an_expired_active_answer_for_three_hundred_seconds_only() {
    let (cache, peer) = (cache(10), Peer::new(active()));
    peer.ask(&cache, KEY).await.unwrap();
    peer.set(down());
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(peer.ask(&cache, KEY).await, Ok(KeyAnswer::Active(plan())));
    tokio::time::advance(Duration::from_secs(298)).await; // 359 s after the answer
    assert_eq!(peer.ask(&cache, KEY).await, Ok(KeyAnswer::Active(plan())));
    tokio::time::advance(Duration::from_secs(1)).await; // 360 s
    assert!(
        peer.ask(&cache, KEY).await.is_err(),
        "never past 300 s of grace"
    );
    assert_eq!(peer.requests(), 4, "every expired lookup asked again");
}

#[tokio::test(start_paused = true)]
async fn a_definitive_answer_replaces_the_entry_at_once_and_refusals_never_go_stale() {
    let (cache, peer) = (cache(10), Peer::new(active()));
    peer.ask(&cache, KEY).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    // The control plane answers again: inactive. No stale answer after that.
    peer.set(inactive());
    assert!(matches!(
        peer.ask(&cache, KEY).await,
        Ok(KeyAnswer::Refused(_))
    ));
    peer.set(down());
    tokio::time::advance(Duration::from_secs(16)).await;
    assert!(
        peer.ask(&cache, KEY).await.is_err(),
        "an expired refusal is not served during an outage, and the old active answer is gone"
    );
    // Nothing cached at all: an outage is an error, never a guess.
    let other = [9; 32];
    assert!(peer.ask(&cache, other).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_cold_resolves_make_one_request() {
    let mut peer = Peer::new(active());
    peer.latency = Duration::from_millis(50);
    let cache = cache(10);
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (cache, peer) = (Arc::clone(&cache), peer.clone());
        callers.spawn(async move { peer.ask(&cache, KEY).await });
    }
    while let Some(answer) = callers.join_next().await {
        assert_eq!(answer.unwrap(), Ok(KeyAnswer::Active(plan())));
    }
    assert_eq!(peer.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_finishes_for_the_others_when_its_first_caller_gives_up() {
    let mut peer = Peer::new(active());
    peer.latency = Duration::from_millis(100);
    let cache = cache(10);
    let first = tokio::time::timeout(Duration::from_millis(10), peer.ask(&cache, KEY)).await;
    assert!(first.is_err(), "the first caller gave up");
    assert_eq!(peer.ask(&cache, KEY).await, Ok(KeyAnswer::Active(plan())));
    assert_eq!(
        peer.requests(),
        1,
        "the second caller joined the first's request"
    );
}

#[tokio::test(start_paused = true)]
async fn the_size_bound_evicts_the_least_recently_used_entry_alone() {
    let (cache, peer) = (cache(3), Peer::new(active()));
    for digest in [[1; 32], [2; 32], [3; 32]] {
        peer.ask(&cache, digest).await.unwrap();
    }
    peer.ask(&cache, [1; 32]).await.unwrap(); // 1 is now the most recent
    peer.ask(&cache, [4; 32]).await.unwrap(); // evicts 2 only
    assert_eq!(cache.len(), 3);
    assert_eq!(peer.requests(), 4);
    for digest in [[1; 32], [3; 32], [4; 32]] {
        peer.ask(&cache, digest).await.unwrap();
    }
    assert_eq!(peer.requests(), 4, "1, 3 and 4 are still held");
    peer.ask(&cache, [2; 32]).await.unwrap();
    assert_eq!(peer.requests(), 5, "2 was evicted");
}
