//! The driver's metrics beyond RPC counts: token cache hits, misses and fetches, and
//! identity-provider requests by outcome with a latency histogram.

// The histogram's lock is held for one update, never across `.await`.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proto::admin::Collector;

use crate::cache::TokenCache;
use crate::idp::IdpError;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Default)]
struct Counts {
    outcomes: BTreeMap<&'static str, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Identity-provider request outcomes and latencies.
#[derive(Clone, Debug, Default)]
pub struct IdpMetrics {
    counts: Arc<Mutex<Counts>>,
}

/// The metrics label of an outcome.
pub fn outcome(result: &Result<(), &IdpError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(IdpError::ClientRejected { .. }) => "client_rejected",
        Err(IdpError::Misconfigured { .. }) => "misconfigured",
        Err(IdpError::SubjectRejected { .. }) => "subject_rejected",
        Err(IdpError::AccessDenied { .. }) => "access_denied",
        Err(IdpError::Transient { .. }) => "transient",
        Err(IdpError::Unreachable { .. }) => "unreachable",
        Err(IdpError::BadResponse { .. }) => "bad_response",
    }
}

impl IdpMetrics {
    /// Records one request.
    pub fn record(&self, outcome: &'static str, latency: Duration) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.outcomes.entry(outcome).or_default() += 1;
        let seconds = latency.as_secs_f64();
        for (bucket, bound) in counts.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        counts.count += 1;
        counts.sum += seconds;
    }
}

/// Renders cache and identity-provider metrics at scrape time.
#[derive(Debug)]
pub struct CredentialsCollector {
    /// The token cache.
    pub cache: Arc<TokenCache>,
    /// The identity-provider metrics.
    pub idp: IdpMetrics,
}

#[tonic::async_trait]
impl Collector for CredentialsCollector {
    async fn collect(&self, out: &mut String) {
        let stats = self.cache.stats();
        for (name, help, value) in [
            ("hits", "Resolves served from the token cache.", stats.hits),
            (
                "misses",
                "Resolves that waited for a token fetch.",
                stats.misses,
            ),
            (
                "fetches",
                "Token fetches started (first fetches and refreshes).",
                stats.fetches,
            ),
        ] {
            let _ = writeln!(out, "# HELP credentials_driver_cache_{name}_total {help}");
            let _ = writeln!(out, "# TYPE credentials_driver_cache_{name}_total counter");
            let _ = writeln!(out, "credentials_driver_cache_{name}_total {value}");
        }
        let counts = self
            .idp
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP credentials_driver_idp_requests_total Token endpoint requests by outcome."
        );
        let _ = writeln!(out, "# TYPE credentials_driver_idp_requests_total counter");
        for (outcome, count) in &counts.outcomes {
            let _ = writeln!(
                out,
                "credentials_driver_idp_requests_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        let name = "credentials_driver_idp_request_seconds";
        let _ = writeln!(out, "# HELP {name} Token endpoint request latency.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (count, bound) in counts.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", counts.count);
        let _ = writeln!(out, "{name}_sum {}", counts.sum);
        let _ = writeln!(out, "{name}_count {}", counts.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_outcomes_and_a_cumulative_histogram() {
        let idp = IdpMetrics::default();
        idp.record("ok", Duration::from_millis(3));
        idp.record("ok", Duration::from_millis(30));
        idp.record("transient", Duration::from_secs(10));
        let collector = CredentialsCollector {
            cache: Arc::new(TokenCache::new(crate::cache::CacheConfig::default())),
            idp,
        };
        let mut out = String::new();
        collector.collect(&mut out).await;
        assert!(
            out.contains("credentials_driver_idp_requests_total{outcome=\"ok\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("credentials_driver_idp_request_seconds_bucket{le=\"0.005\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("credentials_driver_idp_request_seconds_bucket{le=\"0.05\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("credentials_driver_idp_request_seconds_bucket{le=\"+Inf\"} 3"),
            "{out}"
        );
        assert!(
            out.contains("credentials_driver_cache_hits_total 0"),
            "{out}"
        );
    }
}
