//! The Secret and the Pod a sandbox becomes, as pure functions (the manifest a
//! reviewer reads is `tests/fixtures/representative-pod.json`).
//!
//! The Secret holds the sandbox token (mounted into the pod as a file, never an env
//! var) and the record needed to recreate the pod on Start; the Pod is owned by the
//! Secret, so deleting the Secret garbage-collects the Pod. The pod runs restricted:
//! non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp,
//! read-only root filesystem (with a writable `/tmp`), no service-account token.
//!
//! With the supervisor option (for upstream gateways) an init container from the
//! supervisor's image copies the supervisor into an `emptyDir`, which the sandbox
//! container mounts read-only and runs as its command; the user's command travels in
//! `OPENSHELL_MAIN_PROCESS_SPEC` (the reviewed manifest is
//! `tests/fixtures/supervised-pod.json`).

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Pod, Secret};
use proto::pb::compute::v1 as pb;
use serde_json::{Value, json};

use super::platform::PlatformConfig;
use crate::supervisor::{self, Supervisor};

/// Label keys every object carries.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGER: &str = "openshell-compute-driver";
/// Sandbox id label.
pub const SANDBOX_ID: &str = "openshell.io/sandbox-id";
/// Workspace label.
pub const WORKSPACE: &str = "openshell.io/workspace";
/// Gateway id label.
pub const GATEWAY_ID: &str = "openshell.io/gateway-id";
/// Annotation of the Secret saying whether the sandbox should run (`running`) or was
/// stopped (`stopped`), so a pod missing for another reason is told apart.
pub const DESIRED_STATE: &str = "openshell.io/desired-state";
/// Where the token file is mounted in the container.
pub const TOKEN_DIR: &str = "/var/run/openshell";
/// The pod's `fsGroup`: the group that may read the mounted token.
pub const TOKEN_GROUP: i64 = 65534;
/// Key of the token in the Secret.
pub const TOKEN_KEY: &str = "token";
/// Key of the sandbox record in the Secret.
pub const RECORD_KEY: &str = "record.pb";

/// Where and how to render.
#[derive(Clone, Debug)]
pub struct RenderOptions<'a> {
    /// Namespace of both objects.
    pub namespace: &'a str,
    /// Name of both objects.
    pub object_name: &'a str,
    /// Image when the sandbox names none.
    pub default_image: &'a str,
    /// This driver's gateway id (label).
    pub gateway_id: &'a str,
    /// `imagePullPolicy`.
    pub image_pull_policy: &'a str,
    /// The supervisor option: side-load the supervisor from its image and run it as
    /// the container's command, handed the user's process.
    pub supervisor: Option<&'a Supervisor>,
}

/// The labels of both objects.
pub fn labels(
    sandbox: &pb::DriverSandbox,
    options: &RenderOptions<'_>,
) -> BTreeMap<String, String> {
    let template = sandbox.spec.as_ref().and_then(|s| s.template.as_ref());
    let mut labels: BTreeMap<String, String> = template
        .map(|t| t.labels.clone().into_iter().collect())
        .unwrap_or_default();
    labels.insert(MANAGED_BY.into(), MANAGER.into());
    labels.insert(SANDBOX_ID.into(), sandbox.id.clone());
    labels.insert(WORKSPACE.into(), sandbox.workspace.clone());
    labels.insert(GATEWAY_ID.into(), options.gateway_id.into());
    labels
}

/// The Secret: the token and the sandbox record (`record` is the encoded
/// `DriverSandbox` without its token).
pub fn secret(sandbox: &pb::DriverSandbox, options: &RenderOptions<'_>, record: &[u8]) -> Secret {
    let token = sandbox
        .spec
        .as_ref()
        .map(|s| s.sandbox_token.as_str())
        .unwrap_or_default();
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": options.object_name,
            "namespace": options.namespace,
            "labels": labels(sandbox, options),
            "annotations": { DESIRED_STATE: "running" },
        },
        "type": "Opaque",
        "data": { TOKEN_KEY: encode(token.as_bytes()), RECORD_KEY: encode(record) },
    });
    serde_json::from_value(manifest).unwrap_or_default()
}

/// The Pod, owned by the Secret whose uid is `secret_uid`.
pub fn pod(
    sandbox: &pb::DriverSandbox,
    options: &RenderOptions<'_>,
    secret_uid: &str,
    platform: &PlatformConfig,
) -> Pod {
    let spec = sandbox.spec.clone().unwrap_or_default();
    let template = spec.template.clone().unwrap_or_default();
    let image = if template.image.is_empty() {
        options.default_image
    } else {
        template.image.as_str()
    };
    let mut environment: BTreeMap<String, String> = template.environment.into_iter().collect();
    environment.extend(spec.environment);
    environment.insert(
        "OPENSHELL_SANDBOX_TOKEN_FILE".into(),
        format!("{TOKEN_DIR}/{TOKEN_KEY}"),
    );
    environment.insert("OPENSHELL_SANDBOX_ID".into(), sandbox.id.clone());
    // The user-facing name when the gateway gave one (its driver-level name may be
    // the id); else the driver-level name.
    environment
        .entry("OPENSHELL_SANDBOX_NAME".into())
        .or_insert_with(|| sandbox.name.clone());
    if !spec.log_level.is_empty() {
        environment.insert("OPENSHELL_LOG_LEVEL".into(), spec.log_level.clone());
    }
    let side_load = options.supervisor.map(|supervisor| {
        let name = environment["OPENSHELL_SANDBOX_NAME"].clone();
        environment.extend(supervisor::environment(
            supervisor,
            sandbox,
            &supervisor::Placement {
                name: &name,
                ssh_socket: supervisor::POD_SSH_SOCKET,
                // The image's user runs the supervisor; it picks the user's identity.
                identity: None,
            },
        ));
        SideLoad::new(supervisor, options.image_pull_policy)
    });
    let (command, tty) = match &side_load {
        Some(_) => (vec![supervisor::SIDELOADED_PROGRAM.to_owned()], false),
        None => (spec.command, spec.tty),
    };
    let mut mounts = vec![
        json!({ "name": "sandbox-token", "mountPath": TOKEN_DIR, "readOnly": true }),
        json!({ "name": "tmp", "mountPath": "/tmp" }),
    ];
    let mut volumes = vec![
        json!({
            "name": "sandbox-token",
            "secret": {
                "secretName": options.object_name,
                "items": [{ "key": TOKEN_KEY, "path": TOKEN_KEY }],
                "defaultMode": 0o400,
            },
        }),
        json!({ "name": "tmp", "emptyDir": {} }),
    ];
    if let Some(side_load) = &side_load {
        mounts.extend(side_load.mounts.iter().cloned());
        volumes.extend(side_load.volumes.iter().cloned());
    }
    let env: Vec<Value> = environment
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": options.object_name,
            "namespace": options.namespace,
            "labels": labels(sandbox, options),
            "annotations": platform.annotations,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Secret", "name": options.object_name,
                "uid": secret_uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "securityContext": {
                "runAsNonRoot": true,
                // Secret files are root-owned; with an fsGroup they are group-readable
                // by it, and the container's user (whatever the image sets) gets it as a
                // supplementary group, so the sandbox can read its token.
                "fsGroup": TOKEN_GROUP,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "runtimeClassName": platform.runtime_class_name,
            // A user namespace for the pod (the node maps its root to an unprivileged id).
            // `platform_config.host_users` (as upstream's gateway sends it) wins over
            // the template's `user_namespaces`.
            "hostUsers": platform
                .host_users
                .map_or(template.user_namespaces == Some(true), |host| !host)
                .then_some(false),
            "nodeSelector": platform.node_selector,
            "tolerations": platform.tolerations,
            "initContainers": side_load.as_ref().map(|s| vec![s.init_container.clone()]),
            "containers": [{
                "name": "sandbox",
                "image": image,
                "imagePullPolicy": options.image_pull_policy,
                "command": command,
                "env": env,
                "tty": tty,
                "stdin": tty,
                "resources": resources(
                    &template.resources.unwrap_or_default(),
                    spec.resource_requirements.as_ref(),
                    platform.resources_raw.as_ref(),
                ),
                "securityContext": restricted(),
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    });
    serde_json::from_value(strip_empty(manifest)).unwrap_or_default()
}

/// The security context of every container: no privilege escalation, a read-only
/// root filesystem, no capabilities.
fn restricted() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] },
    })
}

/// The pieces of a pod that side-load the supervisor.
struct SideLoad {
    init_container: Value,
    mounts: Vec<Value>,
    volumes: Vec<Value>,
}

/// Volume holding the side-loaded supervisor.
const SUPERVISOR_VOLUME: &str = "openshell-supervisor";
/// Volume of the supervisor's run directory (its SSH socket).
const RUN_VOLUME: &str = "openshell-run";

impl SideLoad {
    fn new(supervisor: &Supervisor, pull_policy: &str) -> Self {
        let run_dir = supervisor::POD_SSH_SOCKET
            .rsplit_once('/')
            .map_or("/run/openshell", |(dir, _)| dir);
        Self {
            init_container: json!({
                "name": "install-supervisor",
                "image": supervisor.source,
                "imagePullPolicy": pull_policy,
                "command": [
                    "/openshell-sandbox", "copy-self", supervisor::SIDELOADED_PROGRAM,
                ],
                "securityContext": restricted(),
                "volumeMounts": [
                    { "name": SUPERVISOR_VOLUME, "mountPath": supervisor::SIDELOAD_DIR },
                ],
            }),
            mounts: vec![
                json!({
                    "name": SUPERVISOR_VOLUME,
                    "mountPath": supervisor::SIDELOAD_DIR,
                    "readOnly": true,
                }),
                json!({ "name": RUN_VOLUME, "mountPath": run_dir }),
            ],
            volumes: vec![
                json!({ "name": SUPERVISOR_VOLUME, "emptyDir": {} }),
                json!({ "name": RUN_VOLUME, "emptyDir": {} }),
            ],
        }
    }
}

fn resources(
    resources: &pb::DriverResourceRequirements,
    requirements: Option<&pb::ResourceRequirements>,
    raw: Option<&serde_json::Map<String, Value>>,
) -> Value {
    let section = |name: &str| {
        raw.and_then(|raw| raw.get(name))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let pairs = |cpu: &str, memory: &str| {
        [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
    };
    let mut requests = section("requests");
    requests.extend(pairs(&resources.cpu_request, &resources.memory_request));
    let mut limits = section("limits");
    limits.extend(pairs(&resources.cpu_limit, &resources.memory_limit));
    if let Some(count) = requirements
        .and_then(|r| r.gpu.as_ref())
        .and_then(|g| g.count)
        .filter(|c| *c > 0)
    {
        limits.insert("nvidia.com/gpu".into(), json!(count.to_string()));
    }
    json!({ "requests": requests, "limits": limits })
}

/// Optional fields left out when empty, as a hand-written manifest would (an empty
/// `emptyDir: {}` elsewhere means something, so only these are dropped).
const OMITTED_WHEN_EMPTY: &[&str] = &[
    "annotations",
    "nodeSelector",
    "tolerations",
    "runtimeClassName",
    "hostUsers",
    "requests",
    "limits",
    "command",
    "initContainers",
];

fn strip_empty(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, strip_empty(v)))
                .filter(|(k, v)| !(OMITTED_WHEN_EMPTY.contains(&k.as_str()) && is_empty(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_empty).collect()),
        other => other,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
