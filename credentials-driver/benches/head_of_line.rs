//! Head-of-line blocking: while the identity provider stalls for 2 s on one
//! credential, what do resolves of the other (cached) credentials cost? Our token cache
//! (a lock per entry, held only to read or update it; fetches run in tasks of their
//! own) beside a reference cache that holds one lock across the identity-provider call
//! (the design of the deployed kagenti driver), both in process with the same fetch,
//! 16 callers resolving 8 other credentials (each caller one call due every 2 ms, open
//! loop) while the stalled fetch is in flight, and the same without a stall. Run:
//! `cargo bench -p credentials-driver --bench head_of_line` (`BENCH_SECONDS`, the
//! window, default 3; the stall is 2 s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use credentials_driver::cache::{CacheConfig, CachedToken, Key, Lifetime, TokenCache};
use credentials_driver::idp::IdpError;
use proto::Secret;
use tokio::time::Instant;

const CALLERS: usize = 16;
const OTHERS: usize = 8;
/// Each caller's calls are due this often.
const INTERVAL: Duration = Duration::from_millis(2);
/// How long the identity provider stalls.
const STALL: Duration = Duration::from_secs(2);

fn token(value: &str) -> CachedToken {
    CachedToken {
        token: Secret::new(value),
        expires_at_ms: 0,
        token_type: "Bearer".into(),
        scopes: vec![],
        issued_token_type: String::new(),
        lifetime: Lifetime::new(Instant::now(), Some(Duration::from_secs(3600)), None),
    }
}

/// The identity provider: `stalled` answers after `stall`, any other at once.
fn fetch(
    name: String,
    stall: Duration,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<CachedToken, IdpError>> + Send>>
{
    move || {
        Box::pin(async move {
            if name == "stalled" {
                tokio::time::sleep(stall).await;
            }
            Ok(token(&format!("token-{name}")))
        })
    }
}

/// The reference: one lock over the map, held across the identity-provider call.
#[derive(Default)]
struct GlobalLockCache {
    tokens: tokio::sync::Mutex<HashMap<String, CachedToken>>,
}

impl GlobalLockCache {
    async fn get(&self, name: &str, stall: Duration) -> CachedToken {
        let mut tokens = self.tokens.lock().await;
        if let Some(token) = tokens.get(name) {
            return token.clone();
        }
        let token = fetch(name.to_owned(), stall)().await.unwrap();
        tokens.insert(name.to_owned(), token.clone());
        token
    }
}

#[derive(Clone)]
enum Cache {
    Ours(Arc<TokenCache>),
    GlobalLock(Arc<GlobalLockCache>),
}

impl Cache {
    async fn get(&self, name: &str, stall: Duration) -> CachedToken {
        match self {
            Self::Ours(cache) => cache
                .get(
                    &Key::new(name, &[], &[], None),
                    fetch(name.to_owned(), stall),
                )
                .await
                .unwrap(),
            Self::GlobalLock(cache) => cache.get(name, stall).await,
        }
    }
}

/// p50, p99 and max latency of the other credentials' resolves over `length`, with
/// or without a stalled fetch started first. Open loop: each caller has a call due
/// every `INTERVAL`; a call issued behind schedule (its caller was blocked) counts from
/// when it was due, so a blocked caller's missed calls are not left out.
async fn run(cache: &Cache, stall: Option<Duration>, length: Duration) -> [Duration; 3] {
    for i in 0..OTHERS {
        cache.get(&format!("other-{i}"), Duration::ZERO).await;
    }
    let stalled = stall.map(|stall| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get("stalled", stall).await })
    });
    // Let the stalled fetch begin (and, for the reference, take the lock).
    tokio::time::sleep(Duration::from_millis(10)).await;
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                for k in 0u32.. {
                    let due = start + INTERVAL * k;
                    if due >= start + length {
                        break;
                    }
                    tokio::time::sleep_until(due).await;
                    let issued = Instant::now();
                    let from = if issued > due + INTERVAL { due } else { issued };
                    let name = format!("other-{}", (caller + k as usize) % OTHERS);
                    cache.get(&name, Duration::ZERO).await;
                    samples.push(from.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    if let Some(stalled) = stalled {
        stalled.await.unwrap();
    }
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    [at(0.5), at(0.99), all[all.len() - 1]]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let length = Duration::from_secs(seconds);
    println!(
        "\n## head of line: resolves of {OTHERS} cached credentials by {CALLERS} callers over {length:?}, \
         with and without the identity provider stalled for {STALL:?} on another\n"
    );
    println!("| cache | stall | p50 | p99 | max | p99 added by the stall |");
    println!("|---|---|---:|---:|---:|---:|");
    for (label, make) in [
        ("ours (lock per entry)", 0),
        ("reference (one lock across the IdP call)", 1),
    ] {
        let fresh = || match make {
            0 => Cache::Ours(Arc::new(TokenCache::new(CacheConfig::default()))),
            _ => Cache::GlobalLock(Arc::default()),
        };
        let [b50, b99, bmax] = run(&fresh(), None, length).await;
        let [s50, s99, smax] = run(&fresh(), Some(STALL), length).await;
        println!("| {label} | none | {b50:.1?} | {b99:.1?} | {bmax:.1?} | |");
        println!(
            "| {label} | {STALL:?} | {s50:.1?} | {s99:.1?} | {smax:.1?} | {:.1?} |",
            s99.saturating_sub(b99)
        );
    }
}
