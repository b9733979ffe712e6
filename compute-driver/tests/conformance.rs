//! The driver-conformance harness against the real binary, with the process backend
//! and with the Kubernetes backend (against the API simulator).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::time::Duration;

use proto::testing::short_dir;
use support::Driver;
use support::kube::Sim;

/// Runs the whole compute suite against `driver`; every case must apply and pass.
async fn passes_the_compute_suite(driver: &Driver) {
    let config = conformance::Config {
        compute_socket: Some(driver.process.socket().to_path_buf()),
        repeat: 5,
        parallel: 4,
        ..conformance::Config::default()
    };
    let report = conformance::run(&config).await;
    for result in &report.results {
        eprintln!("{} {:?}", result.name, result.outcome);
    }
    assert!(report.passed(), "{:#?}", report.failures());
    let (passed, _, skipped) = report.counts();
    assert_eq!(skipped, 0, "every case applies to this driver");
    assert!(passed >= 12, "{}", report.summary());
}

#[tokio::test]
async fn the_process_backend_passes_the_compute_suite() {
    let dir = short_dir();
    passes_the_compute_suite(&Driver::start(dir.path()).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubernetes_backend_passes_the_compute_suite() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), Duration::from_millis(100)).await;
    passes_the_compute_suite(&support::kube::driver(dir.path(), &sim, &[]).await).await;
}
