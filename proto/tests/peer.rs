//! Peer-credential allowlist over a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::time::Duration;

use proto::pb::credentials::v1::{
    ResolveCredentialRequest, credentials_driver_client::CredentialsDriverClient,
};
use proto::{SocketConfig, lazy_channel};
use support::{Scripted, config, serve, short_dir, sock};

async fn resolve(path: &std::path::Path) -> Result<(), tonic::Status> {
    let mut client = CredentialsDriverClient::new(lazy_channel(path));
    let mut request = tonic::Request::new(ResolveCredentialRequest {
        name: "any".into(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(2));
    client.resolve_credential(request).await.map(drop)
}

#[tokio::test]
async fn a_peer_whose_uid_is_not_allowed_cannot_complete_a_call() {
    let dir = short_dir();
    let path = sock(&dir);
    let us = nix::unistd::Uid::effective().as_raw();
    let service = Scripted::default();
    let server = serve(
        SocketConfig {
            allowed_uids: vec![us.wrapping_add(1)],
            ..config(&path)
        },
        service.clone(),
    )
    .await;

    // The connection is closed at accept: the transport fails (UNAVAILABLE or, when the
    // request was already being written, UNKNOWN "transport error") and the service
    // never sees the call.
    let status = resolve(&path).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown
        ),
        "{status:?}"
    );
    assert_eq!(service.calls(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn an_allowed_peer_completes_a_call() {
    let dir = short_dir();
    let path = sock(&dir);
    let us = nix::unistd::Uid::effective().as_raw();
    let service = Scripted::default();
    let server = serve(
        SocketConfig {
            allowed_uids: vec![us],
            ..config(&path)
        },
        service.clone(),
    )
    .await;
    resolve(&path).await.unwrap();
    assert_eq!(service.calls(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_allowed_gid_admits_a_peer_whose_uid_is_not_listed() {
    let dir = short_dir();
    let path = sock(&dir);
    let us = nix::unistd::Uid::effective().as_raw();
    let our_gid = nix::unistd::Gid::effective().as_raw();
    let server = serve(
        SocketConfig {
            allowed_uids: vec![us.wrapping_add(1)],
            allowed_gids: vec![our_gid],
            ..config(&path)
        },
        Scripted::default(),
    )
    .await;
    resolve(&path).await.unwrap();
    server.shutdown().await;
}
