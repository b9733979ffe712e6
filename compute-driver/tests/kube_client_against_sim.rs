//! The unmodified kube client and runtime watcher against the Kubernetes API simulator
//! (`conformance::kube_sim`): the simulator is a fit test peer for the Kubernetes
//! backend only if the real client library works against it unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use conformance::kube_sim::http::{Shared, serve};
use conformance::kube_sim::kubeconfig;
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use serde_json::json;

async fn client_for(shared: &Shared) -> (kube::Client, tokio::task::JoinHandle<()>) {
    let (addr, task) = serve(shared.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&kubeconfig(addr)).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    (kube::Client::try_from(config).unwrap(), task)
}

fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn the_kube_client_creates_reads_patches_and_deletes() {
    let shared = Shared::default();
    let (client, _task) = client_for(&shared).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "ws"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), "ws");
    let created = pods
        .create(&PostParams::default(), &pod("p1", "sandbox"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    pods.create(&PostParams::default(), &pod("p2", "other"))
        .await
        .unwrap();

    match pods
        .create(&PostParams::default(), &pod("p1", "sandbox"))
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(
            (status.code, status.reason.as_str()),
            (409, "AlreadyExists")
        ),
        other => panic!("expected 409, got {other:?}"),
    }
    match pods.get("missing").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    assert!(pods.get_opt("missing").await.unwrap().is_none());

    let selected = pods
        .list(&ListParams::default().labels("app=sandbox"))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
    let patch = json!({"metadata": {"labels": {"phase": "ready"}}});
    let patched = pods
        .patch("p1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["phase"], "ready");

    // A secret owning a pod takes it along when deleted.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ws");
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"token": "t"}}))
            .unwrap();
    let secret = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut owned = pod("owned", "sandbox");
    owned.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "Secret".into(),
            name: "s".into(),
            uid: secret.metadata.uid.clone().unwrap(),
            ..Default::default()
        },
    ]);
    pods.create(&PostParams::default(), &owned).await.unwrap();
    secrets.delete("s", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("owned").await.unwrap().is_none());

    pods.delete("p2", &DeleteParams::default()).await.unwrap();
    let names: Vec<_> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(names, ["p1"]);
}

#[tokio::test]
async fn the_runtime_watcher_follows_changes_and_recovers_from_410() {
    let shared = Shared::default();
    let (client, _task) = client_for(&shared).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "ws"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ws");
    pods.create(&PostParams::default(), &pod("before", "sandbox"))
        .await
        .unwrap();

    let config = watcher::Config::default().labels("app=sandbox").timeout(2);
    let mut events = watcher(pods.clone(), config).boxed();
    // The watcher reports errors as items and carries on (relisting after a 410).
    let mut errors = Vec::new();
    let mut next = async || loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("a watcher event within 10 s")
            .expect("the watcher never ends")
        {
            Ok(event) => return event,
            Err(watcher::Error::WatchError(status)) => errors.push(status.code),
            Err(other) => panic!("unexpected watcher error: {other}"),
        }
    };
    let mut initial = Vec::new();
    loop {
        match next().await {
            watcher::Event::Init => {}
            watcher::Event::InitApply(pod) => initial.push(pod.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected before InitDone: {other:?}"),
        }
    }
    assert_eq!(initial, ["before"]);

    pods.create(&PostParams::default(), &pod("after", "sandbox"))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("ignored", "other"))
        .await
        .unwrap();
    match next().await {
        watcher::Event::Apply(pod) => assert_eq!(pod.metadata.name.as_deref(), Some("after")),
        other => panic!("expected Apply(after), got {other:?}"),
    }
    pods.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    match next().await {
        watcher::Event::Delete(pod) => assert_eq!(pod.metadata.name.as_deref(), Some("before")),
        other => panic!("expected Delete(before), got {other:?}"),
    }

    // History compacted while the watch is between requests: the next resume gets
    // 410, and the watcher relists (a fresh Init.. InitDone) with what exists now.
    shared.with_store(|store| store.compact()).await;
    pods.create(&PostParams::default(), &pod("during", "sandbox"))
        .await
        .unwrap();
    let mut seen_init = false;
    let mut relisted = Vec::new();
    loop {
        match next().await {
            watcher::Event::Init => seen_init = true,
            watcher::Event::InitApply(pod) if seen_init => {
                relisted.push(pod.metadata.name.unwrap())
            }
            watcher::Event::InitDone if seen_init => break,
            _ => {}
        }
    }
    relisted.sort();
    assert_eq!(relisted, ["after", "during"]);
    assert_eq!(
        errors,
        [410],
        "the expired version surfaced once, then a relist"
    );
}
