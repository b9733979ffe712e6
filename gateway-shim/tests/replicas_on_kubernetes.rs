//! Two gateway replicas as users run them when one is not enough: each with its own
//! compute-driver (the real binary, Kubernetes backend, the same gateway id) against
//! one Kubernetes API simulator, both on one PostgreSQL database. Both serve the same
//! records; a write on one is seen on the other; conditional writes conflict across
//! replicas (ABORTED); status is right on both and neither replica calls the other's
//! fresh sandbox missing; creates race on both replicas (the same name: one wins;
//! different names: all land, one pod each).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use conformance::kube_sim::http::Shared;
use conformance::kube_sim::kubelet::Kubelet;
use conformance::kube_sim::{Selector, serve_with_kubeconfig};
use conformance::postgres::PostgresPeer;
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use proto::testing::{SpawnedDriver, short_dir};
use support::{Client, Gateway, args, by_name, create_request, phase};

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");

/// Every phase `name` shows on `client` until Ready (panics after 30 s).
async fn phases_until_ready(client: &mut Client, name: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..600 {
        if let Ok(reply) = client.get_sandbox(by_name(name)).await {
            let phase = phase(reply.get_ref());
            if seen.last() != Some(&phase) {
                seen.push(phase.clone());
            }
            if phase == "Ready" {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never became Ready; phases seen: {seen:?}");
}

async fn pods_of(shared: &Shared) -> BTreeMap<String, usize> {
    let pods = shared
        .read(|s| s.list("pods", None, &Selector::parse("").unwrap()))
        .await
        .unwrap()
        .0;
    let mut by_sandbox = BTreeMap::new();
    for pod in pods {
        let name = pod["metadata"]["labels"]["openshell.io/sandbox-name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *by_sandbox.entry(name).or_default() += 1;
    }
    by_sandbox
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgresql_and_one_cluster_agree() {
    let dir = short_dir();
    let shared = Shared::default();
    let kubeconfig = dir.path().join("kubeconfig");
    let _server = serve_with_kubeconfig(&shared, &kubeconfig).await.unwrap();
    let (_kubelet, _kubelet_task) = Kubelet::spawn(shared.clone(), Duration::from_millis(100));
    let peer = PostgresPeer::start().unwrap();
    let url = peer.fresh_database("replicas").unwrap();
    let binaries = support::ensure_driver_binaries(GATEWAY);
    let credentials = support::serve_mock_credentials(dir.path());

    let mut gateways = Vec::new();
    let mut drivers = Vec::new();
    for replica in 0..2 {
        let own = dir.path().join(format!("r{replica}"));
        std::fs::create_dir(&own).unwrap();
        let driver = SpawnedDriver::spawn_in(
            &binaries.join("compute-driver"),
            &own,
            &[
                "--backend=kubernetes",
                &format!("--kubeconfig={}", kubeconfig.display()),
                "--gateway-id=shared-id",
                "--default-image=busybox:1.36",
            ],
        );
        let config = gateway_shim::GatewayConfig {
            db_url: url.clone(),
            reconcile_interval: Duration::from_secs(1),
            ..args(&own, driver.socket(), Some(&credentials))
        };
        let gateway = Gateway::start(config).await;
        gateway.wait_health(ServingStatus::Serving).await;
        gateways.push(gateway);
        drivers.push(driver);
    }
    let mut one = gateways[0].client().await;
    let mut two = gateways[1].client().await;

    // A sandbox made on one replica: the other serves the same record, and shows it
    // becoming Ready without ever calling it missing (its driver's cache lags).
    let created = one
        .create_sandbox(create_request("web"))
        .await
        .unwrap()
        .into_inner();
    let seen_on_two = phases_until_ready(&mut two, "web").await;
    assert!(
        !seen_on_two.iter().any(|p| p == "Error"),
        "replica two called a fresh sandbox failed: {seen_on_two:?}"
    );
    let seen_on_one = phases_until_ready(&mut one, "web").await;
    assert!(!seen_on_one.iter().any(|p| p == "Error"), "{seen_on_one:?}");
    let on_two = two.get_sandbox(by_name("web")).await.unwrap().into_inner();
    assert_eq!(on_two.id, created.id);
    // Several reconciles later, both still agree it is Ready.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for client in [&mut one, &mut two] {
        let s = client
            .get_sandbox(by_name("web"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(phase(&s), "Ready", "{s:?}");
    }

    // The same name created on both at once: one wins, one pod.
    let (mut racer_one, mut racer_two) = (one.clone(), two.clone());
    let (a, b) = tokio::join!(
        racer_one.create_sandbox(create_request("race")),
        racer_two.create_sandbox(create_request("race"))
    );
    let codes = [&a, &b].map(|r| {
        r.as_ref()
            .map(|_| tonic::Code::Ok)
            .unwrap_or_else(|s| s.code())
    });
    assert_eq!(
        codes.iter().filter(|c| **c == tonic::Code::Ok).count(),
        1,
        "exactly one create of the same name wins: {codes:?}"
    );
    assert!(codes.contains(&tonic::Code::AlreadyExists), "{codes:?}");

    // Different names on both at once: all land.
    let mut creates = Vec::new();
    for i in 0..5 {
        for (tag, client) in [("x", one.clone()), ("y", two.clone())] {
            let mut client = client;
            creates.push(tokio::spawn(async move {
                client
                    .create_sandbox(create_request(&format!("{tag}{i}")))
                    .await
                    .map(|_| ())
            }));
        }
    }
    for create in creates {
        create.await.unwrap().unwrap();
    }
    for i in 0..5 {
        for tag in ["x", "y"] {
            let name = format!("{tag}{i}");
            phases_until_ready(&mut one, &name).await;
            phases_until_ready(&mut two, &name).await;
        }
    }
    let list_one = support::sandbox_names(&mut one).await;
    let list_two = support::sandbox_names(&mut two).await;
    assert_eq!(list_one, list_two);
    assert_eq!(list_one.len(), 12, "{list_one:?}");
    let pods = pods_of(&shared).await;
    assert_eq!(pods.len(), 12, "{pods:?}");
    assert!(
        pods.values().all(|n| *n == 1),
        "one pod per sandbox: {pods:?}"
    );

    // Conditional writes conflict across replicas.
    let provider = |version: u64, endpoint: &str| pb::Provider {
        name: "p".into(),
        r#type: "generic".into(),
        credential: "mock-static".into(),
        endpoint: endpoint.into(),
        resource_version: version,
        ..Default::default()
    };
    one.create_provider(provider(0, "https://a")).await.unwrap();
    let read = two
        .get_provider(pb::ProviderRef { name: "p".into() })
        .await
        .unwrap()
        .into_inner();
    one.update_provider(provider(read.resource_version, "https://b"))
        .await
        .unwrap();
    let stale = two
        .update_provider(provider(read.resource_version, "https://c"))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted, "{stale:?}");
    let now = two
        .get_provider(pb::ProviderRef { name: "p".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        now.endpoint, "https://b",
        "the write on one is what two serves"
    );

    // A delete on the other replica: gone from both, and from the cluster.
    two.delete_sandbox(by_name("web")).await.unwrap();
    for client in [&mut one, &mut two] {
        let mut gone = false;
        for _ in 0..200 {
            if client.get_sandbox(by_name("web")).await.is_err() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "web still listed");
    }
    let mut pod_gone = false;
    for _ in 0..200 {
        if !pods_of(&shared).await.contains_key("web") {
            pod_gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pod_gone, "web's pod is deleted");
    drop(drivers);
}
