//! The gateway against the mock drivers over real sockets, with faults: a driver
//! absent at start, a driver restarted mid-watch, retried and unretried failures, a
//! hung driver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use conformance::mock::{Faults, MockCompute, MockCredentials, MockServer, serve_credentials};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use proto::testing::short_dir;
use support::{Gateway, args, by_name, create_request, phase, socket, wait_phase};
use tokio::time::Instant;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_absent_at_start_is_waited_for_and_reads_keep_working() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let gateway = Gateway::start(args(dir.path(), &compute_socket, None)).await;
    gateway.wait_health(ServingStatus::NotServing).await;
    let mut client = gateway.client().await;

    assert!(
        client
            .list_sandboxes(pb::ListSandboxesRequest {})
            .await
            .unwrap()
            .into_inner()
            .sandboxes
            .is_empty()
    );
    let started = Instant::now();
    let refused = client
        .create_sandbox(create_request("early"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("compute driver") && !refused.message().contains("c.sock"),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fails fast, took {:?}",
        started.elapsed()
    );
    assert_eq!(
        client
            .get_sandbox(by_name("early"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "nothing half-created"
    );

    let faults = Faults::default();
    let mut mock = MockServer::compute(socket(&compute_socket), MockCompute::new(faults))
        .await
        .unwrap();
    gateway.wait_health(ServingStatus::Serving).await;
    client.create_sandbox(create_request("late")).await.unwrap();
    wait_phase(&mut client, "late", "Ready").await;

    mock.stop().await;
    gateway.wait_health(ServingStatus::NotServing).await;
    let listed = client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.sandboxes.len(),
        1,
        "records are kept while the driver is down"
    );
    let refused = client.stop_sandbox(by_name("late")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    mock.restart().await.unwrap();
    gateway.wait_health(ServingStatus::Serving).await;
    client.stop_sandbox(by_name("late")).await.unwrap();
    wait_phase(&mut client, "late", "Stopped").await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_restarted_mid_watch_is_caught_up_without_loss_or_duplicates() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let mock_compute = MockCompute::new(Faults::default());
    let mut mock = MockServer::compute(socket(&compute_socket), mock_compute.clone())
        .await
        .unwrap();
    let gateway = Gateway::start(args(dir.path(), &compute_socket, None)).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(
            client
                .create_sandbox(create_request(name))
                .await
                .unwrap()
                .into_inner()
                .id,
        );
        wait_phase(&mut client, name, "Ready").await;
    }
    let mut watch = client
        .watch_sandboxes(pb::WatchSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();

    // Down: changes happen that no watch stream reports.
    mock.stop().await;
    mock_compute.change_silently(&ids[0], Some(false)).await;
    mock_compute.change_silently(&ids[2], None).await;
    mock.restart().await.unwrap();
    wait_phase(&mut client, "a", "Stopped").await;
    let c = wait_phase(&mut client, "c", "Error").await;
    let reason = &c.status.unwrap().conditions[0].reason;
    assert_eq!(reason, "NotFoundAtDriver");
    assert_eq!(
        phase(&client.get_sandbox(by_name("b")).await.unwrap().into_inner()),
        "Ready"
    );
    let listed = client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes;
    let mut names: Vec<_> = listed.iter().map(|s| s.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"], "nothing lost, nothing duplicated");

    // The public watch saw the snapshot and then followed the catch-up.
    let mut saw_a_stopped = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !saw_a_stopped && Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .unwrap()
        else {
            break;
        };
        if let Some(pb::sandbox_event::Payload::Sandbox(s)) = event.payload {
            saw_a_stopped = s.name == "a" && phase(&s) == "Stopped";
        }
    }
    assert!(saw_a_stopped, "the gateway's watch followed the reconcile");
    // An open watch must not keep the gateway from stopping.
    tokio::time::timeout(Duration::from_secs(20), gateway.stop())
        .await
        .expect("the gateway stops while a client is watching");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_refusals_are_not() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let faults = Faults::default();
    let _mock = MockServer::compute(socket(&compute_socket), MockCompute::new(faults.clone()))
        .await
        .unwrap();
    let gateway = Gateway::start(args(dir.path(), &compute_socket, None)).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;

    faults
        .fail_next("CreateSandbox", Code::Unavailable, 2)
        .await;
    client
        .create_sandbox(create_request("flaky"))
        .await
        .unwrap();
    wait_phase(&mut client, "flaky", "Ready").await;

    // One INVALID_ARGUMENT, then the mock would accept: a retry would succeed, so a
    // failure here proves there was none.
    faults
        .fail_next("CreateSandbox", Code::InvalidArgument, 1)
        .await;
    let refused = client
        .create_sandbox(create_request("refused"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("compute driver") && refused.message().contains("injected"),
        "{refused:?}"
    );
    assert_eq!(
        client
            .get_sandbox(by_name("refused"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "the record of a refused create is removed"
    );
    client
        .create_sandbox(create_request("refused"))
        .await
        .unwrap();
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_is_ensured_once_and_again_after_a_failed_create() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let faults = Faults::default();
    let _mock = MockServer::compute(socket(&compute_socket), MockCompute::new(faults.clone()))
        .await
        .unwrap();
    let gateway = Gateway::start(args(dir.path(), &compute_socket, None)).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;
    client
        .create_sandbox(create_request("first"))
        .await
        .unwrap();
    // A refusal armed for the next EnsureWorkspace: the next create in the same
    // workspace does not call it, so it succeeds and the refusal stays armed.
    faults
        .fail_next("EnsureWorkspace", Code::FailedPrecondition, 1)
        .await;
    client
        .create_sandbox(create_request("second"))
        .await
        .unwrap();
    // A failed create makes the next one ensure the workspace again: it meets the
    // armed refusal.
    faults
        .fail_next("CreateSandbox", Code::InvalidArgument, 1)
        .await;
    let refused = client
        .create_sandbox(create_request("third"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let again = client
        .create_sandbox(create_request("third"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("injected"), "{again:?}");
    // Ensured once more, creates go through.
    client
        .create_sandbox(create_request("third"))
        .await
        .unwrap();
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_driver_call_ends_at_its_deadline() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let faults = Faults::default();
    let _mock = MockServer::compute(socket(&compute_socket), MockCompute::new(faults.clone()))
        .await
        .unwrap();
    let gateway = Gateway::start(args(dir.path(), &compute_socket, None)).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;
    client.create_sandbox(create_request("h")).await.unwrap();

    faults.hang("StopSandbox").await;
    let started = Instant::now();
    let error = client.stop_sandbox(by_name("h")).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "driver_call_timeout is 3 s; took {took:?}"
    );
    faults.clear().await;
    client.stop_sandbox(by_name("h")).await.unwrap();
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_credentials_driver_providers_fail_with_a_precondition() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let mock_compute = MockCompute::new(Faults::default());
    let _mock = MockServer::compute(socket(&compute_socket), mock_compute.clone())
        .await
        .unwrap();
    let gateway = Gateway::start(args(dir.path(), &compute_socket, None)).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;
    let provider = pb::Provider {
        name: "p".into(),
        r#type: "generic".into(),
        credential: "mock-static".into(),
        ..Default::default()
    };
    // A provider's credential cannot be checked (does the driver serve it? may its owner
    // use it?) without the driver: refused, saying which flag is missing.
    let error = client.create_provider(provider).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert!(
        error.message().contains("--credentials-driver-socket"),
        "{error:?}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_resolves_an_attached_provider_through_the_credentials_driver() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let credentials_socket = dir.path().join("k.sock");
    let mock_compute = MockCompute::new(Faults::default());
    let _mock = MockServer::compute(socket(&compute_socket), mock_compute.clone())
        .await
        .unwrap();
    let config = socket(&credentials_socket);
    let credentials_faults = Faults::default();
    let mock_credentials = MockCredentials::with_defaults(credentials_faults.clone());
    tokio::spawn(async move {
        serve_credentials(&config, mock_credentials, std::future::pending()).await
    });
    let gateway =
        Gateway::start(args(dir.path(), &compute_socket, Some(&credentials_socket))).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut client = gateway.client().await;
    for name in ["p", "other"] {
        let provider = pb::Provider {
            name: name.into(),
            r#type: "generic".into(),
            credential: "mock-static".into(),
            endpoint: "https://api.example".into(),
            ..Default::default()
        };
        client.create_provider(provider).await.unwrap();
    }
    let mut request = create_request("s");
    request.providers = vec!["p".into()];
    let sandbox = client.create_sandbox(request).await.unwrap().into_inner();
    let mut as_sandbox = gateway
        .client_with(&mock_compute.token_of(&sandbox.id).await.unwrap())
        .await;

    credentials_faults
        .fail_next("ResolveCredential", Code::Unavailable, 1)
        .await;
    let resolved = as_sandbox
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "p".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (resolved.token.as_str(), resolved.endpoint.as_str()),
        ("mock-static-token", "https://api.example")
    );
    let not_attached = as_sandbox
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "other".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_attached.code(), Code::NotFound);
    // A sandbox token cannot make user calls, nor a user token sandbox calls.
    let denied = as_sandbox
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = client
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    client.delete_sandbox(by_name("s")).await.unwrap();
    let gone = as_sandbox
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        gone.code(),
        Code::Unauthenticated,
        "a deleted sandbox's token is dead"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_reports_readiness_and_counts_calls() {
    let dir = short_dir();
    let compute_socket = dir.path().join("c.sock");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut gateway_args = args(dir.path(), &compute_socket, None);
    gateway_args.metrics_addr = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let gateway = Gateway::start(gateway_args).await;
    gateway.wait_health(ServingStatus::NotServing).await;
    let admin = format!("http://127.0.0.1:{port}");
    let status = |path: &'static str| {
        let url = format!("{admin}{path}");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(
        status("/readyz").await,
        503,
        "not ready without the compute driver"
    );

    let _mock = MockServer::compute(socket(&compute_socket), MockCompute::new(Faults::default()))
        .await
        .unwrap();
    gateway.wait_health(ServingStatus::Serving).await;
    assert_eq!(status("/readyz").await, 200);
    let mut client = gateway.client().await;
    client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap();
    client.get_sandbox(by_name("nope")).await.unwrap_err();
    let mut anonymous = pb::gateway_client::GatewayClient::new(gateway.channel().await);
    anonymous
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap_err();
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"gateway_rpc_total{method="ListSandboxes",code="OK"} 1"#,
        r#"gateway_rpc_total{method="GetSandbox",code="NOT_FOUND"} 1"#,
        r#"gateway_rpc_total{method="ListSandboxes",code="UNAUTHENTICATED"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    gateway.stop().await;
}
