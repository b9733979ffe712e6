//! The driver-conformance harness against the real binary with the process backend.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use proto::testing::short_dir;
use support::Driver;

#[tokio::test]
async fn the_process_backend_passes_the_compute_suite() {
    let dir = short_dir();
    let driver = Driver::start(dir.path()).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn the_kubernetes_backend_passes_the_compute_suite() {
    let dir = short_dir();
    let sim = support::kube::Sim::start(dir.path(), std::time::Duration::from_millis(100)).await;
    let driver = support::kube::driver(dir.path(), &sim, &[]).await;
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
