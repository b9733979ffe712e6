//! A simulated kubelet: pods it sees get `Pending` at once and, after a configurable
//! delay, `Running` with `Ready=True`, unless a failure was injected for them (by pod
//! name): an image pull error, an OOM kill, an eviction, or the loss of their node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::http::Shared;
use super::selector::Selector;

/// How often the kubelet looks at pods when nothing changes.
const RESYNC: Duration = Duration::from_millis(50);

/// A failure to inject into a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The image cannot be pulled: stays Pending, `ImagePullBackOff`.
    ImagePull,
    /// The container was OOM killed: Failed, `OOMKilled`, exit 137.
    OomKilled,
    /// The node evicted it: Failed, `Evicted`.
    Evicted,
    /// Its node stopped reporting: Unknown, `NodeLost`.
    NodeLost,
}

/// Handle to a running kubelet.
#[derive(Clone, Debug)]
pub struct Kubelet {
    failures: Arc<Mutex<HashMap<String, Failure>>>,
}

impl Kubelet {
    /// Starts a kubelet that makes pods Ready `delay` after it first sees them.
    pub fn spawn(shared: Shared, delay: Duration) -> (Self, tokio::task::JoinHandle<()>) {
        let kubelet = Self {
            failures: Arc::default(),
        };
        let failures = Arc::clone(&kubelet.failures);
        let task = tokio::spawn(run(shared, delay, failures));
        (kubelet, task)
    }

    /// Makes pod `name` (in any namespace) fail with `failure` (now, or when it would
    /// have become Ready).
    pub async fn inject(&self, name: &str, failure: Failure) {
        self.failures.lock().await.insert(name.to_owned(), failure);
    }
}

async fn run(shared: Shared, delay: Duration, failures: Arc<Mutex<HashMap<String, Failure>>>) {
    let mut seen: HashMap<String, Instant> = HashMap::new();
    let mut applied: HashMap<String, Option<Failure>> = HashMap::new();
    let mut changed = shared.subscribe();
    loop {
        let pods = shared
            .read(|store| store.list("pods", None, &Selector::default()))
            .await;
        let Ok((pods, _)) = pods else { return };
        let failures = failures.lock().await.clone();
        for pod in pods {
            let uid = pod["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let namespace = pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let first = *seen.entry(uid.clone()).or_insert_with(Instant::now);
            let failure = failures.get(&name).copied();
            let due = failure.is_some() || first.elapsed() >= delay;
            let wanted = if due { Some(failure) } else { None };
            let status = match wanted {
                None if pod["status"]["phase"].is_null() => pending(),
                None => continue,
                Some(failure) if applied.get(&uid) == Some(&failure) => continue,
                Some(failure) => {
                    applied.insert(uid.clone(), failure);
                    failure.map_or_else(running, failed)
                }
            };
            let patch = json!({ "status": status });
            let _ = shared
                .with_store(|store| store.merge_patch("pods", &namespace, &name, &patch))
                .await;
        }
        tokio::select! {
            _ = changed.changed() => {}
            () = tokio::time::sleep(RESYNC) => {}
        }
    }
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({
        "type": kind, "status": if status { "True" } else { "False" },
        "reason": reason, "message": message,
        "lastTransitionTime": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    })
}

fn pending() -> Value {
    json!({
        "phase": "Pending",
        "conditions": [
            condition("PodScheduled", true, "", ""),
            condition("Ready", false, "ContainersNotReady", "containers with unready status: [main]"),
        ],
    })
}

fn running() -> Value {
    json!({
        "phase": "Running",
        "podIP": "10.0.0.10",
        "conditions": [
            condition("PodScheduled", true, "", ""),
            condition("Ready", true, "", ""),
        ],
        "containerStatuses": [{
            "name": "main", "ready": true, "restartCount": 0, "image": "", "imageID": "",
            "state": {"running": {"startedAt": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()}},
        }],
    })
}

fn failed(failure: Failure) -> Value {
    let not_ready = |reason: &str, message: &str| condition("Ready", false, reason, message);
    match failure {
        Failure::ImagePull => json!({
            "phase": "Pending",
            "conditions": [not_ready("ContainersNotReady", "containers with unready status: [main]")],
            "containerStatuses": [{
                "name": "main", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
            }],
        }),
        Failure::OomKilled => json!({
            "phase": "Failed",
            "conditions": [not_ready("PodFailed", "")],
            "containerStatuses": [{
                "name": "main", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
            }],
        }),
        Failure::Evicted => json!({
            "phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory.",
            "conditions": [not_ready("PodFailed", "")],
        }),
        Failure::NodeLost => json!({
            "phase": "Unknown", "reason": "NodeLost",
            "message": "Node sim-node-1 which was running pod is unresponsive",
            "conditions": [not_ready("NodeLost", "the node stopped reporting")],
        }),
    }
}
