//! The HTTP admin endpoint of the real binary: probes and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use proto::phase::Phase;
use proto::testing::{SpawnedDriver, short_dir};
use support::{BINARY, sandbox, wait_phase};

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

#[tokio::test]
async fn probes_and_metrics_report_rpcs_and_sandboxes_by_phase() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let dir = short_dir();
    let state = dir.path().join("state");
    let process = SpawnedDriver::spawn_in(
        BINARY.as_ref(),
        dir.path(),
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--metrics-addr",
            &addr,
        ],
    );
    let mut driver = support::Driver {
        client: proto::pb::compute::v1::compute_driver_client::ComputeDriverClient::new(
            process.channel().await.unwrap(),
        ),
        process,
        dir: dir.path().to_path_buf(),
    };
    let mut events = driver.watch().await;
    driver
        .create(sandbox("m1", &["sleep", "30"]))
        .await
        .unwrap();
    wait_phase(&mut events, "m1", Phase::Ready).await;
    let _ = driver.get("missing").await;

    assert!(http_get(&addr, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(http_get(&addr, "/readyz").starts_with("HTTP/1.1 200"));
    let metrics = http_get(&addr, "/metrics");
    assert!(
        metrics.contains("compute_driver_rpc_total{method=\"CreateSandbox\",code=\"OK\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("compute_driver_rpc_total{method=\"GetSandbox\",code=\"NOT_FOUND\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("compute_driver_sandboxes{phase=\"Ready\"} 1"),
        "{metrics}"
    );
    assert!(driver.delete("m1").await);
}
