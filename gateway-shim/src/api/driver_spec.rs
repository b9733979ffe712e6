//! From a gateway sandbox to the `DriverSandbox` the compute driver receives, and from
//! the driver's status back to the API's.

use std::collections::HashMap;

use proto::Secret;
use proto::pb::compute::v1 as driver;
use proto::pb::gateway::v1 as pb;
use proto::phase::{Phase, phase_of};

use super::names::RESERVED_LABEL_PREFIX;
use crate::drivers::Lookup;

/// Environment variables the gateway sets in every sandbox (they override the spec's).
pub const ENV_GATEWAY_ENDPOINT: &str = "OPENSHELL_GATEWAY_ENDPOINT";
/// The sandbox's id.
pub const ENV_SANDBOX_ID: &str = "OPENSHELL_SANDBOX_ID";
/// The label on every driver sandbox the gateway makes: the sandbox's name.
pub const SANDBOX_NAME_LABEL: &str = "openshell.io/sandbox-name";
/// The sandbox's name.
pub const ENV_SANDBOX_NAME: &str = "OPENSHELL_SANDBOX_NAME";

/// The driver's view of `sandbox`, placed in `workspace`, with its token.
pub fn driver_sandbox(
    sandbox: &pb::Sandbox,
    workspace: &str,
    token: &Secret,
    endpoint: &str,
) -> driver::DriverSandbox {
    let spec = sandbox.spec.clone().unwrap_or_default();
    let mut environment = spec.environment.clone();
    environment.insert(ENV_GATEWAY_ENDPOINT.into(), endpoint.into());
    environment.insert(ENV_SANDBOX_ID.into(), sandbox.id.clone());
    environment.insert(ENV_SANDBOX_NAME.into(), sandbox.name.clone());
    let mut labels: HashMap<String, String> = sandbox.labels.clone();
    labels.insert(SANDBOX_NAME_LABEL.to_owned(), sandbox.name.clone());
    labels.insert(
        format!("{RESERVED_LABEL_PREFIX}owner"),
        sandbox.owner.clone(),
    );
    driver::DriverSandbox {
        id: sandbox.id.clone(),
        // Names must be unique per driver; ids are, and are DNS labels.
        name: sandbox.id.clone(),
        namespace: String::new(),
        workspace: workspace.to_owned(),
        spec: Some(driver::DriverSandboxSpec {
            log_level: spec.log_level.clone(),
            environment,
            template: Some(driver::DriverSandboxTemplate {
                image: spec.image.clone(),
                labels,
                resources: Some(driver::DriverResourceRequirements {
                    cpu_request: spec.cpu_request.clone(),
                    cpu_limit: spec.cpu_limit.clone(),
                    memory_request: spec.memory_request.clone(),
                    memory_limit: spec.memory_limit.clone(),
                }),
                platform_config: spec.platform_config.clone(),
                ..Default::default()
            }),
            sandbox_token: token.expose().to_owned(),
            command: spec.command.clone(),
            resource_requirements: spec.gpu_count.map(|count| driver::ResourceRequirements {
                gpu: Some(driver::GpuResourceRequirements { count: Some(count) }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// The API status for what the driver reported (see [`Lookup`]).
pub fn status(lookup: Lookup) -> pb::SandboxStatus {
    let (reported, synced) = match lookup {
        Lookup::Reported(reported) => (Some(reported), true),
        Lookup::Missing => (None, true),
        Lookup::Unknown => (None, false),
    };
    let Some(reported) = reported else {
        return if synced {
            pb::SandboxStatus {
                phase: Phase::Error.as_str().into(),
                conditions: vec![pb::Condition {
                    r#type: "Ready".into(),
                    status: "False".into(),
                    reason: "NotFoundAtDriver".into(),
                    message: "the compute driver does not have this sandbox; delete it and create it again".into(),
                    last_transition_time: String::new(),
                }],
                instance_id: String::new(),
            }
        } else {
            pb::SandboxStatus {
                phase: Phase::Unknown.as_str().into(),
                ..Default::default()
            }
        };
    };
    let phase = phase_of(&driver::DriverSandbox {
        status: Some(reported.clone()),
        ..Default::default()
    });
    pb::SandboxStatus {
        phase: phase.as_str().into(),
        conditions: reported
            .conditions
            .into_iter()
            .map(|c| pb::Condition {
                r#type: c.r#type,
                status: c.status,
                reason: c.reason,
                message: c.message,
                last_transition_time: c.last_transition_time,
            })
            .collect(),
        instance_id: reported.instance_id,
    }
}
