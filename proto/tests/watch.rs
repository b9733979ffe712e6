//! The reconnecting watch helper across a server restart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use proto::pb::health::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use proto::{Backoff, WatchEvent, lazy_channel, reconnecting};
use support::{Scripted, config, serve, serve_without_health, short_dir, sock};

async fn next_status<S>(events: &mut S) -> (bool, ServingStatus)
where
    S: futures_util::Stream<Item = WatchEvent<proto::pb::health::HealthCheckResponse>> + Unpin,
{
    let mut reconnected = false;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("watch event in time")
            .expect("watch stream open");
        match event {
            WatchEvent::Connected => reconnected = true,
            WatchEvent::Disconnected(_) => reconnected = false,
            WatchEvent::Item(item) => return (reconnected, item.status()),
        }
    }
}

#[tokio::test]
async fn a_watch_reconnects_after_the_server_restarts_and_marks_the_new_stream() {
    let dir = short_dir();
    let path = sock(&dir);
    let server = serve(config(&path), Scripted::default()).await;
    let client = HealthClient::new(lazy_channel(&path));
    let backoff =
        Backoff::try_new(Duration::from_millis(20), Duration::from_millis(200), 0.5).unwrap();
    let mut events = reconnecting(backoff, move || {
        let mut client = client.clone();
        async move { client.watch(HealthCheckRequest::default()).await }
    });

    assert_eq!(
        next_status(&mut events).await,
        (true, ServingStatus::Serving)
    );
    server.health.set_not_serving().await;
    assert_eq!(
        next_status(&mut events).await,
        (false, ServingStatus::NotServing)
    );

    server.shutdown().await;
    let restarted = serve(config(&path), Scripted::default()).await;
    // Drain what the old stream said while shutting down; the new stream is marked.
    let mut after_restart = next_status(&mut events).await;
    while !after_restart.0 {
        after_restart = next_status(&mut events).await;
    }
    assert_eq!(
        after_restart,
        (true, ServingStatus::Serving),
        "a new stream, marked Connected, opens with the current state"
    );
    restarted.shutdown().await;
}

#[tokio::test]
async fn a_permanent_error_ends_the_watch() {
    let dir = short_dir();
    let path = sock(&dir);
    let server = serve_without_health(config(&path), Scripted::default()).await;
    let client = HealthClient::new(lazy_channel(&path));
    let events = reconnecting(Backoff::CALL, move || {
        let mut client = client.clone();
        async move { client.watch(HealthCheckRequest::default()).await }
    });
    let all: Vec<_> = tokio::time::timeout(Duration::from_secs(10), events.collect())
        .await
        .expect("the watch ends by itself");
    assert!(
        matches!(all.as_slice(), [WatchEvent::Disconnected(s)] if s.code() == tonic::Code::Unimplemented),
        "{all:?}"
    );
    server.shutdown().await;
}
