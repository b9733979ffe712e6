//! The cache rules on paused time, with a counting fake fetch.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proto::{Backoff, Secret};
use tokio::time::Instant;

use super::*;

fn token(value: &str, lifetime: Duration) -> CachedToken {
    CachedToken {
        token: Secret::new(value),
        expires_at_ms: 0,
        token_type: "Bearer".into(),
        scopes: vec![],
        issued_token_type: String::new(),
        lifetime: Lifetime::new(Instant::now(), Some(lifetime), None),
    }
}

fn cache() -> Arc<TokenCache> {
    Arc::new(TokenCache::new(CacheConfig {
        negative_ttl: Duration::from_secs(15),
        backoff: Backoff::try_new(Duration::from_secs(1), Duration::from_secs(8), 0.0).unwrap(),
        max_exchanged: NonZeroUsize::new(3).unwrap(),
    }))
}

fn key(name: &str) -> Key {
    Key::new(name, &[], &[], None)
}

/// A fetch that counts its calls, takes `delay`, and answers `answer(call number)`.
fn fetcher(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
    answer: fn(usize) -> Result<CachedToken, IdpError>,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<CachedToken, IdpError>> + Send>>
{
    let calls = Arc::clone(calls);
    move || {
        Box::pin(async move {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            answer(n)
        })
    }
}

fn ok(n: usize) -> Result<CachedToken, IdpError> {
    Ok(token(&format!("t{n}"), Duration::from_secs(300)))
}

fn down(_: usize) -> Result<CachedToken, IdpError> {
    Err(IdpError::Transient {
        reason: "HTTP 503".into(),
        retry_after: None,
    })
}

fn rejected(_: usize) -> Result<CachedToken, IdpError> {
    Err(IdpError::ClientRejected {
        reason: "HTTP 401 invalid_client".into(),
    })
}

#[tokio::test(start_paused = true)]
async fn two_hundred_cold_callers_share_one_fetch() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
            tokio::spawn(async move {
                cache
                    .get(&key("c"), fetcher(&calls, Duration::from_millis(100), ok))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().token.expose(), "t0");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_runs_in_the_background_while_the_old_token_is_served() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = Duration::from_secs(5);
    cache
        .get(&key("c"), fetcher(&calls, Duration::ZERO, ok))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(256)).await; // refresh due at 255 s
    let served = cache
        .get(&key("c"), fetcher(&calls, slow, ok))
        .await
        .unwrap();
    assert_eq!(served.token.expose(), "t0", "old token served, no waiting");
    let again = cache
        .get(&key("c"), fetcher(&calls, slow, ok))
        .await
        .unwrap();
    assert_eq!(again.token.expose(), "t0");
    assert_eq!(cache.stats().fetches, 2, "one refresh in flight");
    tokio::time::sleep(slow + Duration::from_millis(1)).await;
    let refreshed = cache
        .get(&key("c"), fetcher(&calls, slow, ok))
        .await
        .unwrap();
    assert_eq!(refreshed.token.expose(), "t1");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn an_outage_serves_the_valid_token_then_fails_fast_with_one_fetch_per_backoff() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    cache
        .get(&key("c"), fetcher(&calls, Duration::ZERO, ok))
        .await
        .unwrap();

    // Refresh due: the refresh fails, the valid token is still served.
    tokio::time::advance(Duration::from_secs(260)).await;
    for _ in 0..50 {
        let served = cache
            .get(&key("c"), fetcher(&calls, Duration::ZERO, down))
            .await
            .unwrap();
        assert_eq!(served.token.expose(), "t0");
        tokio::task::yield_now().await;
    }
    // Expired: never served; callers fail fast while the backoff runs.
    tokio::time::advance(Duration::from_secs(41)).await;
    let before = calls.load(Ordering::SeqCst);
    let started = Instant::now();
    let mut failures = 0;
    for _ in 0..100 {
        if cache
            .get(&key("c"), fetcher(&calls, Duration::ZERO, down))
            .await
            .is_err()
        {
            failures += 1;
        }
    }
    assert_eq!(failures, 100);
    assert!(started.elapsed() < Duration::from_millis(10), "failed fast");
    assert!(
        calls.load(Ordering::SeqCst) - before <= 1,
        "at most one fetch per backoff step"
    );

    // Over 20 s of steady calling the endpoint sees one request per backoff step
    // (1, 2, 4, 8, 8 s ...), not one per call.
    let before = calls.load(Ordering::SeqCst);
    for _ in 0..200 {
        let _ = cache
            .get(&key("c"), fetcher(&calls, Duration::ZERO, down))
            .await;
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    let fetched = calls.load(Ordering::SeqCst) - before;
    assert!((2..=6).contains(&fetched), "{fetched} fetches in 20 s");
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_remembered_briefly() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let error = cache
            .get(&key("c"), fetcher(&calls, Duration::ZERO, rejected))
            .await
            .unwrap_err();
        assert!(matches!(error, IdpError::ClientRejected { .. }));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(16)).await;
    cache
        .get(&key("c"), fetcher(&calls, Duration::ZERO, ok))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_does_not_cancel_the_fetch() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let impatient = tokio::time::timeout(
        Duration::from_millis(10),
        cache.get(&key("c"), fetcher(&calls, Duration::from_millis(100), ok)),
    )
    .await;
    assert!(impatient.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = cache
        .get(&key("c"), fetcher(&calls, Duration::ZERO, ok))
        .await
        .unwrap();
    assert_eq!(later.token.expose(), "t0");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn exchanged_entries_are_bounded_and_keys_separate_subjects() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..5 {
        let subject = Secret::new(format!("subject-{i}"));
        let key = Key::new("x", &[], &[], Some(&subject));
        let got = cache
            .get(&key, fetcher(&calls, Duration::ZERO, ok))
            .await
            .unwrap();
        assert_eq!(
            got.token.expose(),
            format!("t{i}"),
            "each subject gets its own token"
        );
    }
    assert_eq!(cache.exchanged_len(), 3);
    assert_eq!(
        Key::new("x", &["b".into(), "a".into()], &[], None),
        Key::new("x", &["a".into(), "b".into()], &[], None)
    );
}
