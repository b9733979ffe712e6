//! The mock drivers: conformant by the harness, and their faults work.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::time::Duration;

use conformance::mock::{Faults, MockCompute, MockCredentials, serve_compute, serve_credentials};
use futures_util::StreamExt;
use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::testing::{SpawnedDriver, short_dir};
use proto::{Backoff, Idempotency, RetryPolicy, WatchEvent, call, lazy_channel, reconnecting};
use tokio::sync::oneshot;
use tonic::Code;

struct Served {
    socket: std::path::PathBuf,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), proto::cli::ServerError>>,
}

fn compute(dir: &std::path::Path, faults: Faults) -> Served {
    let socket = dir.join("mc.sock");
    let config = proto::SocketConfig {
        path: socket.clone(),
        ..Default::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve_compute(&config, MockCompute::new(faults), async {
            let _ = stopped.await;
        })
        .await
    });
    Served { socket, stop, task }
}

async fn shutdown(served: Served) {
    let _ = served.stop.send(());
    served.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn both_mocks_pass_the_harness() {
    let dir = short_dir();
    let compute = compute(dir.path(), Faults::default());
    let credentials_socket = dir.path().join("mk.sock");
    let config = proto::SocketConfig {
        path: credentials_socket.clone(),
        ..Default::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let credentials = tokio::spawn(async move {
        serve_credentials(
            &config,
            MockCredentials::with_defaults(Faults::default()),
            async {
                let _ = stopped.await;
            },
        )
        .await
    });

    let report = conformance::run(&conformance::Config {
        compute_socket: Some(compute.socket.clone()),
        credentials_socket: Some(credentials_socket),
        credentials: conformance::credentials::CredentialsInputs {
            names: vec![],
            subject_token: Some(proto::Secret::new("valid-alice")),
        },
        repeat: 3,
        parallel: 4,
        ..conformance::Config::default()
    })
    .await;
    assert!(report.passed(), "{:#?}", report.failures());
    assert_eq!(
        report.counts().2,
        0,
        "nothing skipped: {}",
        report.summary()
    );

    shutdown(compute).await;
    let _ = stop.send(());
    credentials.await.unwrap().unwrap();
}

#[tokio::test]
async fn injected_failures_latency_hangs_and_watch_ends() {
    let dir = short_dir();
    let faults = Faults::default();
    let served = compute(dir.path(), faults.clone());
    let channel = proto::connect(&served.socket, &proto::ConnectConfig::default())
        .await
        .unwrap();
    let client = ComputeDriverClient::new(channel);
    let policy = RetryPolicy {
        backoff: Backoff::try_new(Duration::from_millis(10), Duration::from_millis(50), 0.0)
            .unwrap(),
        ..RetryPolicy::default()
    };

    faults
        .fail_next("ListSandboxes", Code::Unavailable, 2)
        .await;
    let mut attempts = 0;
    let listed = call(
        &policy,
        Idempotency::Idempotent,
        || pb::ListSandboxesRequest {},
        |request| {
            attempts += 1;
            let mut client = client.clone();
            async move { client.list_sandboxes(request).await }
        },
    )
    .await
    .unwrap();
    assert!(listed.sandboxes.is_empty());
    assert_eq!(attempts, 3, "two injected failures, then success");

    faults
        .set_latency("GetGatewayListenerRequirements", Duration::from_millis(150))
        .await;
    let started = tokio::time::Instant::now();
    client
        .clone()
        .get_gateway_listener_requirements(pb::GetGatewayListenerRequirementsRequest {})
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));

    faults.hang("GetCapabilities").await;
    let mut request = tonic::Request::new(pb::GetCapabilitiesRequest {});
    request.set_timeout(Duration::from_millis(200));
    let status = client.clone().get_capabilities(request).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    faults.clear().await;

    let watch_client = ComputeDriverClient::new(lazy_channel(&served.socket));
    let mut events = reconnecting(policy.backoff, move || {
        let mut client = watch_client.clone();
        async move { client.watch_sandboxes(pb::WatchSandboxesRequest {}).await }
    });
    assert!(matches!(events.next().await, Some(WatchEvent::Connected)));
    faults.end_watches();
    let mut reconnected = false;
    for _ in 0..4 {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
        {
            Some(WatchEvent::Disconnected(status)) => assert_eq!(status.code(), Code::Unavailable),
            Some(WatchEvent::Connected) => {
                reconnected = true;
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(reconnected, "the watch reconnected after the mock ended it");
    drop(events);
    shutdown(served).await;
}

#[tokio::test]
async fn the_mock_binary_takes_failures_from_flags() {
    let driver = SpawnedDriver::spawn(
        env!("CARGO_BIN_EXE_mock-compute-driver").as_ref(),
        &["--fail", "ListSandboxes=UNAVAILABLE:1"],
    );
    let mut client = ComputeDriverClient::new(driver.channel().await.unwrap());
    let first = client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable);
    assert!(first.message().contains("injected"));
    client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap();
}

#[tokio::test]
async fn a_restart_closes_connections_and_keeps_the_state() {
    use conformance::mock::MockServer;
    let dir = short_dir();
    let socket = dir.path().join("mr.sock");
    let mut server = MockServer::compute(
        proto::SocketConfig {
            path: socket.clone(),
            ..Default::default()
        },
        MockCompute::new(Faults::default()),
    )
    .await
    .unwrap();
    let mut client = ComputeDriverClient::new(
        proto::connect(&socket, &proto::ConnectConfig::default())
            .await
            .unwrap(),
    );
    let sandbox = pb::DriverSandbox {
        id: "kept".into(),
        name: "kept".into(),
        spec: Some(pb::DriverSandboxSpec::default()),
        ..Default::default()
    };
    client
        .create_sandbox(pb::CreateSandboxRequest {
            sandbox: Some(sandbox),
        })
        .await
        .unwrap();

    let watch_client = ComputeDriverClient::new(lazy_channel(&socket));
    let backoff =
        Backoff::try_new(Duration::from_millis(10), Duration::from_millis(50), 0.0).unwrap();
    let mut events = reconnecting(backoff, move || {
        let mut client = watch_client.clone();
        async move { client.watch_sandboxes(pb::WatchSandboxesRequest {}).await }
    });
    assert!(matches!(events.next().await, Some(WatchEvent::Connected)));
    assert!(
        matches!(events.next().await, Some(WatchEvent::Item(_))),
        "snapshot"
    );

    server.restart().await.unwrap();
    let mut saw_disconnect = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
        {
            WatchEvent::Disconnected(_) => saw_disconnect = true,
            WatchEvent::Connected => break,
            WatchEvent::Item(_) => {}
        }
    }
    assert!(saw_disconnect, "the open watch was cut by the restart");
    let Some(WatchEvent::Item(event)) = events.next().await else {
        panic!("a snapshot after the restart")
    };
    let Some(pb::watch_sandboxes_event::Payload::Sandbox(s)) = event.payload else {
        panic!("a sandbox event")
    };
    assert_eq!(s.sandbox.unwrap().id, "kept", "state survived the restart");
    drop(events);
    server.stop().await;
    assert!(!socket.exists());
}
