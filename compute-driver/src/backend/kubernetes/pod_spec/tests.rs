//! The rendered objects of a representative sandbox, compared with the reviewed
//! manifest in `tests/fixtures/representative-pod.json`.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use proto::pb::compute::v1 as pb;
use serde_json::Value;

use super::*;

fn representative() -> pb::DriverSandbox {
    pb::DriverSandbox {
        id: "sb-0123456789abcdef".into(),
        name: "agent".into(),
        workspace: "ws-team".into(),
        spec: Some(pb::DriverSandboxSpec {
            log_level: "info".into(),
            environment: HashMap::from([("MODE".into(), "batch".into())]),
            template: Some(pb::DriverSandboxTemplate {
                image: "ghcr.io/example/agent:1.2".into(),
                labels: HashMap::from([("team".into(), "ml".into())]),
                environment: HashMap::from([
                    ("MODE".into(), "overridden".into()),
                    ("HOME".into(), "/tmp".into()),
                ]),
                resources: Some(pb::DriverResourceRequirements {
                    cpu_request: "250m".into(),
                    cpu_limit: "1".into(),
                    memory_request: "256Mi".into(),
                    memory_limit: "1Gi".into(),
                }),
                ..Default::default()
            }),
            sandbox_token: "secret-token".into(),
            command: vec!["python".into(), "-m".into(), "agent".into()],
            resource_requirements: Some(pb::ResourceRequirements {
                gpu: Some(pb::GpuResourceRequirements { count: Some(1) }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn options() -> RenderOptions<'static> {
    RenderOptions {
        namespace: "ws-team",
        object_name: "agent",
        default_image: "ghcr.io/example/sandbox-base:latest",
        gateway_id: "gw-1",
        image_pull_policy: "IfNotPresent",
        supervisor: None,
    }
}

#[test]
fn the_pod_matches_the_reviewed_manifest() {
    let platform = PlatformConfig {
        runtime_class_name: Some("gvisor".into()),
        node_selector: [("pool".to_owned(), "sandboxes".to_owned())].into(),
        tolerations: Vec::new(),
        annotations: [("example.com/cost-center".to_owned(), "42".to_owned())].into(),
        ..Default::default()
    };
    let rendered = serde_json::to_value(pod(
        &representative(),
        &options(),
        "uid-of-secret",
        &platform,
    ))
    .unwrap();
    let expected: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/representative-pod.json"
    ))
    .unwrap();
    assert_eq!(
        rendered,
        expected,
        "rendered:\n{}",
        serde_json::to_string_pretty(&rendered).unwrap()
    );
}

#[test]
fn the_token_lives_in_the_secret_never_in_the_pod() {
    let sandbox = representative();
    let pod = serde_json::to_string(&pod(
        &sandbox,
        &options(),
        "uid",
        &PlatformConfig::default(),
    ))
    .unwrap();
    assert!(!pod.contains("secret-token"));
    let secret = secret(&sandbox, &options(), b"record");
    let token = &secret.data.unwrap()[TOKEN_KEY];
    assert_eq!(token.0, b"secret-token");
    assert_eq!(
        secret.metadata.labels.unwrap()[SANDBOX_ID],
        "sb-0123456789abcdef"
    );
}

#[test]
fn without_an_image_the_default_is_used() {
    let mut sandbox = representative();
    if let Some(template) = sandbox.spec.as_mut().and_then(|s| s.template.as_mut()) {
        template.image.clear();
    }
    let pod = pod(&sandbox, &options(), "uid", &PlatformConfig::default());
    let image = pod.spec.unwrap().containers[0].image.clone();
    assert_eq!(
        image.as_deref(),
        Some("ghcr.io/example/sandbox-base:latest")
    );
}

#[test]
fn user_namespaces_turn_off_host_users() {
    let mut sandbox = representative();
    let render = |sandbox: &pb::DriverSandbox| {
        let pod = pod(sandbox, &options(), "uid-1", &PlatformConfig::default());
        serde_json::to_value(pod).unwrap()
    };
    assert!(render(&sandbox)["spec"].get("hostUsers").is_none());
    sandbox
        .spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .user_namespaces = Some(true);
    assert_eq!(render(&sandbox)["spec"]["hostUsers"], false);
}

#[test]
fn platform_host_users_and_raw_resources_as_upstream_sends_them() {
    let sandbox = representative();
    let platform = PlatformConfig {
        host_users: Some(false),
        resources_raw: Some(
            serde_json::json!({"limits": {"nvidia.com/gpu": "1", "memory": "1Gi"}})
                .as_object()
                .unwrap()
                .clone(),
        ),
        ..Default::default()
    };
    let pod = serde_json::to_value(pod(&sandbox, &options(), "uid-1", &platform)).unwrap();
    assert_eq!(pod["spec"]["hostUsers"], false);
    let limits = &pod["spec"]["containers"][0]["resources"]["limits"];
    assert_eq!(
        limits["nvidia.com/gpu"], "1",
        "custom resources kept: {limits}"
    );
    let typed = sandbox.spec.unwrap().template.unwrap().resources.unwrap();
    if !typed.memory_limit.is_empty() {
        assert_eq!(
            limits["memory"],
            typed.memory_limit.as_str(),
            "typed fields win"
        );
    }
}

/// With the supervisor option: an init container copies the supervisor into a shared
/// volume, the sandbox container runs it (read-only mount) and hands it the user's
/// command in `OPENSHELL_MAIN_PROCESS_SPEC`, with the variables of the contract.
#[test]
fn the_supervised_pod_matches_the_reviewed_manifest() {
    let supervisor = crate::supervisor::Supervisor {
        source: "ghcr.io/nvidia/openshell/supervisor:0.9".into(),
        endpoint: "http://openshell-gateway.openshell.svc:8080".into(),
    };
    let options = RenderOptions {
        supervisor: Some(&supervisor),
        ..options()
    };
    let rendered = serde_json::to_value(pod(
        &representative(),
        &options,
        "uid-of-secret",
        &PlatformConfig::default(),
    ))
    .unwrap();
    let expected: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/supervised-pod.json"
    ))
    .unwrap();
    assert_eq!(
        rendered,
        expected,
        "rendered:\n{}",
        serde_json::to_string_pretty(&rendered).unwrap()
    );
    let env = &rendered["spec"]["containers"][0]["env"];
    let spec = env
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "OPENSHELL_MAIN_PROCESS_SPEC")
        .unwrap()["value"]
        .as_str()
        .unwrap();
    let spec: Value = serde_json::from_str(spec).unwrap();
    assert_eq!(
        spec,
        serde_json::json!({"version": 1, "command": ["python", "-m", "agent"], "tty": false})
    );
}
