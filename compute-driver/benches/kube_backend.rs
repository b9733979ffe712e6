//! Kubernetes-backend figures, measured against the real binary over its socket with
//! the Kubernetes API simulator (in this process) holding 10,000 sandboxes
//! (`KUBE_SANDBOXES` for another count): start-up
//! (the first list), ListSandboxes, the WatchSandboxes snapshot, the driver's RSS, and
//! the time from a pod status change in the API server to the WatchSandboxes event.
//!
//! Run: `cargo bench -p compute-driver --bench kube_backend` (`KUBE_SANDBOXES=100000`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Duration;

use compute_driver::backend::kubernetes::platform::PlatformConfig;
use compute_driver::backend::kubernetes::pod_spec::{self, RenderOptions};
use conformance::kube_sim::http::Shared;
use conformance::kube_sim::serve_with_kubeconfig;
use prost::Message as _;
use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::phase::{Phase, phase_of};
use proto::testing::{SpawnedDriver, short_dir};
use serde_json::json;
use tokio::time::Instant;
use tokio_stream::StreamExt;

const BINARY: &str = env!("CARGO_BIN_EXE_compute-driver");
/// Sandboxes in the simulator: `KUBE_SANDBOXES`, default 10,000.
fn sandbox_count() -> usize {
    std::env::var("KUBE_SANDBOXES")
        .ok()
        .and_then(|n| n.replace('_', "").parse().ok())
        .unwrap_or(10_000)
}
const NAMESPACE: &str = "openshell";

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.99), *samples.last().unwrap())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn ready_status(ready: bool) -> serde_json::Value {
    json!({"phase": "Running", "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }}]})
}

/// Puts `sandboxes` running sandboxes (Secret + Pod each) in the simulator, as the
/// driver would have created them.
async fn populate(shared: &Shared, sandboxes: usize) {
    shared
        .with_store(|store| {
            store
                .create("namespaces", "", json!({"metadata": {"name": NAMESPACE}}))
                .unwrap();
            for i in 0..sandboxes {
                let id = format!("sb-{i:05}");
                let record = pb::DriverSandbox {
                    id: id.clone(),
                    name: id.clone(),
                    namespace: NAMESPACE.into(),
                    spec: Some(pb::DriverSandboxSpec {
                        command: vec!["sleep".into(), "infinity".into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let options = RenderOptions {
                    namespace: NAMESPACE,
                    object_name: &id,
                    default_image: "busybox",
                    gateway_id: "default",
                    image_pull_policy: "IfNotPresent",
                    supervisor: None,
                };
                let secret = pod_spec::secret(&record, &options, &record.encode_to_vec());
                let secret = store
                    .create("secrets", NAMESPACE, serde_json::to_value(secret).unwrap())
                    .unwrap();
                let uid = secret["metadata"]["uid"].as_str().unwrap();
                let pod = pod_spec::pod(&record, &options, uid, &PlatformConfig::default());
                let mut pod = serde_json::to_value(pod).unwrap();
                pod["status"] = ready_status(true);
                store.create("pods", NAMESPACE, pod).unwrap();
            }
        })
        .await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sandboxes = sandbox_count();
        let dir = short_dir();
        let shared = Shared::default();
        let began = Instant::now();
        populate(&shared, sandboxes).await;
        println!(
            "kube-sim: {sandboxes} sandboxes (Secret + running Pod each) stored in {:.1?}",
            began.elapsed()
        );
        let config = dir.path().join("kubeconfig");
        let _server = serve_with_kubeconfig(&shared, &config).await.unwrap();

        let started = Instant::now();
        let driver = SpawnedDriver::spawn_in(
            BINARY.as_ref(),
            dir.path(),
            &[
                "--backend",
                "kubernetes",
                "--kubeconfig",
                config.to_str().unwrap(),
                "--default-image",
                "busybox",
                "--kube-call-timeout",
                "120s",
                "--log-level",
                "warn",
            ],
        );
        let channel = driver.channel().await.unwrap();
        let mut client = ComputeDriverClient::new(channel)
            .max_decoding_message_size(usize::MAX);
        client
            .get_capabilities(pb::GetCapabilitiesRequest {})
            .await
            .unwrap();
        println!(
            "start to serving, first list of {sandboxes} Secrets + {sandboxes} Pods included: {:.1?}",
            started.elapsed()
        );
        println!("driver RSS with {sandboxes} sandboxes: {} KiB", rss_kib(driver.pid()));

        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..30 {
            let t = Instant::now();
            let reply = client
                .list_sandboxes(pb::ListSandboxesRequest {})
                .await
                .unwrap()
                .into_inner();
            samples.push(t.elapsed());
            assert_eq!(reply.sandboxes.len(), sandboxes);
            bytes = reply.encoded_len();
        }
        let (p50, p99, max) = percentiles(samples);
        println!(
            "ListSandboxes, {sandboxes} sandboxes ({} KiB reply), 30 calls: p50 {p50:.1?}, p99 {p99:.1?}, max {max:.1?}",
            bytes / 1024
        );

        let mut samples = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let mut events = client
                .watch_sandboxes(pb::WatchSandboxesRequest {})
                .await
                .unwrap()
                .into_inner();
            let mut seen = 0;
            while seen < sandboxes {
                events.next().await.unwrap().unwrap();
                seen += 1;
            }
            samples.push(t.elapsed());
        }
        let (p50, p99, max) = percentiles(samples);
        println!(
            "WatchSandboxes snapshot of {sandboxes} sandboxes, 10 opens: p50 {p50:.1?}, p99 {p99:.1?}, max {max:.1?}"
        );

        let mut events = client
            .watch_sandboxes(pb::WatchSandboxesRequest {})
            .await
            .unwrap()
            .into_inner();
        for _ in 0..sandboxes {
            events.next().await.unwrap().unwrap();
        }
        let mut samples = Vec::new();
        for round in 0..100 {
            let id = format!("sb-{:05}", round * 97 % sandboxes);
            // Ready → not Ready, then back: each change timed until its event arrives.
            for (ready, wanted) in [(false, Phase::Provisioning), (true, Phase::Ready)] {
                let patch = json!({"status": ready_status(ready)});
                let t = Instant::now();
                shared
                    .with_store(|s| s.merge_patch("pods", NAMESPACE, &id, &patch))
                    .await
                    .unwrap();
                loop {
                    let event = events.next().await.unwrap().unwrap();
                    if let Some(pb::watch_sandboxes_event::Payload::Sandbox(s)) = event.payload {
                        let s = s.sandbox.unwrap();
                        if s.id == id && phase_of(&s) == wanted {
                            break;
                        }
                    }
                }
                samples.push(t.elapsed());
            }
        }
        let (p50, p99, max) = percentiles(samples);
        println!(
            "pod status change in the API server to the WatchSandboxes event, 200 changes: p50 {p50:.1?}, p99 {p99:.1?}, max {max:.1?}"
        );
    });
}
