//! Lazy connect and readiness: a client may start before its server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::time::Duration;

use proto::{ConnectConfig, ConnectError, connect};
use support::{Scripted, config, serve, short_dir, sock};
use tokio::time::Instant;

fn quick(deadline: Duration) -> ConnectConfig {
    ConnectConfig {
        deadline,
        log_every: Duration::from_millis(200),
        ..ConnectConfig::default()
    }
}

#[tokio::test]
async fn a_client_started_before_the_server_connects_once_the_socket_appears() {
    let dir = short_dir();
    let path = sock(&dir);
    let client = tokio::spawn({
        let path = path.clone();
        async move { connect(&path, &quick(Duration::from_secs(10))).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!client.is_finished(), "client must still be waiting");

    let server = serve(config(&path), Scripted::default()).await;
    let channel = client
        .await
        .unwrap()
        .expect("connects once the server is up");
    let mut health = proto::pb::health::health_client::HealthClient::new(channel);
    let reply = health
        .check(proto::pb::health::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(
        reply.get_ref().status(),
        proto::pb::health::health_check_response::ServingStatus::Serving
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_gives_up_at_its_deadline_naming_the_socket() {
    let dir = short_dir();
    let path = sock(&dir);
    let started = Instant::now();
    let error = connect(&path, &quick(Duration::from_millis(700)))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    let ConnectError::GaveUp { socket, .. } = &error;
    assert_eq!(socket, &path);
    let text = error.to_string();
    assert!(text.contains(path.to_str().unwrap()), "{text}");
    assert!(text.contains("No such file"), "{text}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn a_stale_socket_file_is_not_mistaken_for_a_ready_server() {
    let dir = short_dir();
    let path = sock(&dir);
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let error = connect(&path, &quick(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("refused"), "{error}");
}

#[tokio::test]
async fn a_not_serving_server_is_not_ready_until_it_serves() {
    let dir = short_dir();
    let path = sock(&dir);
    let server = serve(config(&path), Scripted::default()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.health.set_not_serving().await;

    let client = tokio::spawn({
        let path = path.clone();
        async move { connect(&path, &quick(Duration::from_secs(10))).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!client.is_finished(), "NOT_SERVING must not count as ready");
    server.health.set_serving().await;
    client.await.unwrap().unwrap();
    server.shutdown().await;
}
