//! Watch streams: JSON lines of ADDED/MODIFIED/DELETED events after a resourceVersion
//! (the current objects as ADDED when none is given), BOOKMARK events when asked for,
//! an ERROR event with a 410 `Status` when the version is older than the history kept.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::http::Shared;
use super::selector::Selector;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// A watch: changes after `resourceVersion` (all current objects as ADDED when it is
/// empty or "0"), bookmarks when asked for, ended by `timeoutSeconds`.
pub(super) async fn stream(
    s: Shared,
    resource: String,
    namespace: Option<String>,
    selector: Selector,
    query: &HashMap<String, String>,
) -> Response {
    let since: Option<u64> = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    let kind = super::http::list_kind(&resource)
        .trim_end_matches("List")
        .to_owned();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let mut changed = s.changed.subscribe();
    let mut down = s.down.subscribe();
    tokio::spawn(async move {
        let line = |value: Value| Bytes::from(format!("{value}\n"));
        let mut last = match since {
            Some(version) => version,
            None => {
                let store = s.store.lock().await;
                let Ok((items, version)) = store.list(&resource, namespace.as_deref(), &selector)
                else {
                    return;
                };
                drop(store);
                for item in items {
                    if tx
                        .send(Ok(line(json!({"type": "ADDED", "object": item}))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                version
            }
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            let events = s.store.lock().await.events_since(last);
            let events = match events {
                Ok(events) => events,
                Err(expired) => {
                    let _ = tx
                        .send(Ok(line(
                            json!({"type": "ERROR", "object": expired.status()}),
                        )))
                        .await;
                    return;
                }
            };
            for event in events {
                last = event.version;
                let object = &event.object;
                let in_scope = event.resource == resource
                    && namespace
                        .as_deref()
                        .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns))
                    && selector.matches_object(object);
                if in_scope
                    && tx
                        .send(Ok(line(
                            json!({"type": event.change.as_str(), "object": object}),
                        )))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = tick.tick(), if bookmarks => {
                    let bookmark = json!({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": "v1",
                        "metadata": {"resourceVersion": last.to_string()},
                    }});
                    if tx.send(Ok(line(bookmark))).await.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(deadline) => return,
                () = tx.closed() => return,
                () = async { drop(down.wait_for(|down| *down).await) } => return,
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
