//! A control-plane test peer: the small HTTP contract the gateway speaks to an
//! external control plane (`GET /internal/keys/resolve?sha256=<hex>` and
//! `GET /internal/tenants/<id>/provider-env`), over TCP and over a Unix socket, checking `x-internal-secret` (403 without it), counting
//! requests and injecting faults: added latency, 5xx replies, refused connections
//! (stopped), and keys flipped inactive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::Mutex;

/// What the peer knows of one key (by the hex SHA-256 of the key).
#[derive(Clone, Debug)]
pub struct KeyRecord {
    /// Active or not.
    pub active: bool,
    /// The consumer.
    pub consumer: String,
    /// The tenant.
    pub tenant: String,
    /// Requests per minute.
    pub rate_per_min: u32,
    /// Burst.
    pub burst: u32,
}

impl KeyRecord {
    /// An active key of `consumer` in `tenant` with no rate limit of its own.
    pub fn active(consumer: &str, tenant: &str) -> Self {
        Self {
            active: true,
            consumer: consumer.into(),
            tenant: tenant.into(),
            rate_per_min: 0,
            burst: 0,
        }
    }
}

#[derive(Default)]
struct Inner {
    secret: String,
    keys: Mutex<HashMap<String, KeyRecord>>,
    envs: Mutex<HashMap<String, HashMap<String, String>>>,
    requests: AtomicUsize,
    env_requests: AtomicUsize,
    latency_ms: AtomicU64,
    fail_with: AtomicU16,
}

/// A running peer (stopped when dropped).
pub struct ControlPlanePeer {
    inner: Arc<Inner>,
    /// The TCP address (`http://` base URL: [`ControlPlanePeer::url`]).
    pub addr: SocketAddr,
    /// The Unix socket it also serves.
    pub socket: PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ControlPlanePeer {
    /// Serves on a loopback port and on `socket`, requiring `secret`.
    ///
    /// # Errors
    /// When it cannot bind.
    pub async fn start(secret: &str, socket: &Path) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            secret: secret.to_owned(),
            ..Inner::default()
        });
        let app = Router::new()
            .route("/internal/keys/resolve", get(resolve))
            .route("/internal/tenants/{tenant}/provider-env", get(provider_env))
            .with_state(Arc::clone(&inner));
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = tcp.local_addr()?;
        let _ = std::fs::remove_file(socket);
        let unix = tokio::net::UnixListener::bind(socket)?;
        let tasks = vec![
            tokio::spawn({
                let app = app.clone();
                async move {
                    let _ = axum::serve(tcp, app).await;
                }
            }),
            tokio::spawn(async move {
                let _ = axum::serve(unix, app).await;
            }),
        ];
        Ok(Self {
            inner,
            addr,
            socket: socket.to_owned(),
            tasks,
        })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Knows `key` (the key itself; stored by its digest, as the contract says).
    pub async fn put_key(&self, key: &str, record: KeyRecord) {
        self.inner.keys.lock().await.insert(hex_sha256(key), record);
    }

    /// Flips `key` active or inactive.
    pub async fn set_active(&self, key: &str, active: bool) {
        if let Some(record) = self.inner.keys.lock().await.get_mut(&hex_sha256(key)) {
            record.active = active;
        }
    }

    /// Sets `tenant`'s provider-env (its own provider keys by env name).
    pub async fn put_tenant_env(&self, tenant: &str, env: &[(&str, &str)]) {
        let env = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        self.inner.envs.lock().await.insert(tenant.to_owned(), env);
    }

    /// Provider-env requests answered (or refused) so far.
    pub fn env_requests(&self) -> usize {
        self.inner.env_requests.load(Ordering::SeqCst)
    }

    /// Requests answered (or refused) so far.
    pub fn requests(&self) -> usize {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Every reply waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.inner.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// Every reply is this status (0: normal replies again).
    pub fn fail_with(&self, status: u16) {
        self.inner.fail_with.store(status, Ordering::SeqCst);
    }

    /// Stops serving: connections are refused from now on.
    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for ControlPlanePeer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The lowercase hex SHA-256 of `key`.
pub fn hex_sha256(key: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn resolve(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(refusal) = faults_and_secret(&inner, &headers).await {
        return refusal;
    }
    let Some(digest) = query.get("sha256") else {
        return (StatusCode::BAD_REQUEST, "sha256 is required").into_response();
    };
    match inner.keys.lock().await.get(digest) {
        Some(record) => axum::Json(json!({
            "active": record.active,
            "consumer": record.consumer,
            "tenant_id": record.tenant,
            "rate_per_min": record.rate_per_min,
            "burst": record.burst,
        }))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn provider_env(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    axum::extract::Path(tenant): axum::extract::Path<String>,
) -> Response {
    inner.env_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(refusal) = faults_and_secret(&inner, &headers).await {
        return refusal;
    }
    match inner.envs.lock().await.get(&tenant) {
        Some(env) => axum::Json(json!({ "env": env })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The injected latency and failure, then the secret check: a reply when the request
/// is not answered normally.
async fn faults_and_secret(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    let latency = inner.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let status = inner.fail_with.load(Ordering::SeqCst);
    if status != 0 {
        return Some(
            StatusCode::from_u16(status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response(),
        );
    }
    if headers
        .get("x-internal-secret")
        .and_then(|v| v.to_str().ok())
        != Some(&inner.secret)
    {
        return Some(StatusCode::FORBIDDEN.into_response());
    }
    None
}
