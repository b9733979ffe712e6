//! Callers that give up do not leave half-done sandboxes: creates and deletes with
//! deadlines from 1 to 50 ms, and a gateway killed (SIGKILL) during concurrent creates
//! then restarted, all end with every sandbox either fully created (record and driver)
//! or fully absent, and absent names free again. Real compute driver (process
//! backend), real gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proto::pb::compute::v1 as driver;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use proto::testing::SpawnedDriver;
use support::serve::{GATEWAY, Serve};
use support::{Client, Gateway, args, by_name, create_request};
use tonic::transport::Channel;

const DEADLINES_MS: std::ops::RangeInclusive<u64> = 1..=50;

fn compute_driver(dir: &std::path::Path) -> SpawnedDriver {
    let binaries = support::ensure_driver_binaries(GATEWAY);
    SpawnedDriver::spawn_in(
        &binaries.join("compute-driver"),
        dir,
        &["--state-dir", dir.join("state").to_str().unwrap()],
    )
}

/// The gateway's records (id → name) and the driver's sandbox ids.
async fn both_sides(
    gateway: &mut Client,
    driver: &mut ComputeDriverClient<Channel>,
) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let records = gateway
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let at_driver = driver
        .list_sandboxes(driver::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes
        .into_iter()
        .map(|s| s.id)
        .collect();
    (records, at_driver)
}

/// Waits (up to `limit`) until the records and the driver hold the same sandboxes,
/// five checks in a row over a second (sagas still running would show as a change);
/// returns the records.
async fn settled(
    gateway: &mut Client,
    driver: &mut ComputeDriverClient<Channel>,
    limit: Duration,
) -> BTreeMap<String, String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut stable = 0;
    let mut last = None;
    let mut history = Vec::new();
    loop {
        let (records, at_driver) = both_sides(gateway, driver).await;
        let ids: BTreeSet<String> = records.keys().cloned().collect();
        history.push((ids.len(), at_driver.len()));
        if ids == at_driver && last.as_ref() == Some(&records) {
            stable += 1;
            if stable == 5 {
                return records;
            }
        } else {
            stable = 0;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "records and driver never agreed: records {records:?}, driver {at_driver:?}; (records, driver) counts seen: {history:?}"
        );
        last = Some(records);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creates_and_deletes_with_short_deadlines_are_all_or_nothing() {
    let dir = proto::testing::short_dir();
    let compute = compute_driver(dir.path());
    let mut at_driver = ComputeDriverClient::new(compute.channel().await.unwrap());
    let mut gateway_args = args(dir.path(), compute.socket(), None);
    gateway_args.db_url = format!("sqlite:{}", dir.path().join("gw.db").display());
    // A saga whose driver call failed (a slow machine) is finished by the repair pass.
    gateway_args.reconcile_interval = Duration::from_secs(1);
    let gateway = Gateway::start(gateway_args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;

    let mut told_ok = 0;
    for ms in DEADLINES_MS {
        let mut request = tonic::Request::new(create_request(&format!("c{ms}")));
        request.set_timeout(Duration::from_millis(ms));
        told_ok += usize::from(client.create_sandbox(request).await.is_ok());
    }
    let records = settled(&mut client, &mut at_driver, Duration::from_secs(60)).await;
    let present: BTreeSet<&String> = records.values().collect();
    eprintln!(
        "creates: {told_ok} answered OK, {} sandboxes exist",
        present.len()
    );
    // Every absent name is free again.
    for ms in DEADLINES_MS {
        let name = format!("c{ms}");
        if !present.contains(&name) {
            client.create_sandbox(create_request(&name)).await.unwrap();
        }
    }
    let records = settled(&mut client, &mut at_driver, Duration::from_secs(60)).await;
    assert_eq!(records.len(), DEADLINES_MS.count());

    // Deletes the caller gives up on: each sandbox is then either fully there (the
    // request never reached the gateway in time) or fully gone, never half.
    let mut told_ok = 0;
    for ms in DEADLINES_MS {
        let mut request = tonic::Request::new(by_name(&format!("c{ms}")));
        request.set_timeout(Duration::from_millis(ms));
        told_ok += usize::from(client.delete_sandbox(request).await.is_ok());
    }
    let records = settled(&mut client, &mut at_driver, Duration::from_secs(60)).await;
    eprintln!(
        "deletes: {told_ok} answered OK, {} sandboxes remain",
        records.len()
    );
    for name in records.into_values() {
        client.delete_sandbox(by_name(&name)).await.unwrap();
    }
    let records = settled(&mut client, &mut at_driver, Duration::from_secs(60)).await;
    assert!(records.is_empty(), "left behind: {records:?}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_during_creates_leaves_nothing_stuck_after_restart() {
    let dir = proto::testing::short_dir();
    let compute = compute_driver(dir.path());
    let mut at_driver = ComputeDriverClient::new(compute.channel().await.unwrap());
    let db = format!("sqlite:{}", dir.path().join("gw.db").display());
    let token_file = dir.path().join("gateway.token");
    let socket = compute.socket().to_str().unwrap().to_owned();
    // The new flags as a user types them (the policy file and the per-owner limit).
    let policy = support::credential_policy(dir.path(), "grants: [{credentials: [\"team-*\"]}]");
    let extra = [
        "--credential-policy",
        policy.to_str().unwrap(),
        "--max-sandboxes-per-owner",
        "25",
        "--max-providers-per-owner",
        "5",
        "--compute-driver-socket",
        &socket,
        "--db-url",
        &db,
        "--local-token-file",
        token_file.to_str().unwrap(),
        "--driver-call-timeout",
        "1s",
        "--reconcile-interval",
        "200ms",
    ];
    let log = dir.path().join("gw1.log");
    let mut first = Serve::spawn(Serve::command(&log, &extra), &log);
    let addr = first.wait_ready().await;
    let token = std::fs::read_to_string(&token_file).unwrap();

    // Twenty creates at once; the gateway dies as soon as the first has finished.
    let (done, mut first_done) = tokio::sync::mpsc::channel::<()>(32);
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (token, done) = (token.clone(), done.clone());
        creates.spawn(async move {
            let mut client = support::client_at(addr, token.trim()).await;
            if client
                .create_sandbox(create_request(&format!("k{i}")))
                .await
                .is_ok()
            {
                let _ = done.send(()).await;
            }
        });
    }
    first_done.recv().await.unwrap();
    first.kill();
    while creates.join_next().await.is_some() {}

    let log = dir.path().join("gw2.log");
    let mut second = Serve::spawn(Serve::command(&log, &extra), &log);
    let addr = second.wait_ready().await;
    let token = std::fs::read_to_string(&token_file).unwrap();
    let mut client = support::client_at(addr, token.trim()).await;
    // Abandoned creates are rolled back once older than four driver-call timeouts.
    let records = settled(&mut client, &mut at_driver, Duration::from_secs(60)).await;
    for name in records.values() {
        support::wait_phase(&mut client, name, "Ready").await;
    }
    for i in 0..20 {
        let name = format!("k{i}");
        if !records.values().any(|n| *n == name) {
            client.create_sandbox(create_request(&name)).await.unwrap();
        }
    }
    let records = settled(&mut client, &mut at_driver, Duration::from_secs(60)).await;
    assert_eq!(records.len(), 20);
    for name in records.into_values() {
        client.delete_sandbox(by_name(&name)).await.unwrap();
    }
}
