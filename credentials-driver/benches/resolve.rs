//! Cached ResolveCredential over the UDS at 1, 16 and 64 concurrent callers, beside
//! the empty-call floor (GetCapabilities on the same driver, socket and channel) in
//! one run; plus idle RSS, RSS with 10,000 cached exchanged tokens, and start-to-ready.
//!
//! Needs node (the OIDC test peer). Run:
//! `cargo bench -p credentials-driver --bench resolve` (`BENCH_SECONDS`, default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::pb::credentials::v1::{GetCapabilitiesRequest, ResolveCredentialRequest};
use proto::testing::{SpawnedDriver, short_dir};
use serde_json::json;
use tokio::time::Instant;
use tonic::transport::Channel;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[derive(Clone, Copy)]
enum Call {
    Floor,
    Resolve,
}

async fn level(
    client: &CredentialsDriverClient<Channel>,
    call: Call,
    callers: usize,
    length: Duration,
) -> (Duration, Duration, f64) {
    let warm = Instant::now() + Duration::from_millis(500);
    let stop = warm + length;
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let started = Instant::now();
                    if started >= stop {
                        return samples;
                    }
                    match call {
                        Call::Floor => drop(
                            client
                                .get_capabilities(GetCapabilitiesRequest {})
                                .await
                                .unwrap(),
                        ),
                        Call::Resolve => drop(
                            client
                                .resolve_credential(ResolveCredentialRequest {
                                    name: "cc-basic".into(),
                                    ..Default::default()
                                })
                                .await
                                .unwrap(),
                        ),
                    }
                    if started >= warm {
                        samples.push(started.elapsed());
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (at(0.5), at(0.99), all.len() as f64 / length.as_secs_f64())
}

fn main() {
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Start-to-ready and idle RSS, with an empty config.
        let mut starts = Vec::new();
        for _ in 0..10 {
            let dir = short_dir();
            let started = Instant::now();
            let driver = SpawnedDriver::spawn_in(support::BINARY.as_ref(), dir.path(), &["--log-level", "warn"]);
            driver.channel().await.unwrap();
            starts.push(started.elapsed());
        }
        starts.sort_unstable();
        println!("start-to-socket-ready (10 starts): p50 {:.1?}  max {:.1?}", starts[5], starts[9]);

        let peer = support::OidcPeer::start().await;
        let dir = short_dir();
        let (driver, client) = support::driver(dir.path(), &peer).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!("idle RSS: {} KiB", rss_kib(driver.pid()));
        let mut warm = client.clone();
        warm.resolve_credential(ResolveCredentialRequest { name: "cc-basic".into(), ..Default::default() }).await.unwrap();

        println!("{:>8} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8}", "callers", "floor p50", "floor p99", "floor/s", "resolve p50", "resolve p99", "resolve/s", "p50 x");
        for callers in [1, 16, 64] {
            let length = Duration::from_secs(seconds);
            let (f50, f99, frate) = level(&client, Call::Floor, callers, length).await;
            let (r50, r99, rrate) = level(&client, Call::Resolve, callers, length).await;
            println!(
                "{callers:>8} {f50:>12.1?} {f99:>12.1?} {frate:>12.0} {r50:>12.1?} {r99:>12.1?} {rrate:>12.0} {:>8.2}",
                r50.as_secs_f64() / f50.as_secs_f64()
            );
        }

        // 10,000 exchanged tokens in the cache.
        let started = Instant::now();
        let mut exchange = client.clone();
        for i in 0..10_000 {
            let subject = peer.mint(json!({ "sub": format!("user-{i}"), "aud": "credentials-driver", "azp": "gateway" })).await;
            exchange
                .resolve_credential(ResolveCredentialRequest { name: "exchange".into(), subject_token: subject, ..Default::default() })
                .await
                .unwrap();
        }
        println!("10,000 token exchanges through the peer in {:.1?}", started.elapsed());
        println!("RSS with 10,000 cached exchanged tokens: {} KiB", rss_kib(driver.pid()));
    });
}
