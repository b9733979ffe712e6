//! The real gateway and the real drivers, in one process over real sockets: the
//! gateway serves before its drivers exist and turns SERVING when they answer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::time::Duration;

use clap::Parser;
use gateway_shim::{GatewayConfig, run_gateway};
use proto::pb::health::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use proto::testing::short_dir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn gateway_args(
    compute: std::path::PathBuf,
    credentials: Option<std::path::PathBuf>,
    listen: std::net::SocketAddr,
    dir: &std::path::Path,
) -> GatewayConfig {
    GatewayConfig {
        credentials_driver_socket: credentials,
        listen,
        db_url: "sqlite::memory:".into(),
        local_token_file: Some(dir.join("gateway.token")),
        sandbox_token_ttl: Duration::from_secs(3600),
        driver_call_timeout: Duration::from_secs(5),
        ..GatewayConfig::new(compute)
    }
}

async fn gateway_health(addr: std::net::SocketAddr) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = HealthClient::new(channel);
    let reply = client.check(HealthCheckRequest::default()).await.ok()?;
    Some(reply.get_ref().status())
}

async fn wait_for_health(addr: std::net::SocketAddr, want: ServingStatus) {
    for _ in 0..200 {
        if gateway_health(addr).await == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gateway health never became {want:?}");
}

#[tokio::test]
async fn the_gateway_waits_for_drivers_that_start_after_it() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let credentials_socket = dir.path().join("k.sock");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let args = gateway_args(
        compute_socket.clone(),
        Some(credentials_socket.clone()),
        addr,
        dir.path(),
    );
    let (stop_gateway, gateway_stopped) = oneshot::channel::<()>();
    let gateway = tokio::spawn(async move {
        run_gateway(&args, listener, async {
            let _ = gateway_stopped.await;
        })
        .await
    });

    wait_for_health(addr, ServingStatus::NotServing).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway_health(addr).await, Some(ServingStatus::NotServing));

    let (stop_compute, compute_stopped) = oneshot::channel::<()>();
    let compute = tokio::spawn(compute_driver::run_until(
        compute_driver::Args::try_parse_from([
            "compute-driver",
            "--socket",
            compute_socket.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
        ])
        .unwrap(),
        async {
            let _ = compute_stopped.await;
        },
    ));
    let (stop_credentials, credentials_stopped) = oneshot::channel::<()>();
    let credentials = tokio::spawn(credentials_driver::run_until(
        credentials_driver::Args::try_parse_from([
            "credentials-driver",
            "--socket",
            credentials_socket.to_str().unwrap(),
        ])
        .unwrap(),
        async {
            let _ = credentials_stopped.await;
        },
    ));

    wait_for_health(addr, ServingStatus::Serving).await;

    stop_gateway.send(()).unwrap();
    gateway.await.unwrap().unwrap();
    stop_compute.send(()).unwrap();
    stop_credentials.send(()).unwrap();
    compute.await.unwrap().unwrap();
    credentials.await.unwrap().unwrap();
    assert!(!compute_socket.exists() && !credentials_socket.exists());
}

#[test]
fn serve_without_a_compute_socket_says_which_flag_is_missing() {
    let matches = proto::cli::command_with_env_on::<gateway_shim::Args>(
        gateway_shim::ENV_PREFIX,
        gateway_shim::SERVER_COMMANDS,
    )
    .try_get_matches_from(["gateway-shim", "serve"])
    .unwrap();
    let args = <gateway_shim::Args as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
    let gateway_shim::Command::Serve(serve) = args.command else {
        panic!("not serve");
    };
    let error = serve.config().unwrap_err();
    assert!(error.contains("--compute-driver-socket"), "{error}");
}
