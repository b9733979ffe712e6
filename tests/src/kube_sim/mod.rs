//! A Kubernetes API simulator for testing the compute driver's Kubernetes backend where
//! no API server can run. This first part is sans-IO: the object store (core/v1
//! namespaces, pods, secrets, events; resourceVersions; ownerReference garbage
//! collection; `Status` errors; watch history with 410 Gone) and label selectors; the
//! HTTP front end ([`http`]) serves them on the API server's paths, and the unmodified
//! kube client and runtime watcher work against it (`compute-driver/tests/
//! kube_client_against_sim.rs`). [`kubelet`] moves pods Pending → Running/Ready after a
//! delay, injects failures and records core/v1 Events as a kubelet does;
//! `Shared::go_down`/`come_back` simulate an API server restart (watches broken, every
//! resourceVersion expired). The binary `kube-sim` serves it as a process.

pub mod http;
pub mod kubelet;
pub mod selector;
pub mod store;
mod watch;

pub use selector::Selector;
pub use store::{ApiError, Change, Event, Page, Store};

/// A kubeconfig pointing at a simulator on `addr` (plain HTTP, no credentials).
pub fn kubeconfig(addr: std::net::SocketAddr) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster:
    server: http://{addr}
users:
- name: sim
  user: {{}}
contexts:
- name: sim
  context:
    cluster: sim
    user: sim
    namespace: default
current-context: sim
"
    )
}
