//! When a cached token is fresh, due for refresh, or expired: pure functions of the
//! token's lifetime and `now` (monotonic time).

use std::time::Duration;

use tokio::time::Instant;

/// Refresh this long before expiry: 15 % of the lifetime, clamped to 10-60 s, and never
/// more than half the lifetime (so short-lived tokens are still served for a while).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    lifetime
        .mul_f64(0.15)
        .clamp(Duration::from_secs(10), Duration::from_secs(60))
        .min(lifetime / 2)
}

/// Where a token stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, and refresh in the background.
    RefreshDue,
    /// Never serve it.
    Expired,
}

/// The times that decide a token's freshness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// Refresh from here on (`None`: never).
    pub refresh_at: Option<Instant>,
    /// Never serve from here on (`None`: never expires).
    pub expires_at: Option<Instant>,
}

impl Lifetime {
    /// A token received at `received` that lives `lifetime` (None: forever), and must
    /// not outlive `bound` (an exchanged token's subject token expiry).
    pub fn new(received: Instant, lifetime: Option<Duration>, bound: Option<Instant>) -> Self {
        let natural = lifetime.map(|l| received + l);
        let expires_at = match (natural, bound) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let refresh_at = expires_at.map(|at| {
            let span = at.saturating_duration_since(received);
            at - refresh_margin(span)
        });
        Self {
            refresh_at,
            expires_at,
        }
    }

    /// Where the token stands at `now`.
    pub fn freshness(&self, now: Instant) -> Freshness {
        match (self.expires_at, self.refresh_at) {
            (Some(expires), _) if now >= expires => Freshness::Expired,
            (_, Some(refresh)) if now >= refresh => Freshness::RefreshDue,
            _ => Freshness::Fresh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn margins_are_clamped() {
        assert_eq!(refresh_margin(s(300)), s(45));
        assert_eq!(refresh_margin(s(3600)), s(60));
        assert_eq!(refresh_margin(s(40)), s(10));
        assert_eq!(
            refresh_margin(s(8)),
            s(4),
            "never more than half the lifetime"
        );
    }

    #[test]
    fn fresh_then_due_then_expired() {
        let t0 = Instant::now();
        let life = Lifetime::new(t0, Some(s(300)), None);
        assert_eq!(life.freshness(t0 + s(254)), Freshness::Fresh);
        assert_eq!(life.freshness(t0 + s(255)), Freshness::RefreshDue);
        assert_eq!(life.freshness(t0 + s(300)), Freshness::Expired);
    }

    #[test]
    fn an_exchanged_token_never_outlives_its_subject() {
        let t0 = Instant::now();
        let life = Lifetime::new(t0, Some(s(300)), Some(t0 + s(100)));
        assert_eq!(life.expires_at, Some(t0 + s(100)));
        assert_eq!(life.freshness(t0 + s(100)), Freshness::Expired);
    }

    #[test]
    fn tokens_without_expiry_stay_fresh() {
        let t0 = Instant::now();
        assert_eq!(
            Lifetime::new(t0, None, None).freshness(t0 + s(1_000_000)),
            Freshness::Fresh
        );
    }
}
