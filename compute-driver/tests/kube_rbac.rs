//! The RBAC rules in `compute-driver/deploy/` grant exactly what the driver uses: every
//! kind of request the real binary makes against the simulator (each operation, plus
//! the conflict paths) is compared with the rules, both ways.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize as _;
use serde_json::{Value, json};
use support::kube::{Sim, driver};
use support::{Driver, sandbox};

type Grants = BTreeSet<(String, String)>;

fn pairs_of(rules: &Value, into: &mut Grants) {
    for rule in rules.as_array().unwrap() {
        assert_eq!(rule["apiGroups"], json!([""]), "core API group only");
        for resource in rule["resources"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                into.insert((
                    resource.as_str().unwrap().to_owned(),
                    verb.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// (resource, verb) pairs a Role or ClusterRole of `file` grants.
fn granted(file: &str, kind: &str) -> Grants {
    let text = read(&format!("deploy/{file}"));
    let mut pairs = BTreeSet::new();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let object = Value::deserialize(document).unwrap();
        if object["kind"] == kind {
            pairs_of(&object["rules"], &mut pairs);
        }
    }
    assert!(!pairs.is_empty(), "{file} has a {kind}");
    pairs
}

/// The rules of the Helm chart's role, all of them (template lines left out).
fn helm_rules() -> Grants {
    let text = read("../helm/sandbox-gateway/templates/compute-driver-rbac.yaml");
    let rules: String = text
        .split("\nrules:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n---").next())
        .unwrap()
        .lines()
        .filter(|line| !line.contains("{{"))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut pairs = BTreeSet::new();
    pairs_of(&serde_yaml_ng::from_str(&rules).unwrap(), &mut pairs);
    pairs
}

#[test]
fn the_helm_chart_grants_the_same_rules() {
    let mut per_workspace = granted("rbac-per-workspace.yaml", "ClusterRole");
    assert_eq!(helm_rules(), per_workspace);
    per_workspace.retain(|(resource, _)| resource != "namespaces");
    assert_eq!(
        per_workspace,
        granted("rbac-shared.yaml", "Role"),
        "the shared Role is the ClusterRole without namespaces"
    );
}

fn in_workspace(id: &str, workspace: &str) -> proto::pb::compute::v1::DriverSandbox {
    let mut s = sandbox(id, &["sleep", "300"]);
    s.workspace = workspace.into();
    s
}

/// Every operation, and the paths where an object is in the way.
async fn exercise(driver: &mut Driver, sim: &Sim, namespace: &str, workspace: &str, prefix: &str) {
    use proto::pb::compute::v1::{DeleteWorkspaceRequest, EnsureWorkspaceRequest};
    driver
        .client
        .ensure_workspace(EnsureWorkspaceRequest {
            workspace: workspace.into(),
        })
        .await
        .unwrap();
    driver
        .create(in_workspace("life", workspace))
        .await
        .unwrap();
    driver.stop("life").await;
    driver.start_sandbox("life").await;
    assert!(driver.delete("life").await);

    // A Secret of someone else's with the sandbox's object name.
    let foreign = |name: String| json!({"metadata": {"name": name}, "data": {}});
    sim.shared
        .with_store(|s| s.create("secrets", namespace, foreign(format!("{prefix}taken"))))
        .await
        .unwrap();
    let taken = driver
        .create(in_workspace("taken", workspace))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::AlreadyExists, "{taken:?}");

    // A Pod left over with the sandbox's object name: the create fails and leaves
    // nothing behind.
    let pod = json!({"metadata": {"name": format!("{prefix}clash")},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    sim.shared
        .with_store(|s| s.create("pods", namespace, pod))
        .await
        .unwrap();
    let clash = driver
        .create(in_workspace("clash", workspace))
        .await
        .unwrap_err();
    assert_eq!(clash.code(), tonic::Code::Unavailable, "{clash:?}");
    assert!(
        sim.object("secrets", namespace, &format!("{prefix}clash"))
            .await
            .is_none(),
        "the Secret of the failed create was removed"
    );
    assert!(!driver.list_ids().await.contains(&"clash".to_owned()));

    driver
        .client
        .delete_workspace(DeleteWorkspaceRequest {
            workspace: workspace.into(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_role_grants_exactly_what_the_per_workspace_layout_uses() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), Duration::from_millis(50)).await;
    let mut driver = driver(dir.path(), &sim, &[]).await;
    exercise(&mut driver, &sim, "openshell-team", "team", "").await;
    let used: BTreeSet<(String, String)> = sim
        .shared
        .accesses()
        .await
        .into_iter()
        .map(|a| (a.resource, a.verb.to_owned()))
        .collect();
    assert_eq!(used, granted("rbac-per-workspace.yaml", "ClusterRole"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_role_grants_exactly_what_the_shared_layout_uses_in_its_namespace() {
    let dir = short_dir();
    let sim = Sim::start(dir.path(), Duration::from_millis(50)).await;
    sim.shared
        .with_store(|s| s.create("namespaces", "", json!({"metadata": {"name": "openshell"}})))
        .await
        .unwrap();
    let mut driver = driver(dir.path(), &sim, &["--kube-namespaces", "shared"]).await;
    exercise(&mut driver, &sim, "openshell", "team", "team--").await;
    let accesses = sim.shared.accesses().await;
    for access in &accesses {
        assert_eq!(
            access.namespace.as_deref(),
            Some("openshell"),
            "the shared layout stays in its namespace: {access:?}"
        );
    }
    let used: BTreeSet<(String, String)> = accesses
        .into_iter()
        .map(|a| (a.resource, a.verb.to_owned()))
        .collect();
    assert_eq!(used, granted("rbac-shared.yaml", "Role"));
}

use proto::testing::short_dir;
