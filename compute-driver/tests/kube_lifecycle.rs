//! The real binary with `--backend kubernetes` against the Kubernetes API simulator:
//! the same lifecycle as the process backend, plus what only Kubernetes has (Secret and
//! Pod per sandbox, ownership, namespaces per workspace).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::time::Duration;

use proto::pb::compute::v1 as pb;
use proto::phase::Phase;
use proto::testing::short_dir;
use support::kube::{Sim, driver};
use support::{condition, sandbox, wait_all, wait_deleted, wait_phase};

const READY_DELAY: Duration = Duration::from_millis(200);

/// The phases `id` goes through until `last`, which is returned with them.
async fn phases_until(
    events: &mut tonic::Streaming<pb::WatchSandboxesEvent>,
    id: &str,
    last: Phase,
) -> (Vec<Phase>, pb::DriverSandbox) {
    use tokio_stream::StreamExt as _;
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.next().await {
            if let Some(pb::watch_sandboxes_event::Payload::Sandbox(s)) = event.unwrap().payload {
                let sandbox = s.sandbox.unwrap();
                if sandbox.id == id {
                    seen.push(proto::phase::phase_of(&sandbox));
                    if seen.last() == Some(&last) {
                        return sandbox;
                    }
                }
            }
        }
        panic!("the watch ended");
    })
    .await;
    let sandbox = found.unwrap_or_else(|_| panic!("{id} did not reach {last:?}: {seen:?}"));
    (seen, sandbox)
}

fn in_workspace(id: &str, workspace: &str) -> pb::DriverSandbox {
    let mut s = sandbox(id, &["sleep", "300"]);
    s.workspace = workspace.into();
    s.spec.as_mut().unwrap().sandbox_token = format!("token-of-{id}");
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn create_watch_ready_stop_start_delete() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), READY_DELAY).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    let mut events = driver.watch().await;

    driver.create(in_workspace("life", "team-a")).await.unwrap();
    let (phases, ready) = phases_until(&mut events, "life", Phase::Ready).await;
    assert!(
        phases
            .iter()
            .all(|p| *p == Phase::Provisioning || *p == Phase::Ready),
        "only progress on the way to Ready: {phases:?}"
    );
    assert_eq!(ready.namespace, "openshell-team-a");
    assert_eq!(ready.status.unwrap().instance_id, "life");

    let ns = "openshell-team-a";
    let namespace = sim
        .object("namespaces", "", ns)
        .await
        .expect("namespace created");
    assert_eq!(
        namespace["metadata"]["labels"]["openshell.io/workspace"],
        "team-a"
    );
    let secret = sim.object("secrets", ns, "life").await.expect("secret");
    let pod = sim.object("pods", ns, "life").await.expect("pod");
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["uid"], secret["metadata"]["uid"],
        "the pod is owned by the secret"
    );
    assert_eq!(pod["metadata"]["labels"]["openshell.io/sandbox-id"], "life");
    assert!(
        !pod.to_string().contains("token-of-life"),
        "the token is never in the pod spec"
    );
    assert!(secret["data"]["token"].is_string());

    driver.stop("life").await;
    let (phases, stopped) = phases_until(&mut events, "life", Phase::Stopped).await;
    assert_eq!(phases, [Phase::Stopped], "straight to Stopped");
    assert_eq!(condition(&stopped, "Suspended").unwrap().status, "True");
    assert!(
        sim.object("pods", ns, "life").await.is_none(),
        "stop deletes the pod"
    );
    assert!(
        sim.object("secrets", ns, "life").await.is_some(),
        "and keeps the secret"
    );
    driver.stop("life").await; // idempotent

    driver.start_sandbox("life").await;
    let (phases, _) = phases_until(&mut events, "life", Phase::Ready).await;
    assert!(
        phases
            .iter()
            .all(|p| *p == Phase::Provisioning || *p == Phase::Ready),
        "only progress on the way to Ready again: {phases:?}"
    );
    driver.start_sandbox("life").await; // idempotent
    let restarted = sim.object("pods", ns, "life").await.expect("pod again");
    assert_ne!(restarted["metadata"]["uid"], pod["metadata"]["uid"]);

    assert!(driver.delete("life").await, "first delete removes it");
    wait_deleted(&mut events, "life").await;
    assert!(sim.object("secrets", ns, "life").await.is_none());
    assert!(sim.object("pods", ns, "life").await.is_none());
    assert!(!driver.list_ids().await.contains(&"life".to_owned()));
    assert!(!driver.delete("life").await, "second delete finds nothing");
    assert_eq!(
        driver.get("life").await.unwrap_err().code(),
        tonic::Code::NotFound
    );
}

/// The snapshot is sent from the driver's kept encodings: each sandbox decodes to what
/// Get answers, and all of them come before a change made once the watch is open, even
/// while a reader that has not read yet holds the snapshot back (it is larger than
/// HTTP/2's windows and the socket's buffers).
#[tokio::test(flavor = "multi_thread")]
async fn a_watch_sends_its_snapshot_as_get_answers_then_the_changes_in_order() {
    use pb::watch_sandboxes_event::Payload;
    use tokio_stream::StreamExt as _;
    let dir = short_dir();
    let sim = Sim::start(dir.path(), READY_DELAY).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    let ids: Vec<String> = (0..40).map(|i| format!("snap-{i:02}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut events = driver.watch().await;
    for id in &ids {
        let mut sandbox = in_workspace(id, "team-a");
        let spec = sandbox.spec.as_mut().unwrap();
        spec.environment
            .insert("PADDING".into(), "x".repeat(120 * 1024));
        driver.create(sandbox).await.unwrap();
    }
    wait_all(&mut events, &ids, Phase::Ready).await;
    drop(events);
    let mut expected = std::collections::BTreeMap::new();
    for id in &ids {
        expected.insert((*id).to_owned(), driver.get(id).await.unwrap());
    }

    let mut events = driver.watch().await;
    assert!(driver.delete("snap-07").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut snapshot = std::collections::BTreeMap::new();
    for _ in &ids {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("the snapshot in time")
            .expect("the watch open")
            .unwrap();
        match event.payload {
            Some(Payload::Sandbox(s)) => {
                let sandbox = s.sandbox.unwrap();
                assert!(
                    snapshot.insert(sandbox.id.clone(), sandbox).is_none(),
                    "a sandbox twice in the snapshot"
                );
            }
            other => panic!("a change came before the snapshot ended: {other:?}"),
        }
    }
    assert!(
        snapshot == expected,
        "the snapshot differs from what Get answers"
    );
    wait_deleted(&mut events, "snap-07").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_driver_finds_its_sandboxes_in_the_cluster() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), READY_DELAY).await;
    let mut first = driver(dir.path(), &sim, &[]).await;
    let mut events = first.watch().await;
    first.create(in_workspace("kept", "team-a")).await.unwrap();
    first.create(in_workspace("halted", "")).await.unwrap();
    wait_all(&mut events, &["kept", "halted"], Phase::Ready).await;
    first.stop("halted").await;
    wait_phase(&mut events, "halted", Phase::Stopped).await;
    drop(events);
    drop(first);

    let dir2 = short_dir();
    let mut second = driver(dir2.path(), &sim, &[]).await;
    assert_eq!(second.list_ids().await, ["halted", "kept"]);
    let mut events = second.watch().await;
    wait_phase(&mut events, "kept", Phase::Ready).await;
    let halted = second.get("halted").await.unwrap();
    assert_eq!(condition(&halted, "Suspended").unwrap().status, "True");
    assert_eq!(halted.namespace, "openshell");
    // A repeated create of the same sandbox is still a no-op after the restart.
    second.create(in_workspace("kept", "team-a")).await.unwrap();
    let mut other_token = in_workspace("kept", "team-a");
    other_token.spec.as_mut().unwrap().sandbox_token = "another".into();
    assert_eq!(
        second.create(other_token).await.unwrap_err().code(),
        tonic::Code::AlreadyExists
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drivers_with_different_gateway_ids_do_not_see_each_other() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), READY_DELAY).await;
    let mut blue = driver(dir.path(), &sim, &["--gateway-id", "blue"]).await;
    let dir2 = short_dir();
    let mut green = driver(dir2.path(), &sim, &["--gateway-id", "green"]).await;
    blue.create(in_workspace("only-blue", "")).await.unwrap();
    assert_eq!(blue.list_ids().await, ["only-blue"]);
    assert!(green.list_ids().await.is_empty());
    assert!(!green.delete("only-blue").await);
    assert!(
        sim.object("secrets", "openshell", "only-blue")
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workspaces_are_namespaces_created_and_removed_by_the_driver() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), READY_DELAY).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    let ensure = |ws: &str| pb::EnsureWorkspaceRequest {
        workspace: ws.into(),
    };
    let remove = |ws: &str| pb::DeleteWorkspaceRequest {
        workspace: ws.into(),
    };
    driver
        .client
        .ensure_workspace(ensure("team-b"))
        .await
        .unwrap();
    driver
        .client
        .ensure_workspace(ensure("team-b"))
        .await
        .unwrap();
    let ns = sim
        .object("namespaces", "", "openshell-team-b")
        .await
        .expect("namespace");
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "openshell-compute-driver"
    );

    driver.create(in_workspace("busy", "team-b")).await.unwrap();
    let refused = driver
        .client
        .delete_workspace(remove("team-b"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("busy"), "{}", refused.message());

    assert!(driver.delete("busy").await);
    driver
        .client
        .delete_workspace(remove("team-b"))
        .await
        .unwrap();
    assert!(
        sim.object("namespaces", "", "openshell-team-b")
            .await
            .is_none()
    );
    driver
        .client
        .delete_workspace(remove("team-b"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_layout_keeps_everything_in_one_namespace() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), READY_DELAY).await;
    let made = sim
        .shared
        .with_store(|s| {
            s.create(
                "namespaces",
                "",
                serde_json::json!({"metadata": {"name": "sandboxes"}}),
            )
        })
        .await;
    made.unwrap();
    let mut driver = driver(
        dir.path(),
        &sim,
        &[
            "--kube-namespaces",
            "shared",
            "--kube-namespace",
            "sandboxes",
        ],
    )
    .await;
    let mut events = driver.watch().await;
    driver.create(in_workspace("box", "team-c")).await.unwrap();
    let ready = wait_phase(&mut events, "box", Phase::Ready).await;
    assert_eq!(ready.namespace, "sandboxes");
    assert!(
        sim.object("pods", "sandboxes", "team-c--box")
            .await
            .is_some()
    );
    assert!(
        sim.object("namespaces", "", "sandboxes-team-c")
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_deleted_behind_the_driver_s_back_is_an_error_that_start_repairs() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), READY_DELAY).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    let mut events = driver.watch().await;
    driver.create(in_workspace("lost", "")).await.unwrap();
    wait_phase(&mut events, "lost", Phase::Ready).await;

    // `kubectl delete pod lost`: not a Stop.
    sim.shared
        .with_store(|s| s.delete("pods", "openshell", "lost"))
        .await
        .unwrap();
    let missing = wait_phase(&mut events, "lost", Phase::Error).await;
    assert_eq!(condition(&missing, "Ready").unwrap().reason, "PodMissing");
    assert_eq!(condition(&missing, "Suspended").unwrap().status, "False");

    driver.start_sandbox("lost").await;
    wait_phase(&mut events, "lost", Phase::Ready).await;
    assert!(sim.object("pods", "openshell", "lost").await.is_some());
}
