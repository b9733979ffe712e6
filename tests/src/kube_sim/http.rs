//! The simulator's HTTP front end: the core/v1 paths the compute driver uses, as the
//! API server serves them (lists with `resourceVersion`, `labelSelector`, `watch=true`
//! streams of JSON lines with bookmarks and a 410 `ERROR` event for expired versions,
//! merge patches, `Status` bodies for errors), over plain HTTP on loopback.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use super::selector::Selector;
use super::store::{ApiError, Store};

/// How many changes watches can resume from.
const HISTORY: usize = 10_000;

/// Shared state of a running simulator.
#[derive(Clone, Debug)]
pub struct Shared {
    pub(super) store: Arc<Mutex<Store>>,
    pub(super) changed: watch::Sender<u64>,
    /// True while the simulated API server is down.
    pub(super) down: watch::Sender<bool>,
    /// True while requests other than watches hang.
    pub(super) stalled: watch::Sender<bool>,
    /// Every kind of request served, as RBAC sees them.
    pub(super) audit: Arc<Mutex<BTreeSet<super::control::Access>>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            store: Arc::new(Mutex::new(Store::new(HISTORY))),
            changed: watch::channel(0).0,
            down: watch::channel(false).0,
            stalled: watch::channel(false).0,
            audit: Arc::default(),
        }
    }
}

impl Shared {
    /// Wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Reads the store (wakes nobody).
    pub async fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&*self.store.lock().await)
    }

    /// Runs `f` on the store and wakes the watches.
    pub async fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self.store.lock().await;
        let result = f(&mut store);
        self.changed.send_replace(store.version());
        result
    }
}

/// The router serving `shared`.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/api/v1/{resource}", get(list_or_watch).post(create))
        .route(
            "/api/v1/{resource}/{name}",
            get(get_one).put(replace).patch(patch).delete(delete),
        )
        .route(
            "/api/v1/namespaces/{namespace}/{resource}",
            get(list_or_watch).post(create),
        )
        .route(
            "/api/v1/namespaces/{namespace}/{resource}/{name}",
            get(get_one).put(replace).patch(patch).delete(delete),
        )
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            super::control::gate,
        ))
        .with_state(shared)
}

/// Serves on `addr` until the task is dropped; returns the bound address.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    shared: Shared,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(shared);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

fn reply(result: Result<Value, ApiError>, created: bool) -> Response {
    match result {
        Ok(object) if created => (StatusCode::CREATED, axum::Json(object)).into_response(),
        Ok(object) => axum::Json(object).into_response(),
        Err(error) => failure(&error),
    }
}

pub(super) fn failure(error: &ApiError) -> Response {
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(error.status())).into_response()
}

fn body(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError {
        code: 400,
        reason: "BadRequest",
        message: format!("the body is not JSON: {e}"),
    })
}

async fn version() -> Response {
    axum::Json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-openshell-sim", "platform": "linux/amd64"}))
        .into_response()
}

/// Path parameters of both layouts: cluster-scoped (`/api/v1/{resource}[/{name}]`) and
/// namespaced (`/api/v1/namespaces/{namespace}/{resource}[/{name}]`).
type Params = Path<HashMap<String, String>>;

fn param<'a>(params: &'a HashMap<String, String>, key: &str) -> &'a str {
    params.get(key).map_or("", String::as_str)
}

async fn create(State(s): State<Shared>, Path(p): Params, bytes: Bytes) -> Response {
    let result = match body(&bytes) {
        Ok(object) => {
            s.with_store(|store| {
                store.create(param(&p, "resource"), param(&p, "namespace"), object)
            })
            .await
        }
        Err(error) => Err(error),
    };
    reply(result, true)
}

async fn get_one(State(s): State<Shared>, Path(p): Params) -> Response {
    let found = s
        .read(|store| {
            store.get(
                param(&p, "resource"),
                param(&p, "namespace"),
                param(&p, "name"),
            )
        })
        .await;
    reply(found, false)
}

async fn replace(State(s): State<Shared>, Path(p): Params, bytes: Bytes) -> Response {
    let (resource, namespace, name) = (
        param(&p, "resource"),
        param(&p, "namespace"),
        param(&p, "name"),
    );
    let result = match body(&bytes) {
        Ok(object) => {
            s.with_store(|store| store.replace(resource, namespace, name, object))
                .await
        }
        Err(error) => Err(error),
    };
    reply(result, false)
}

/// Merge, strategic-merge and apply patches are all applied as JSON merge patches:
/// enough for the objects the driver writes (no lists merged by key).
async fn patch(State(s): State<Shared>, Path(p): Params, bytes: Bytes) -> Response {
    let (resource, namespace, name) = (
        param(&p, "resource"),
        param(&p, "namespace"),
        param(&p, "name"),
    );
    let result = match body(&bytes) {
        Ok(patch) => {
            s.with_store(|store| store.merge_patch(resource, namespace, name, &patch))
                .await
        }
        Err(error) => Err(error),
    };
    reply(result, false)
}

async fn delete(State(s): State<Shared>, Path(p): Params) -> Response {
    let (resource, namespace, name) = (
        param(&p, "resource"),
        param(&p, "namespace"),
        param(&p, "name"),
    );
    reply(
        s.with_store(|store| store.delete(resource, namespace, name))
            .await,
        false,
    )
}

async fn list_or_watch(
    State(s): State<Shared>,
    Path(p): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let namespace = p.get("namespace").cloned();
    list_or_watch_in(s, param(&p, "resource").to_owned(), namespace, query).await
}

async fn list_or_watch_in(
    s: Shared,
    resource: String,
    namespace: Option<String>,
    query: HashMap<String, String>,
) -> Response {
    let selector = Selector::parse(query.get("labelSelector").map_or("", String::as_str))
        .and_then(|s| s.with_fields(query.get("fieldSelector").map_or("", String::as_str)));
    let selector = match selector {
        Ok(selector) => selector,
        Err(message) => {
            return failure(&ApiError {
                code: 400,
                reason: "BadRequest",
                message,
            });
        }
    };
    if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
        return super::watch::stream(s, resource, namespace, selector, &query).await;
    }
    // Paging as the API server does: the continue token carries the first page's
    // resourceVersion (reported by every page) and the last object returned.
    let resumed = query.get("continue").and_then(|t| t.split_once(':'));
    let after = resumed.and_then(|(_, key)| key.split_once('/'));
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let store = s.store.lock().await;
    let version = resumed
        .and_then(|(v, _)| v.parse().ok())
        .unwrap_or(store.version());
    let listed = store.list_page(&resource, namespace.as_deref(), &selector, after, limit);
    drop(store);
    match listed {
        Ok(page) => {
            let kind = page
                .items
                .first()
                .and_then(|i| i["kind"].as_str())
                .map_or_else(|| list_kind(&resource), |k| format!("{k}List"));
            let mut metadata = json!({"resourceVersion": version.to_string()});
            if page.more
                && let Some(last) = page.items.last()
            {
                let key = format!(
                    "{}/{}",
                    last["metadata"]["namespace"].as_str().unwrap_or_default(),
                    last["metadata"]["name"].as_str().unwrap_or_default()
                );
                metadata["continue"] = json!(format!("{version}:{key}"));
                if let Some(remaining) = page.remaining {
                    metadata["remainingItemCount"] = json!(remaining);
                }
            }
            axum::Json(json!({
                "kind": kind, "apiVersion": "v1", "metadata": metadata, "items": page.items,
            }))
            .into_response()
        }
        Err(error) => failure(&error),
    }
}

pub(super) fn list_kind(resource: &str) -> String {
    super::store::RESOURCES
        .iter()
        .find(|(name, _, _)| *name == resource)
        .map_or_else(|| "List".to_owned(), |(_, kind, _)| format!("{kind}List"))
}
