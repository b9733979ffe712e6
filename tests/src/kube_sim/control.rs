//! Test controls of the simulator: an outage (every request 503, watches broken, every
//! resourceVersion expired, as across an API server restart), a stall (requests hang),
//! and a record of every request as RBAC sees it (to check a client's RBAC rules).

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::Response;

use super::http::{Shared, failure};
use super::store::ApiError;

/// A request as RBAC authorizes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    /// The RBAC verb (get, list, watch, create, update, patch, delete, deletecollection).
    pub verb: &'static str,
    /// The resource (pods, secrets, events, namespaces).
    pub resource: String,
    /// The namespace in the path; `None` for cluster-wide requests.
    pub namespace: Option<String>,
}

impl Access {
    fn of(method: &axum::http::Method, path: &str, query: &str) -> Option<Self> {
        use axum::http::Method;
        let parts: Vec<&str> = path
            .strip_prefix("/api/v1/")?
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        let (namespace, resource, named) = match parts.as_slice() {
            ["namespaces", ns, resource] => (Some(*ns), *resource, false),
            ["namespaces", ns, resource, _] => (Some(*ns), *resource, true),
            [resource] => (None, *resource, false),
            [resource, _] => (None, *resource, true),
            _ => return None,
        };
        let watching = query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1");
        let verb = match (method, named) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) if watching => "watch",
            (&Method::GET, false) => "list",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => return None,
        };
        Some(Self {
            verb,
            resource: resource.to_owned(),
            namespace: namespace.map(str::to_owned),
        })
    }
}

impl Shared {
    /// Simulates an API server going down for a restart: open watches end, every
    /// request answers 503 until [`Shared::come_back`], and the history is compacted
    /// so no resourceVersion handed out so far can be resumed from (410 Gone).
    pub async fn go_down(&self) {
        self.down.send_replace(true);
        self.store.lock().await.compact();
    }

    /// While `stalled`, requests other than watches hang without an answer (an
    /// overloaded API server); they go on once it is cleared.
    pub fn stall(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }

    /// Every kind of request served so far, as RBAC sees them (to check that a client's
    /// RBAC rules grant what it uses and nothing more).
    pub async fn accesses(&self) -> BTreeSet<Access> {
        self.audit.lock().await.clone()
    }

    /// Ends a simulated outage.
    pub fn come_back(&self) {
        self.down.send_replace(false);
    }
}

/// The middleware in front of every route: records the request, then refuses it during
/// an outage or holds it during a stall (watches are never held).
pub(super) async fn gate(
    State(s): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if *s.down.borrow() {
        return failure(&ApiError {
            code: 503,
            reason: "ServiceUnavailable",
            message: "the API server is restarting".into(),
        });
    }
    let query = request.uri().query().unwrap_or_default();
    let access = Access::of(request.method(), request.uri().path(), query);
    let watching = access.as_ref().is_some_and(|a| a.verb == "watch");
    if let Some(access) = access {
        s.audit.lock().await.insert(access);
    }
    if !watching {
        let mut stalled = s.stalled.subscribe();
        drop(stalled.wait_for(|stalled| !*stalled).await);
    }
    next.run(request).await
}
