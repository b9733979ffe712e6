//! The real `compute-driver` binary on a socket: capabilities, health, SIGTERM drain,
//! and refusing to steal a live socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::time::Duration;

use nix::sys::signal::Signal;
use proto::pb::compute::v1::{GetCapabilitiesRequest, compute_driver_client::ComputeDriverClient};
use proto::pb::health::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use proto::testing::SpawnedDriver;
use tokio_stream::StreamExt;

const BINARY: &str = env!("CARGO_BIN_EXE_compute-driver");

#[tokio::test]
async fn serves_capabilities_and_drains_on_sigterm() {
    let mut driver = SpawnedDriver::spawn(BINARY.as_ref(), &["--shutdown-grace", "1s"]);
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
    let first = SpawnedDriver::spawn(BINARY.as_ref(), &[]);
    first.channel().await.unwrap();

    let output = std::process::Command::new(BINARY)
        .arg("--socket")
        .arg(first.socket())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("in use by another running instance"),
        "{stderr}"
    );
    first
        .channel()
        .await
        .expect("the first instance still answers");
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
    ] {
        assert!(help.contains(env), "--help lacks {env}");
    }
    assert!(help.contains("--bind-socket"));
}
