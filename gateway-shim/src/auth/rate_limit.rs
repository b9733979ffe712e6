//! Rate limits per caller: a token bucket per owner key, refilled at the caller's rate
//! per minute and holding up to its burst. A call finding the bucket empty is refused
//! with RESOURCE_EXHAUSTED and `grpc-retry-pushback-ms`, the wait until a token is
//! back (the retry helper honours it). The limit comes from what authentication
//! resolved (an API key's plan, else `--rate-limit-per-min`/`--rate-limit-burst`); no
//! store read happens here. Limits are per caller: callers of one tenant never share
//! a bucket.

use std::num::NonZeroUsize;
use std::time::Duration;

// A short lock around the map, never held across an await.
#[allow(clippy::disallowed_types)]
use std::sync::Mutex;

use tokio::time::Instant;

/// A caller's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per minute.
    pub per_min: u32,
    /// Tokens the bucket holds at most (at least 1).
    pub burst: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every caller (bounded: the least recently seen caller's bucket goes
/// first, which can only ever give that caller a full bucket back).
#[derive(Debug)]
pub struct RateLimiter {
    #[allow(clippy::disallowed_types)]
    buckets: Mutex<lru::LruCache<String, Bucket>>,
}

/// How many callers' buckets are kept.
const CALLERS: usize = 100_000;

impl Default for RateLimiter {
    #[allow(clippy::disallowed_types)]
    fn default() -> Self {
        Self {
            buckets: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(CALLERS).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl RateLimiter {
    /// Takes a token for `caller` at `rate`; `Err(wait)` when none is left.
    ///
    /// # Errors
    /// How long until a token is back.
    pub fn take(&self, caller: &str, rate: Rate) -> Result<(), Duration> {
        let capacity = f64::from(rate.burst.max(1));
        let per_sec = f64::from(rate.per_min) / 60.0;
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.get_or_insert_mut(caller.to_owned(), || Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        if per_sec <= 0.0 {
            return Err(Duration::from_secs(60));
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_caller_gets_its_burst_then_its_rate_and_others_are_unaffected() {
        let limiter = RateLimiter::default();
        let rate = Rate {
            per_min: 60,
            burst: 3,
        };
        for _ in 0..3 {
            assert!(limiter.take("key.ci-bot", rate).is_ok());
        }
        let wait = limiter.take("key.ci-bot", rate).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "one token a second");
        assert!(limiter.take("key.other-bot", rate).is_ok(), "per caller");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(limiter.take("key.ci-bot", rate).is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(limiter.take("key.ci-bot", rate).is_ok());
        // Idle long: never more than the burst.
        tokio::time::advance(Duration::from_secs(3600)).await;
        for _ in 0..3 {
            assert!(limiter.take("key.ci-bot", rate).is_ok());
        }
        assert!(limiter.take("key.ci-bot", rate).is_err());
    }
}
