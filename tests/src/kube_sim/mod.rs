//! A Kubernetes API simulator for testing the compute driver's Kubernetes backend where
//! no API server can run. The sans-IO [`store`] holds core/v1 namespaces, pods,
//! secrets and events with resourceVersions, ownerReference garbage collection,
//! `Status` errors and a watch history with 410 Gone; [`selector`] matches label and
//! field selectors; [`http`] serves them on the API server's paths (lists paged with
//! `limit`/`continue`, watch streams with bookmarks), and the unmodified kube client and
//! runtime watcher work against it (`compute-driver/tests/kube_client_against_sim.rs`).
//! [`kubelet`] moves pods Pending → Running/Ready after a delay, injects failures and
//! records core/v1 Events as a kubelet does; `Shared::go_down`/`come_back` simulate an
//! API server restart (watches broken, every resourceVersion expired) and
//! `Shared::stall` a hanging one. The binary `kube-sim` serves it as a process.

mod control;
pub mod http;
pub mod kubelet;
pub mod selector;
pub mod store;
mod watch;

pub use control::Access;
pub use selector::Selector;
pub use store::{ApiError, Change, Event, Page, Store};

/// Serves `shared` on a free loopback port and writes a kubeconfig pointing at it to
/// `path`; the server runs until the returned task is dropped or aborted.
///
/// # Errors
/// When no port can be bound or the file cannot be written.
pub async fn serve_with_kubeconfig(
    shared: &http::Shared,
    path: &std::path::Path,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let (addr, server) = http::serve(shared.clone(), ([127, 0, 0, 1], 0).into()).await?;
    std::fs::write(path, kubeconfig(addr))?;
    Ok(server)
}

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
