//! The Kubernetes API simulator over HTTP, spoken to as a client would: CRUD with
//! Status bodies, label-selected lists, and watch streams (snapshot, changes,
//! bookmarks, 410 after compaction).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use conformance::kube_sim::http::{Shared, serve};
use serde_json::{Value, json};

struct Sim {
    base: String,
    shared: Shared,
    http: reqwest::Client,
    _task: tokio::task::JoinHandle<()>,
}

impl Sim {
    async fn start() -> Self {
        let shared = Shared::default();
        let (addr, task) = serve(shared.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self {
            base: format!("http://{addr}"),
            shared,
            http: reqwest::Client::new(),
            _task: task,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

/// The next JSON line of a watch response.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String) -> Value {
    loop {
        if let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            return serde_json::from_str(line.trim()).unwrap();
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("a watch event within 5 s")
            .unwrap()
            .expect("the stream is still open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn crud_lists_and_status_bodies() {
    let sim = Sim::start().await;
    use reqwest::Method;
    let (code, _) = sim
        .send(
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"metadata": {"name": "ws"}})),
        )
        .await;
    assert_eq!(code, 201);
    let pod =
        json!({"metadata": {"name": "p", "labels": {"app": "sb"}}, "spec": {"containers": []}});
    let (code, created) = sim
        .send(
            Method::POST,
            "/api/v1/namespaces/ws/pods",
            Some(pod.clone()),
        )
        .await;
    assert_eq!((code, created["kind"].as_str()), (201, Some("Pod")));
    let (code, status) = sim
        .send(Method::POST, "/api/v1/namespaces/ws/pods", Some(pod))
        .await;
    assert_eq!(
        (code, status["kind"].as_str(), status["reason"].as_str()),
        (409, Some("Status"), Some("AlreadyExists"))
    );
    let (code, status) = sim
        .send(Method::GET, "/api/v1/namespaces/ws/pods/nope", None)
        .await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    let (code, status) = sim
        .send(
            Method::POST,
            "/api/v1/namespaces/ws/pods",
            Some(json!({"metadata": {}})),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));

    let (code, patched) = sim
        .send(
            Method::PATCH,
            "/api/v1/namespaces/ws/pods/p",
            Some(json!({"status": {"phase": "Running"}})),
        )
        .await;
    assert_eq!(
        (code, patched["status"]["phase"].as_str()),
        (200, Some("Running"))
    );
    let (_, list) = sim
        .send(
            Method::GET,
            "/api/v1/namespaces/ws/pods?labelSelector=app%3Dsb",
            None,
        )
        .await;
    assert_eq!(
        (
            list["kind"].as_str(),
            list["items"].as_array().unwrap().len()
        ),
        (Some("PodList"), 1)
    );
    assert_eq!(
        list["metadata"]["resourceVersion"],
        patched["metadata"]["resourceVersion"]
    );
    let (_, none) = sim
        .send(Method::GET, "/api/v1/pods?labelSelector=app%3Dother", None)
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (code, _) = sim
        .send(Method::DELETE, "/api/v1/namespaces/ws/pods/p", None)
        .await;
    assert_eq!(code, 200);
    let (code, _) = sim
        .send(Method::DELETE, "/api/v1/namespaces/ws/pods/p", None)
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn watches_stream_changes_bookmarks_and_410() {
    let sim = Sim::start().await;
    use reqwest::Method;
    sim.send(
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "ws"}})),
    )
    .await;
    sim.send(
        Method::POST,
        "/api/v1/namespaces/ws/pods",
        Some(json!({"metadata": {"name": "a", "labels": {"app": "sb"}}})),
    )
    .await;
    let (_, list) = sim
        .send(Method::GET, "/api/v1/namespaces/ws/pods", None)
        .await;
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // Snapshot first when no version is given.
    let response = sim
        .http
        .get(format!(
            "{}/api/v1/namespaces/ws/pods?watch=true&labelSelector=app%3Dsb",
            sim.base
        ))
        .send()
        .await
        .unwrap();
    let mut stream = response;
    let mut buffer = String::new();
    let first = next_event(&mut stream, &mut buffer).await;
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );

    // From a version: only later changes, then bookmarks.
    let response = sim
        .http
        .get(format!("{}/api/v1/namespaces/ws/pods?watch=true&resourceVersion={version}&allowWatchBookmarks=true", sim.base))
        .send()
        .await
        .unwrap();
    let mut from_version = response;
    let mut buffer2 = String::new();
    sim.send(
        Method::PATCH,
        "/api/v1/namespaces/ws/pods/a",
        Some(json!({"status": {"phase": "Running"}})),
    )
    .await;
    let mut modified = next_event(&mut from_version, &mut buffer2).await;
    while modified["type"] == "BOOKMARK" {
        modified = next_event(&mut from_version, &mut buffer2).await;
    }
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(
        next_event(&mut stream, &mut buffer).await["type"],
        "MODIFIED",
        "the snapshot watch follows too"
    );
    let bookmark = next_event(&mut from_version, &mut buffer2).await;
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(
        bookmark["object"]["metadata"]["resourceVersion"],
        modified["object"]["metadata"]["resourceVersion"]
    );

    // After a compaction, the old version is gone: a 410 ERROR event.
    sim.shared.with_store(|store| store.compact()).await;
    let response = sim
        .http
        .get(format!(
            "{}/api/v1/namespaces/ws/pods?watch=true&resourceVersion={version}",
            sim.base
        ))
        .send()
        .await
        .unwrap();
    let mut expired = response;
    let mut buffer3 = String::new();
    let error = next_event(&mut expired, &mut buffer3).await;
    assert_eq!(
        (error["type"].as_str(), error["object"]["code"].as_u64()),
        (Some("ERROR"), Some(410))
    );
}

#[tokio::test]
async fn lists_are_paged_with_continue_tokens_at_one_resource_version() {
    let sim = Sim::start().await;
    use reqwest::Method;
    sim.send(
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "ws"}})),
    )
    .await;
    for name in ["e", "a", "d", "c", "b"] {
        let pod = json!({"metadata": {"name": name}, "spec": {"containers": []}});
        let (code, _) = sim
            .send(Method::POST, "/api/v1/namespaces/ws/pods", Some(pod))
            .await;
        assert_eq!(code, 201);
    }
    let mut names = Vec::new();
    let mut versions = std::collections::BTreeSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            None => "/api/v1/namespaces/ws/pods?limit=2".to_owned(),
            Some(t) => format!("/api/v1/namespaces/ws/pods?limit=2&continue={t}"),
        };
        let (code, list) = sim.send(Method::GET, &path, None).await;
        assert_eq!(code, 200);
        pages += 1;
        assert!(list["items"].as_array().unwrap().len() <= 2);
        for item in list["items"].as_array().unwrap() {
            names.push(item["metadata"]["name"].as_str().unwrap().to_owned());
        }
        versions.insert(list["metadata"]["resourceVersion"].to_string());
        if pages == 1 {
            // A change between pages does not move the list's resourceVersion.
            sim.shared
                .with_store(|s| s.delete("pods", "ws", "a"))
                .await
                .unwrap();
        }
        match list["metadata"]["continue"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);
    assert_eq!(versions.len(), 1, "{versions:?}");
    let (_, all) = sim
        .send(Method::GET, "/api/v1/namespaces/ws/pods", None)
        .await;
    assert!(all["metadata"]["continue"].is_null());
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
}
