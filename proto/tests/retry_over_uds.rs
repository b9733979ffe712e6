//! The retry helper against a real server on a socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::time::Duration;

use proto::pb::credentials::v1::{
    ResolveCredentialRequest, credentials_driver_client::CredentialsDriverClient,
};
use proto::{Backoff, Idempotency, RetryPolicy, call, lazy_channel};
use support::{Scripted, config, serve, short_dir, sock};
use tonic::Code;

fn policy() -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff::try_new(Duration::from_millis(20), Duration::from_millis(100), 0.5)
            .unwrap(),
        max_attempts: 100,
        attempt_timeout: Some(Duration::from_secs(2)),
        deadline: Duration::from_secs(10),
    }
}

async fn resolve(
    client: &CredentialsDriverClient<tonic::transport::Channel>,
    idempotency: Idempotency,
) -> Result<String, tonic::Status> {
    call(
        &policy(),
        idempotency,
        || ResolveCredentialRequest {
            name: "gh".into(),
            ..Default::default()
        },
        |request| {
            let mut client = client.clone();
            async move { client.resolve_credential(request).await }
        },
    )
    .await
    .map(|response| response.token)
}

#[tokio::test]
async fn transient_failures_are_retried_and_the_deadline_reaches_the_server() {
    let dir = short_dir();
    let path = sock(&dir);
    let service = Scripted::with_script([Code::Unavailable, Code::ResourceExhausted, Code::Ok]);
    let server = serve(config(&path), service.clone()).await;
    let client = CredentialsDriverClient::new(lazy_channel(&path));

    let token = resolve(&client, Idempotency::NonIdempotent).await.unwrap();
    assert_eq!(token, "scripted-token");
    let timeouts = service.timeouts.lock().unwrap().clone();
    assert_eq!(timeouts.len(), 3);
    assert!(
        timeouts.iter().all(Option::is_some),
        "grpc-timeout sent: {timeouts:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn permanent_failures_reach_the_caller_after_one_attempt() {
    let dir = short_dir();
    let path = sock(&dir);
    let service = Scripted::with_script([Code::NotFound, Code::Ok]);
    let server = serve(config(&path), service.clone()).await;
    let client = CredentialsDriverClient::new(lazy_channel(&path));

    let status = resolve(&client, Idempotency::Idempotent).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(service.calls(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_made_while_the_server_is_down_succeeds_once_it_is_up() {
    let dir = short_dir();
    let path = sock(&dir);
    let client = CredentialsDriverClient::new(lazy_channel(&path));
    let pending = tokio::spawn({
        let client = client.clone();
        async move { resolve(&client, Idempotency::Idempotent).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished());
    let server = serve(config(&path), Scripted::default()).await;
    assert_eq!(pending.await.unwrap().unwrap(), "scripted-token");
    server.shutdown().await;
}
