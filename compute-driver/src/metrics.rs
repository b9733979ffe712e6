//! The driver's metrics: RPCs by method and code (counted by the service) and
//! sandboxes by phase (collected from the backend at scrape time).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use proto::admin::Collector;
use proto::phase::phase_of;

use crate::backend::Backend;

pub use proto::admin::Metrics;

/// Counts sandboxes by phase, derived from their conditions as gateways do.
pub struct PhaseCollector {
    backend: Arc<dyn Backend>,
}

impl PhaseCollector {
    /// A collector over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }
}

#[tonic::async_trait]
impl Collector for PhaseCollector {
    async fn collect(&self, out: &mut String) {
        let Ok(sandboxes) = self.backend.list().await else {
            return;
        };
        let mut counts = BTreeMap::new();
        for sandbox in &sandboxes {
            *counts.entry(phase_of(sandbox).as_str()).or_insert(0u64) += 1;
        }
        let _ = writeln!(out, "# HELP compute_driver_sandboxes Sandboxes by phase.");
        let _ = writeln!(out, "# TYPE compute_driver_sandboxes gauge");
        for (phase, count) in counts {
            let _ = writeln!(out, "compute_driver_sandboxes{{phase=\"{phase}\"}} {count}");
        }
    }
}
