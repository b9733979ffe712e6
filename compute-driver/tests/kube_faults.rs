//! The Kubernetes backend under trouble, with the real binary against the simulator:
//! failing pods, an API server restart that expires every resourceVersion, an API
//! server that hangs or refuses, and requests it must reject.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use conformance::kube_sim::kubelet::Failure;
use proto::pb::compute::v1 as pb;
use proto::phase::{Phase, phase_of};
use proto::testing::short_dir;
use support::kube::{Sim, driver};
use support::{condition, sandbox, wait_all};
use tokio_stream::StreamExt as _;

use pb::watch_sandboxes_event::Payload;

fn ready_condition(sandbox: &pb::DriverSandbox) -> (String, String) {
    let ready = condition(sandbox, "Ready").expect("a Ready condition");
    (ready.reason.clone(), ready.message.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_failures_show_as_conditions_and_platform_events() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), Duration::from_millis(300)).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    let mut events = driver.watch().await;
    let cases = [
        ("pull", Failure::ImagePull, "ImagePullBackOff", "Failed"),
        ("oom", Failure::OomKilled, "OOMKilled", "OOMKilled"),
        ("evict", Failure::Evicted, "Evicted", "Evicted"),
        ("lost", Failure::NodeLost, "NodeLost", "NodeNotReady"),
    ];
    for (name, failure, _, _) in cases {
        sim.kubelet.inject(name, failure).await;
        driver
            .create(sandbox(name, &["sleep", "300"]))
            .await
            .unwrap();
    }

    let mut failed: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut warnings: BTreeMap<String, String> = BTreeMap::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while failed.len() < cases.len() || warnings.len() < cases.len() {
            match events.next().await.unwrap().unwrap().payload {
                Some(Payload::Sandbox(s)) => {
                    let s = s.sandbox.unwrap();
                    if phase_of(&s) == Phase::Error {
                        failed.insert(s.id.clone(), ready_condition(&s));
                    }
                }
                Some(Payload::PlatformEvent(e)) => {
                    let event = e.event.unwrap();
                    assert_eq!(event.source, "kubernetes");
                    if event.r#type == "Warning" {
                        assert_eq!(event.metadata["pod"], e.sandbox_id);
                        warnings.insert(e.sandbox_id, event.reason);
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("in time: failed {failed:?}, warnings {warnings:?}"));

    for (name, _, reason, event_reason) in cases {
        assert_eq!(failed[name].0, reason, "{name}: {:?}", failed[name]);
        assert_eq!(warnings[name], event_reason, "{name}");
    }
    assert!(failed["oom"].1.contains("137"), "{:?}", failed["oom"]);
    assert!(
        failed["evict"].1.contains("low on resource"),
        "{:?}",
        failed["evict"]
    );
    let terminated = condition(&driver.get("oom").await.unwrap(), "Terminated")
        .unwrap()
        .clone();
    assert_eq!(
        (terminated.status.as_str(), terminated.reason.as_str()),
        ("True", "OOMKilled")
    );

    // Start after a failure replaces the finished pod with a new one.
    let failed_pod = sim.object("pods", "openshell", "oom").await.unwrap();
    sim.kubelet.heal("oom").await;
    driver.start_sandbox("oom").await;
    support::wait_phase(&mut events, "oom", Phase::Ready).await;
    let new_pod = sim.object("pods", "openshell", "oom").await.unwrap();
    assert_ne!(new_pod["metadata"]["uid"], failed_pod["metadata"]["uid"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_restart_is_recovered_with_a_fresh_list_and_no_loss_or_duplicates() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), Duration::from_millis(100)).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    let mut events = driver.watch().await;
    for id in ["keep", "gone", "hurt"] {
        driver.create(sandbox(id, &["sleep", "300"])).await.unwrap();
    }
    wait_all(&mut events, &["keep", "gone", "hurt"], Phase::Ready).await;

    sim.shared.go_down().await;
    // While the driver cannot see: another client deletes one sandbox's Secret (its
    // Pod is garbage-collected) and another sandbox's pod is OOM killed.
    sim.shared
        .with_store(|s| s.delete("secrets", "openshell", "gone"))
        .await
        .unwrap();
    sim.kubelet.inject("hurt", Failure::OomKilled).await;
    let refused = driver
        .create(sandbox("during", &["sleep", "300"]))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unavailable,
        "a write while the API server is down fails at once, not after the kube client's retries: {refused:?}"
    );
    assert_eq!(
        driver.list_ids().await,
        ["gone", "hurt", "keep"],
        "reads keep answering from the cache"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    sim.shared.come_back();

    let mut deleted: Vec<String> = Vec::new();
    let mut hurt_failed = false;
    tokio::time::timeout(Duration::from_secs(30), async {
        while deleted.is_empty() || !hurt_failed {
            match events.next().await.unwrap().unwrap().payload {
                Some(Payload::Deleted(d)) => deleted.push(d.sandbox_id),
                Some(Payload::Sandbox(s)) => {
                    let s = s.sandbox.unwrap();
                    hurt_failed |= s.id == "hurt" && phase_of(&s) == Phase::Error;
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("recovered in time (deleted {deleted:?}, hurt failed {hurt_failed})")
    });
    // Anything more (a flap, a second deletion) would arrive right behind.
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(2), events.next()).await {
        if let Some(Payload::Deleted(d)) = event.unwrap().payload {
            deleted.push(d.sandbox_id);
        }
    }
    assert_eq!(
        deleted,
        ["gone"],
        "exactly one deletion, of the one deleted"
    );
    assert_eq!(driver.list_ids().await, ["hurt", "keep"]);
    assert_eq!(phase_of(&driver.get("keep").await.unwrap()), Phase::Ready);
    assert!(
        driver.process.logs().contains("too old resource version"),
        "the watch resumed from an expired resourceVersion and relisted"
    );

    // And it works as before.
    driver
        .create(sandbox("after", &["sleep", "300"]))
        .await
        .unwrap();
    wait_all(&mut events, &["after"], Phase::Ready).await;
    let ids: BTreeSet<String> = driver.list_ids().await.into_iter().collect();
    assert_eq!(ids, ["after", "hurt", "keep"].map(String::from).into());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_api_server_call_ends_at_the_rpc_deadline() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), Duration::from_millis(100)).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    sim.shared.stall(true);
    let mut request = tonic::Request::new(pb::CreateSandboxRequest {
        sandbox: Some(sandbox("slow", &["sleep", "300"])),
    });
    request.set_timeout(Duration::from_millis(800));
    let status = driver.client.create_sandbox(request).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{status:?}"
    );
    assert!(
        driver.list_ids().await.is_empty(),
        "reads do not wait on the API server"
    );
    sim.shared.stall(false);
    driver
        .create(sandbox("fast", &["sleep", "300"]))
        .await
        .unwrap();
    assert!(driver.list_ids().await.contains(&"fast".to_owned()));
}

fn with_template(template: pb::DriverSandboxTemplate) -> pb::DriverSandbox {
    let mut s = sandbox("checked", &["sleep", "300"]);
    s.spec.as_mut().unwrap().template = Some(template);
    s
}

fn config(key: &str, value: prost_types::Value) -> Option<prost_types::Struct> {
    Some(prost_types::Struct {
        fields: [(key.to_owned(), value)].into(),
    })
}

fn string(text: &str) -> prost_types::Value {
    prost_types::Value {
        kind: Some(prost_types::value::Kind::StringValue(text.into())),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_platform_config_and_quantities_are_invalid_arguments_naming_the_key() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), Duration::from_millis(100)).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    let mut bad_id = sandbox("fine", &["sleep", "300"]);
    bad_id.id = "ends-with-".into();
    let cases = [
        (
            with_template(pb::DriverSandboxTemplate {
                platform_config: config("hostNetwork", string("true")),
                ..Default::default()
            }),
            "sandbox.spec.template.platform_config.hostNetwork",
        ),
        (
            with_template(pb::DriverSandboxTemplate {
                platform_config: config(
                    "runtimeClassName",
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::NumberValue(3.0)),
                    },
                ),
                ..Default::default()
            }),
            "sandbox.spec.template.platform_config.runtimeClassName",
        ),
        (
            with_template(pb::DriverSandboxTemplate {
                driver_config: config("replicas", string("2")),
                ..Default::default()
            }),
            "sandbox.spec.template.driver_config.replicas",
        ),
        (
            with_template(pb::DriverSandboxTemplate {
                resources: Some(pb::DriverResourceRequirements {
                    cpu_limit: "lots".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            "sandbox.spec.template.resources.cpu_limit",
        ),
        (
            with_template(pb::DriverSandboxTemplate {
                resources: Some(pb::DriverResourceRequirements {
                    memory_request: "1Gx".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            "sandbox.spec.template.resources.memory_request",
        ),
        (bad_id, "sandbox.id"),
    ];
    for (sandbox, field) in cases {
        let validated = driver
            .client
            .validate_sandbox_create(pb::ValidateSandboxCreateRequest {
                sandbox: Some(sandbox.clone()),
            })
            .await
            .unwrap_err();
        let created = driver.create(sandbox).await.unwrap_err();
        for status in [validated, created] {
            assert_eq!(
                status.code(),
                tonic::Code::InvalidArgument,
                "{field}: {status:?}"
            );
            assert!(
                status.message().contains(field),
                "{field}: {}",
                status.message()
            );
        }
    }
    assert!(driver.list_ids().await.is_empty());
    let secrets = sim
        .shared
        .read(|s| s.list("secrets", None, &Default::default()))
        .await
        .unwrap()
        .0;
    assert!(secrets.is_empty(), "nothing was created");
}
