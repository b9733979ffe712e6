//! The gateway over the real compute-driver with its Kubernetes backend, against the
//! Kubernetes API simulator: a sandbox created through the public API becomes a Secret
//! holding the gateway-minted token and a Pod, reaches Ready, stops, starts and goes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use conformance::kube_sim::http::Shared;
use conformance::kube_sim::kubelet::Kubelet;
use conformance::kube_sim::{Selector, serve_with_kubeconfig};
use proto::pb::health::health_check_response::ServingStatus;
use proto::testing::{SpawnedDriver, short_dir};
use support::{Gateway, args, by_name, create_request, wait_phase};

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_through_the_gateway_becomes_a_pod_and_back() {
    let dir = short_dir();
    let shared = Shared::default();
    let config = dir.path().join("kubeconfig");
    let _server = serve_with_kubeconfig(&shared, &config).await.unwrap();
    let (_kubelet, _kubelet_task) = Kubelet::spawn(shared.clone(), Duration::from_millis(100));
    let binaries = support::ensure_driver_binaries(GATEWAY);
    let driver = SpawnedDriver::spawn_in(
        &binaries.join("compute-driver"),
        dir.path(),
        &[
            "--backend",
            "kubernetes",
            "--kubeconfig",
            config.to_str().unwrap(),
            "--default-image",
            "busybox:1.36",
        ],
    );
    let gateway = Gateway::start(args(dir.path(), driver.socket(), None)).await;
    // The driver binary may still be starting: a create before the gateway has reached
    // it fails fast (UNAVAILABLE), as it should.
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;

    let created = client
        .create_sandbox(create_request("web"))
        .await
        .unwrap()
        .into_inner();
    let ready = wait_phase(&mut client, "web", "Ready").await;
    assert_eq!(ready.id, created.id);

    // The gateway names driver sandboxes by id and puts each owner in a workspace:
    // find the objects by their sandbox-id label.
    let selector = Selector::parse(&format!("openshell.io/sandbox-id={}", created.id)).unwrap();
    let objects = |resource: &'static str| {
        let selector = selector.clone();
        let shared = shared.clone();
        async move {
            shared
                .read(|s| s.list(resource, None, &selector))
                .await
                .unwrap()
                .0
        }
    };
    let (secrets, pods) = (objects("secrets").await, objects("pods").await);
    assert_eq!((secrets.len(), pods.len()), (1, 1));
    let (secret, pod) = (&secrets[0], &pods[0]);
    assert!(
        secret["metadata"]["namespace"]
            .as_str()
            .unwrap()
            .starts_with("openshell-"),
        "the owner's workspace is a namespace: {}",
        secret["metadata"]["namespace"]
    );
    assert_eq!(
        secret["metadata"]["labels"]["openshell.io/sandbox-id"],
        created.id.as_str()
    );
    assert!(
        secret["data"]["token"]
            .as_str()
            .is_some_and(|t| t.len() > 20),
        "the gateway-minted sandbox token is in the Secret"
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:1.36");
    assert_eq!(
        pod["spec"]["containers"][0]["command"],
        serde_json::json!(["sleep", "600"])
    );

    client.stop_sandbox(by_name("web")).await.unwrap();
    wait_phase(&mut client, "web", "Stopped").await;
    client.start_sandbox(by_name("web")).await.unwrap();
    wait_phase(&mut client, "web", "Ready").await;
    client.delete_sandbox(by_name("web")).await.unwrap();
    for _ in 0..200 {
        if client.get_sandbox(by_name("web")).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        client.get_sandbox(by_name("web")).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert!(objects("secrets").await.is_empty());
    assert!(objects("pods").await.is_empty());
    gateway.stop().await;
}
