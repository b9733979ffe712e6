//! The real `compute-driver` binary on a socket: capabilities, health, SIGTERM drain,
//! and refusing to steal a live socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::time::Duration;

use nix::sys::signal::Signal;
use proto::pb::compute::v1::{GetCapabilitiesRequest, compute_driver_client::ComputeDriverClient};
use proto::pb::health::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use proto::testing::{SpawnedDriver, short_dir};
use tokio_stream::StreamExt;

const BINARY: &str = env!("CARGO_BIN_EXE_compute-driver");

/// A driver with its own socket and state directory under `dir`.
fn spawn(dir: &std::path::Path, extra: &[&str]) -> SpawnedDriver {
    let state = dir.join("state");
    let mut args = vec!["--state-dir", state.to_str().unwrap()];
    args.extend_from_slice(extra);
    SpawnedDriver::spawn_in(BINARY.as_ref(), dir, &args)
}

#[tokio::test]
async fn serves_capabilities_and_drains_on_sigterm() {
    let dir = short_dir();
    let mut driver = spawn(dir.path(), &["--shutdown-grace", "1s"]);
    let channel = driver.channel().await.unwrap();

    let caps = ComputeDriverClient::new(channel.clone())
        .get_capabilities(GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.driver_name, "compute-driver");
    assert_eq!(caps.driver_version, env!("CARGO_PKG_VERSION"));

    let mut health = HealthClient::new(channel)
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = health.next().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    driver.signal(Signal::SIGTERM);
    let next = tokio::time::timeout(Duration::from_secs(5), health.next())
        .await
        .expect("health update after SIGTERM")
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);

    let status = driver
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(!driver.socket().exists(), "socket removed on shutdown");
}

#[tokio::test]
async fn a_second_instance_does_not_steal_a_live_socket() {
    let dir = short_dir();
    let first = spawn(dir.path(), &[]);
    first.channel().await.unwrap();

    let other_state = dir.path().join("other-state");
    let output = std::process::Command::new(BINARY)
        .arg("--socket")
        .arg(first.socket())
        .arg("--state-dir")
        .arg(&other_state)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("in use by another running instance"),
        "{stderr}"
    );
    assert!(
        !other_state.exists(),
        "it stopped before touching its state directory"
    );
    first
        .channel()
        .await
        .expect("the first instance still answers");
}

#[tokio::test]
async fn a_second_instance_does_not_share_a_state_directory() {
    let dir = short_dir();
    let first = spawn(dir.path(), &[]);
    first.channel().await.unwrap();

    let output = std::process::Command::new(BINARY)
        .arg("--socket")
        .arg(dir.path().join("second.sock"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("in use by another compute-driver"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("second.sock").exists(),
        "its socket was removed again"
    );
}

#[test]
fn help_lists_every_flag_with_its_env_var() {
    let output = std::process::Command::new(BINARY)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for env in [
        "COMPUTE_DRIVER_SOCKET",
        "COMPUTE_DRIVER_SOCKET_GROUP",
        "COMPUTE_DRIVER_ALLOWED_UIDS",
        "COMPUTE_DRIVER_SHUTDOWN_GRACE",
        "COMPUTE_DRIVER_LOG_FORMAT",
        "COMPUTE_DRIVER_LOG_LEVEL",
        "COMPUTE_DRIVER_BACKEND",
        "COMPUTE_DRIVER_STATE_DIR",
        "COMPUTE_DRIVER_STOP_GRACE",
        "COMPUTE_DRIVER_METRICS_ADDR",
    ] {
        assert!(help.contains(env), "--help lacks {env}");
    }
    assert!(help.contains("--bind-socket"));
}

/// SIGTERM with a watch open: the watch ends at once with UNAVAILABLE (its caller
/// reconnects to the next instance) instead of holding the driver for its whole
/// grace, the driver exits long before the grace, and a second instance can start on
/// the same socket and state directory right away.
#[tokio::test]
async fn sigterm_ends_open_watches_at_once_and_a_successor_starts() {
    use proto::pb::compute::v1::WatchSandboxesRequest;
    let dir = short_dir();
    let mut driver = spawn(dir.path(), &["--shutdown-grace", "60s"]);
    let channel = driver.channel().await.unwrap();
    let mut watch = ComputeDriverClient::new(channel)
        .watch_sandboxes(WatchSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();

    driver.signal(Signal::SIGTERM);
    let ended = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("the watch ends long before the 60 s grace");
    match ended {
        Some(Err(status)) => assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}"),
        other => panic!("the watch must end with UNAVAILABLE, got {other:?}"),
    }
    let status = driver
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits long before the 60 s grace");
    assert!(status.success(), "{status:?}");

    let successor = spawn(dir.path(), &[]);
    successor
        .channel()
        .await
        .expect("a second instance serves on the same socket and state directory");
}
