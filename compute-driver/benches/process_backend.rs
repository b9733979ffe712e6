//! Process-backend figures, measured against the real binary over its socket:
//! start-to-socket-ready time, idle RSS, create-to-Ready latency for a binary and for
//! a `#!` script, and ListSandboxes latency with 1,000 sandbox records.
//!
//! Run: `cargo bench -p compute-driver --bench process_backend`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::time::Duration;

use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::phase::{Phase, phase_of};
use proto::testing::{SpawnedDriver, short_dir};
use proto::{Backoff, ConnectConfig};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const BINARY: &str = env!("CARGO_BIN_EXE_compute-driver");

fn start(dir: &Path) -> SpawnedDriver {
    let state = dir.join("state");
    SpawnedDriver::spawn_in(
        BINARY.as_ref(),
        dir,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--log-level",
            "warn",
        ],
    )
}

async fn ready(driver: &SpawnedDriver) -> Channel {
    let config = ConnectConfig {
        backoff: Backoff::try_new(Duration::from_micros(500), Duration::from_millis(2), 0.0)
            .unwrap(),
        ..ConnectConfig::default()
    };
    proto::connect(driver.socket(), &config).await.unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.99), *samples.last().unwrap())
}

fn sandbox(id: &str, argv: &[&str]) -> pb::DriverSandbox {
    pb::DriverSandbox {
        id: id.into(),
        name: id.into(),
        spec: Some(pb::DriverSandboxSpec {
            command: argv.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn start_to_ready() {
    let mut samples = Vec::new();
    for _ in 0..20 {
        let dir = short_dir();
        let started = Instant::now();
        let driver = start(dir.path());
        ready(&driver).await;
        samples.push(started.elapsed());
    }
    let (p50, p99, max) = percentiles(samples);
    println!(
        "start-to-socket-ready (20 starts, empty state dir): p50 {p50:.1?}  p99 {p99:.1?}  max {max:.1?}"
    );
}

async fn create_to_ready(client: &mut ComputeDriverClient<Channel>, label: &str, argv: &[&str]) {
    let mut events = client
        .watch_sandboxes(pb::WatchSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut samples = Vec::new();
    for i in 0..100 {
        let id = format!("ready-{label}-{i}");
        let started = Instant::now();
        client
            .create_sandbox(pb::CreateSandboxRequest {
                sandbox: Some(sandbox(&id, argv)),
            })
            .await
            .unwrap();
        loop {
            use pb::watch_sandboxes_event::Payload;
            if let Some(Payload::Sandbox(s)) = events.next().await.unwrap().unwrap().payload {
                let s = s.sandbox.unwrap();
                if s.id == id && phase_of(&s) == Phase::Ready {
                    break;
                }
            }
        }
        samples.push(started.elapsed());
    }
    let (p50, p99, max) = percentiles(samples);
    println!(
        "create-to-Ready via Watch ({label}, 100 sandboxes): p50 {p50:.1?}  p99 {p99:.1?}  max {max:.1?}"
    );
    for i in 0..100 {
        client
            .delete_sandbox(pb::DeleteSandboxRequest {
                sandbox_id: format!("ready-{label}-{i}"),
                sandbox_name: String::new(),
            })
            .await
            .unwrap();
    }
}

async fn list_thousand(client: &mut ComputeDriverClient<Channel>, pid: u32) {
    let started = Instant::now();
    for i in 0..1000 {
        client
            .create_sandbox(pb::CreateSandboxRequest {
                sandbox: Some(sandbox(&format!("rec-{i}"), &["true"])),
            })
            .await
            .unwrap();
    }
    println!(
        "created 1,000 sandbox records (`true`) in {:.1?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut samples = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let reply = client
            .list_sandboxes(pb::ListSandboxesRequest {})
            .await
            .unwrap()
            .into_inner();
        samples.push(started.elapsed());
        assert_eq!(reply.sandboxes.len(), 1000);
    }
    let (p50, p99, max) = percentiles(samples);
    println!(
        "ListSandboxes with 1,000 records (50 calls): p50 {p50:.1?}  p99 {p99:.1?}  max {max:.1?}"
    );
    println!("RSS with 1,000 records: {} KiB", rss_kib(pid));
}

async fn restart_with_thousand(dir: &Path) {
    let started = Instant::now();
    let driver = start(dir);
    ready(&driver).await;
    println!(
        "start-to-socket-ready with 1,000 records to recover: {:.1?}",
        started.elapsed()
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        start_to_ready().await;

        let dir = short_dir();
        let driver = start(dir.path());
        let mut client = ComputeDriverClient::new(ready(&driver).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("idle RSS, no sandboxes: {} KiB", rss_kib(driver.pid()));
        create_to_ready(&mut client, "binary", &["/bin/sleep", "60"]).await;
        // A `#!` script: its argv after exec is the interpreter's, so only the
        // launcher's exec report (not comparing argv) can tell it runs.
        // Outside /tmp: sandboxes get a private one.
        let scripts = std::path::PathBuf::from(format!("/var/tmp/bench-{}", std::process::id()));
        std::fs::create_dir_all(&scripts).unwrap();
        let script = scripts.join("sleep.sh");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 60\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        create_to_ready(&mut client, "script", &[script.to_str().unwrap()]).await;
        let _ = std::fs::remove_dir_all(&scripts);
        list_thousand(&mut client, driver.pid()).await;
        drop(client);
        drop(driver);
        restart_with_thousand(dir.path()).await;
    });
}
