//! `DirectChannel` against a real server on a socket: calls and refusals, a missing
//! socket, one connection for concurrent first calls, redialling after a restart, and
//! callers giving up mid-dial and mid-call.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use proto::pb::credentials::v1::{
    ResolveCredentialRequest, credentials_driver_client::CredentialsDriverClient,
};
use proto::uds::DirectChannel;
use proto::{Backoff, Idempotency, RetryPolicy, call};
use support::{Scripted, config, serve, short_dir, sock};
use tokio::net::{UnixListener, UnixStream};
use tonic::Code;

type Client = CredentialsDriverClient<DirectChannel>;

fn request() -> ResolveCredentialRequest {
    ResolveCredentialRequest {
        name: "gh".into(),
        ..Default::default()
    }
}

async fn resolve_once(client: &Client) -> Result<String, tonic::Status> {
    let mut client = client.clone();
    let mut request = tonic::Request::new(request());
    request.set_timeout(Duration::from_secs(5));
    client
        .resolve_credential(request)
        .await
        .map(|r| r.into_inner().token)
}

/// A socket at `front` that forwards every connection to `back`, counting them.
fn counting_proxy(front: PathBuf, back: PathBuf) -> Arc<AtomicUsize> {
    let listener = UnixListener::bind(front).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let back = back.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = UnixStream::connect(&back).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    accepted
}

/// Polls `future` once, then drops it: a caller that gives up at that point.
fn poll_once_and_drop<F: Future>(future: F) -> bool {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(future.as_mut().poll(&mut cx), Poll::Pending)
}

#[tokio::test]
async fn answers_and_refusals_reach_the_caller_with_their_code_and_deadline() {
    let dir = short_dir();
    let path = sock(&dir);
    let service = Scripted::with_script([Code::NotFound, Code::Ok]);
    let server = serve(config(&path), service.clone()).await;
    let client = Client::new(DirectChannel::lazy(&path));

    let refused = resolve_once(&client).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(refused.message(), "scripted failure");
    assert_eq!(resolve_once(&client).await.unwrap(), "scripted-token");
    let timeouts = service.timeouts.lock().unwrap().clone();
    assert_eq!(timeouts.len(), 2);
    assert!(timeouts.iter().all(Option::is_some), "{timeouts:?}");
    assert_eq!(
        proto::uds::health_probe(DirectChannel::lazy(&path), Duration::from_secs(1)).await,
        proto::Readiness::Ready
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_socket_nobody_serves_answers_unavailable_naming_it() {
    let dir = short_dir();
    let path = sock(&dir);
    let client = Client::new(DirectChannel::lazy(&path));
    let status = resolve_once(&client).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(path.to_str().unwrap()),
        "{status:?}"
    );
}

#[tokio::test]
async fn concurrent_first_calls_share_one_connection() {
    let dir = short_dir();
    let back = dir.path().join("back.sock");
    let front = dir.path().join("front.sock");
    let server = serve(config(&back), Scripted::default()).await;
    let accepted = counting_proxy(front.clone(), back);
    let client = Client::new(DirectChannel::lazy(&front));

    let calls: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { resolve_once(&client).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), "scripted-token");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_restarted_server_is_dialled_again() {
    let dir = short_dir();
    let path = sock(&dir);
    let client = Client::new(DirectChannel::lazy(&path));
    let server = serve(config(&path), Scripted::default()).await;
    assert_eq!(resolve_once(&client).await.unwrap(), "scripted-token");
    server.shutdown().await;

    let down = resolve_once(&client).await.unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");

    let server = serve(config(&path), Scripted::default()).await;
    let policy = RetryPolicy {
        backoff: Backoff::try_new(Duration::from_millis(20), Duration::from_millis(100), 0.5)
            .unwrap(),
        max_attempts: 50,
        attempt_timeout: Some(Duration::from_secs(2)),
        deadline: Duration::from_secs(10),
    };
    let token = call(&policy, Idempotency::Idempotent, request, |request| {
        let mut client = client.clone();
        async move { client.resolve_credential(request).await }
    })
    .await
    .unwrap()
    .token;
    assert_eq!(token, "scripted-token");
    server.shutdown().await;
}

#[tokio::test]
async fn callers_giving_up_mid_dial_or_mid_call_leave_the_channel_usable() {
    let dir = short_dir();
    let back = dir.path().join("back.sock");
    let front = dir.path().join("front.sock");
    let service = Scripted::default();
    let server = serve(config(&back), service.clone()).await;
    let accepted = counting_proxy(front.clone(), back);
    let client = Client::new(DirectChannel::lazy(&front));

    // Gives up while the first dial is under way (it holds the dial lock).
    assert!(poll_once_and_drop(resolve_once(&client)));
    assert_eq!(resolve_once(&client).await.unwrap(), "scripted-token");
    let dialled = accepted.load(Ordering::SeqCst);
    assert!((1..=2).contains(&dialled), "{dialled}");

    // Gives up once the request is handed to the open connection.
    for _ in 0..5 {
        assert!(poll_once_and_drop(resolve_once(&client)));
    }
    assert_eq!(resolve_once(&client).await.unwrap(), "scripted-token");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        dialled,
        "no new connection"
    );
    server.shutdown().await;
}
