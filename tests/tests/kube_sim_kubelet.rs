//! The simulated kubelet: pods become Running/Ready after the delay, and injected
//! failures show as the API server would report them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use conformance::kube_sim::http::Shared;
use conformance::kube_sim::kubelet::{Failure, Kubelet};
use serde_json::{Value, json};

async fn status_of(shared: &Shared, name: &str) -> Value {
    shared
        .read(|store| store.get("pods", "ws", name).unwrap()["status"].clone())
        .await
}

async fn wait_for(shared: &Shared, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let status = status_of(shared, name).await;
        if check(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{name}: status never matched: {}",
        status_of(shared, name).await
    );
}

#[tokio::test]
async fn pods_go_pending_then_ready_or_fail_as_injected() {
    let shared = Shared::default();
    shared
        .with_store(|store| store.create("namespaces", "", json!({"metadata": {"name": "ws"}})))
        .await
        .unwrap();
    let (kubelet, _task) = Kubelet::spawn(shared.clone(), Duration::from_millis(300));
    kubelet.inject("pull", Failure::ImagePull).await;
    kubelet.inject("oom", Failure::OomKilled).await;
    kubelet.inject("evicted", Failure::Evicted).await;
    for name in ["ok", "pull", "oom", "evicted", "lost"] {
        shared
            .with_store(|store| {
                store.create(
                    "pods",
                    "ws",
                    json!({"metadata": {"name": name}, "spec": {}}),
                )
            })
            .await
            .unwrap();
    }
    let pending = wait_for(&shared, "ok", |s| !s["phase"].is_null()).await;
    assert_eq!(pending["phase"], "Pending", "not Ready before the delay");
    let ready = wait_for(&shared, "ok", |s| s["phase"] == "Running").await;
    let ready_condition = ready["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready_condition["status"], "True");

    let pull = wait_for(&shared, "pull", |s| !s["containerStatuses"].is_null()).await;
    assert_eq!(
        pull["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ImagePullBackOff"
    );
    let oom = wait_for(&shared, "oom", |s| s["phase"] == "Failed").await;
    assert_eq!(
        oom["containerStatuses"][0]["state"]["terminated"]["reason"],
        "OOMKilled"
    );
    let evicted = wait_for(&shared, "evicted", |s| s["phase"] == "Failed").await;
    assert_eq!(evicted["reason"], "Evicted");

    // A failure injected into a Ready pod: its node goes away.
    wait_for(&shared, "lost", |s| s["phase"] == "Running").await;
    kubelet.inject("lost", Failure::NodeLost).await;
    let lost = wait_for(&shared, "lost", |s| s["phase"] == "Unknown").await;
    assert_eq!(lost["reason"], "NodeLost");
}
