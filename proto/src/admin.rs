//! The admin HTTP endpoint every binary serves for kubelet probes and Prometheus:
//! `/healthz` (the process is alive), `/readyz` (its gRPC health is SERVING) and
//! `/metrics` (text exposition format).

// The counter map's lock is held for one update, never across `.await`: a plain mutex
// is the right tool here.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::uds::Health;

/// Adds gauges computed at scrape time (e.g. sandboxes by phase).
#[tonic::async_trait]
pub trait Collector: Send + Sync + 'static {
    /// Appends metric lines (with their `# TYPE` headers) to `out`.
    async fn collect(&self, out: &mut String);
}

/// RPC counters by method and code, plus scrape-time collectors.
#[derive(Clone)]
pub struct Metrics {
    prefix: &'static str,
    rpcs: Arc<Mutex<BTreeMap<(&'static str, &'static str), u64>>>,
    collectors: Arc<Vec<Arc<dyn Collector>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics named `<prefix>_...`, e.g. `compute_driver`.
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            rpcs: Arc::default(),
            collectors: Arc::new(Vec::new()),
        }
    }

    /// These metrics plus a scrape-time collector.
    pub fn with_collector(mut self, collector: Arc<dyn Collector>) -> Self {
        let mut collectors: Vec<_> = self.collectors.iter().cloned().collect();
        collectors.push(collector);
        self.collectors = Arc::new(collectors);
        self
    }

    /// Counts one finished RPC.
    pub fn record_rpc(&self, method: &'static str, code: tonic::Code) {
        let mut rpcs = self.rpcs.lock().unwrap_or_else(PoisonError::into_inner);
        *rpcs.entry((method, code_name(code))).or_default() += 1;
    }

    /// The text exposition of every metric.
    pub async fn render(&self) -> String {
        let mut out = String::new();
        let name = format!("{}_rpc_total", self.prefix);
        let _ = writeln!(
            out,
            "# HELP {name} Finished RPCs by method and status code."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        let rpcs = self
            .rpcs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((method, code), count) in rpcs {
            let _ = writeln!(out, "{name}{{method=\"{method}\",code=\"{code}\"}} {count}");
        }
        for collector in self.collectors.iter() {
            collector.collect(&mut out).await;
        }
        out
    }
}

/// The canonical name of `code` (`OK`, `NOT_FOUND`, ...).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: Metrics,
    health: Health,
}

/// Binds `addr` for the admin endpoint.
///
/// # Errors
/// The OS error, with the address in the message.
pub async fn bind_admin(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("admin address {addr}: {e}")))
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `listener` until `shutdown`.
///
/// # Errors
/// The server's I/O error.
pub async fn serve_admin<F>(
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_admin_with(listener, metrics, health, Router::new(), shutdown).await
}

/// [`serve_admin`] plus the binary's own `routes` (e.g. an internal API).
///
/// # Errors
/// The server's I/O error.
pub async fn serve_admin_with<F>(
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    routes: Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { metrics, health })
        .merge(routes);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A running admin endpoint (or none), stopped with [`AdminServer::stop`].
#[derive(Debug)]
pub struct AdminServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl AdminServer {
    /// Serves the admin endpoint on `addr` when given; otherwise does nothing.
    ///
    /// # Errors
    /// The OS error when `addr` cannot be bound (the message names it).
    pub async fn start(
        addr: Option<SocketAddr>,
        metrics: Metrics,
        health: Health,
    ) -> std::io::Result<Self> {
        Self::start_with(addr, metrics, health, Router::new()).await
    }

    /// [`AdminServer::start`] serving `routes` beside the admin endpoint's own.
    ///
    /// # Errors
    /// The OS error when `addr` cannot be bound (the message names it).
    pub async fn start_with(
        addr: Option<SocketAddr>,
        metrics: Metrics,
        health: Health,
        routes: Router,
    ) -> std::io::Result<Self> {
        let Some(addr) = addr else {
            return Ok(Self {
                stop: None,
                task: None,
            });
        };
        let listener = bind_admin(addr).await?;
        // The bound address (not the flag's): port 0 picks a free one.
        let addr = listener.local_addr().unwrap_or(addr);
        tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_admin_with(listener, metrics, health, routes, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.health.is_serving() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
    }
}

async fn metrics_text(
    State(state): State<AdminState>,
) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render().await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_rpcs_by_method_and_code() {
        let metrics = Metrics::new("demo");
        metrics.record_rpc("Get", tonic::Code::Ok);
        metrics.record_rpc("Get", tonic::Code::Ok);
        metrics.record_rpc("Get", tonic::Code::NotFound);
        let text = metrics.render().await;
        assert!(
            text.contains("demo_rpc_total{method=\"Get\",code=\"OK\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("demo_rpc_total{method=\"Get\",code=\"NOT_FOUND\"} 1"),
            "{text}"
        );
    }
}
