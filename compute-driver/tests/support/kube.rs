//! The Kubernetes API simulator in the test process, and the real driver binary
//! pointed at it through a kubeconfig.

use std::path::{Path, PathBuf};
use std::time::Duration;

use conformance::kube_sim::http::Shared;
use conformance::kube_sim::kubelet::Kubelet;
use conformance::kube_sim::serve_with_kubeconfig;
use serde_json::Value;

use super::Driver;

/// Image the driver is started with as its default.
pub const DEFAULT_IMAGE: &str = "busybox:1.36";

/// A simulator with a kubelet, serving on loopback.
pub struct Sim {
    pub shared: Shared,
    pub kubelet: Kubelet,
    pub kubeconfig: PathBuf,
    _server: tokio::task::JoinHandle<()>,
    _kubelet: tokio::task::JoinHandle<()>,
}

impl Sim {
    /// A simulator whose kubelet makes pods Ready after `ready_delay`; its kubeconfig is
    /// written in `dir`.
    pub async fn start(dir: &Path, ready_delay: Duration) -> Self {
        let shared = Shared::default();
        let path = dir.join("kubeconfig");
        let server = serve_with_kubeconfig(&shared, &path).await.unwrap();
        let (kubelet, kubelet_task) = Kubelet::spawn(shared.clone(), ready_delay);
        Self {
            shared,
            kubelet,
            kubeconfig: path,
            _server: server,
            _kubelet: kubelet_task,
        }
    }

    /// An object, if it exists.
    pub async fn object(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .read(|store| store.get(resource, namespace, name))
            .await
            .ok()
    }
}

/// The real binary, `--backend kubernetes` against `sim`, plus `extra` flags.
pub async fn driver(dir: &Path, sim: &Sim, extra: &[&str]) -> Driver {
    let mut args = vec![
        "--backend",
        "kubernetes",
        "--kubeconfig",
        sim.kubeconfig.to_str().unwrap(),
        "--default-image",
        DEFAULT_IMAGE,
        "--kube-call-timeout",
        "5s",
    ];
    args.extend_from_slice(extra);
    Driver::start_with(dir, &args).await
}
