//! A simulated kubelet: pods it sees get `Pending` at once and, after a configurable
//! delay, `Running` with `Ready=True`, unless a failure was injected for them (by pod
//! name): an image pull error, an OOM kill, an eviction, or the loss of their node.
//! Each step is also recorded as a core/v1 Event about the pod, as a kubelet does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::http::Shared;
use super::selector::Selector;

/// The one node pods run on.
const NODE: &str = "sim-node-1";

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

    /// Pods named `name` created from now on run normally again.
    pub async fn heal(&self, name: &str) {
        self.failures.lock().await.remove(name);
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
            let (status, happened) = match wanted {
                None if pod["status"]["phase"].is_null() => (pending(), vec![scheduled(&pod)]),
                None => continue,
                Some(failure) if applied.get(&uid) == Some(&failure) => continue,
                Some(failure) => {
                    applied.insert(uid.clone(), failure);
                    match failure {
                        None => (running(), started(&pod)),
                        Some(failure) => (failed(failure), vec![failure_event(failure, &pod)]),
                    }
                }
            };
            let patch = json!({ "status": status });
            let _ = shared
                .with_store(|store| {
                    for (kind, reason, message) in happened {
                        let _ =
                            store.create("events", &namespace, event(&pod, kind, reason, &message));
                    }
                    store.merge_patch("pods", &namespace, &name, &patch)
                })
                .await;
        }
        tokio::select! {
            _ = changed.changed() => {}
            () = tokio::time::sleep(RESYNC) => {}
        }
    }
}

/// What the kubelet reports about a pod: (type, reason, message).
type Happened = (&'static str, &'static str, String);

fn image_of(pod: &Value) -> &str {
    pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

fn scheduled(pod: &Value) -> Happened {
    let (namespace, name) = (
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default(),
    );
    (
        "Normal",
        "Scheduled",
        format!("Successfully assigned {namespace}/{name} to {NODE}"),
    )
}

fn started(pod: &Value) -> Vec<Happened> {
    vec![
        (
            "Normal",
            "Pulled",
            format!(
                "Container image {:?} already present on machine",
                image_of(pod)
            ),
        ),
        ("Normal", "Created", "Created container: sandbox".into()),
        ("Normal", "Started", "Started container sandbox".into()),
    ]
}

fn failure_event(failure: Failure, pod: &Value) -> Happened {
    match failure {
        Failure::ImagePull => (
            "Warning",
            "Failed",
            format!("Failed to pull image {:?}: not found", image_of(pod)),
        ),
        Failure::OomKilled => (
            "Warning",
            "OOMKilled",
            "Container sandbox was killed: out of memory".into(),
        ),
        Failure::Evicted => (
            "Warning",
            "Evicted",
            "The node was low on resource: memory.".into(),
        ),
        Failure::NodeLost => (
            "Warning",
            "NodeNotReady",
            format!("Node {NODE} is not ready"),
        ),
    }
}

/// A core/v1 Event about `pod`, as the kubelet records them.
fn event(pod: &Value, kind: &str, reason: &str, message: &str) -> Value {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let meta = &pod["metadata"];
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": format!("{}.", meta["name"].as_str().unwrap_or("pod"))},
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
        },
        "type": kind, "reason": reason, "message": message, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": "kubelet", "host": NODE}, "reportingComponent": "kubelet",
    })
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
