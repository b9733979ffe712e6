//! A sandbox's status from its Pod (or its absence while stopped), as the contract's
//! conditions: `Ready`, `Suspended`, `Terminated`, with the platform's reasons
//! (ImagePullBackOff, OOMKilled, Evicted, NodeLost, ...) carried through.

use k8s_openapi::api::core::v1::Pod;
use proto::pb::compute::v1 as pb;

/// Waiting reasons that are progress, not failure.
const STARTING: &[&str] = &["ContainerCreating", "PodInitializing"];

fn condition(kind: &str, on: bool, reason: &str, message: &str) -> pb::DriverCondition {
    pb::DriverCondition {
        r#type: kind.into(),
        status: if on { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: String::new(),
    }
}

/// The status of a sandbox that should run but has no pod: this driver is creating it
/// (`creating`), or it is gone (deleted outside the driver, garbage-collected).
pub fn pod_missing(name: &str, creating: bool) -> pb::DriverSandboxStatus {
    let ready = if creating {
        condition("Ready", false, "DependenciesNotReady", "creating the pod")
    } else {
        condition(
            "Ready",
            false,
            "PodMissing",
            "the sandbox's pod is gone although the sandbox was not stopped (deleted outside the driver or garbage-collected); StartSandbox creates it again",
        )
    };
    pb::DriverSandboxStatus {
        sandbox_name: name.into(),
        conditions: vec![ready, condition("Suspended", false, "Running", "")],
        ..Default::default()
    }
}

/// The status of a sandbox whose pod is `pod` (`None`: stopped, the Secret kept).
pub fn sandbox_status(name: &str, pod: Option<&Pod>) -> pb::DriverSandboxStatus {
    let Some(pod) = pod else {
        return pb::DriverSandboxStatus {
            sandbox_name: name.into(),
            conditions: vec![
                condition("Ready", false, "Stopped", "the sandbox is stopped"),
                condition("Suspended", true, "Stopped", "the sandbox is stopped"),
            ],
            ..Default::default()
        };
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return pb::DriverSandboxStatus {
            sandbox_name: name.into(),
            instance_id: pod.metadata.name.clone().unwrap_or_default(),
            conditions: vec![
                condition("Ready", false, "Stopping", "the pod is terminating"),
                condition("Suspended", true, "Stopping", "the pod is terminating"),
            ],
            ..Default::default()
        };
    }
    let status = pod.status.clone().unwrap_or_default();
    let container = status.container_statuses.as_ref().and_then(|c| c.first());
    let waiting = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    let terminated = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    let ready = status
        .conditions
        .as_ref()
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let pod_reason = status.reason.clone().unwrap_or_default();
    let pod_message = status.message.clone().unwrap_or_default();
    let running = condition("Suspended", false, "Running", "");
    let conditions = match status.phase.as_deref() {
        Some("Running") if ready => vec![condition("Ready", true, "Running", ""), running],
        Some("Running") => vec![
            condition("Ready", false, "Starting", "containers are not ready yet"),
            running,
        ],
        Some("Failed") | Some("Succeeded") => {
            let (reason, message) = match terminated {
                Some(t) => (
                    t.reason.clone().unwrap_or_else(|| "Error".into()),
                    format!(
                        "exited with status {}{}",
                        t.exit_code,
                        t.message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ),
                ),
                None if !pod_reason.is_empty() => (pod_reason.clone(), pod_message.clone()),
                None => ("Completed".into(), String::new()),
            };
            vec![
                condition("Ready", false, &reason, &message),
                condition("Terminated", true, &reason, &message),
                running,
            ]
        }
        Some("Unknown") => {
            let reason = if pod_reason.is_empty() {
                "Unknown"
            } else {
                pod_reason.as_str()
            };
            vec![condition("Ready", false, reason, &pod_message), running]
        }
        _ => match waiting {
            Some(w) => {
                // Kubernetes' "not yet" waiting reasons become the one upstream
                // gateways know as transient; the others (ImagePullBackOff, …) are
                // failures and keep their names.
                let reason = match w.reason.as_deref() {
                    None => "ContainerStarting".to_owned(),
                    Some(r) if STARTING.contains(&r) => "ContainerStarting".to_owned(),
                    Some(r) => r.to_owned(),
                };
                vec![
                    condition(
                        "Ready",
                        false,
                        &reason,
                        w.message.as_deref().unwrap_or_default(),
                    ),
                    running,
                ]
            }
            None => vec![
                condition(
                    "Ready",
                    false,
                    "DependenciesNotReady",
                    "waiting to be scheduled and started",
                ),
                running,
            ],
        },
    };
    pb::DriverSandboxStatus {
        sandbox_name: name.into(),
        instance_id: pod.metadata.name.clone().unwrap_or_default(),
        conditions,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proto::phase::{Phase, phase_of};
    use serde_json::json;

    fn phase_and_reason(pod: Option<serde_json::Value>) -> (Phase, String) {
        let pod: Option<Pod> = pod.map(|p| serde_json::from_value(p).unwrap());
        let status = sandbox_status("s", pod.as_ref());
        let reason = status
            .conditions
            .iter()
            .find(|c| c.r#type == "Ready")
            .unwrap()
            .reason
            .clone();
        (
            phase_of(&pb::DriverSandbox {
                status: Some(status),
                ..Default::default()
            }),
            reason,
        )
    }

    #[test]
    fn pod_states_map_to_contract_phases_with_platform_reasons() {
        let ready = json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            phase_and_reason(Some(ready)),
            (Phase::Ready, "Running".into())
        );
        let pending = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending"}});
        assert_eq!(
            phase_and_reason(Some(pending)),
            (Phase::Provisioning, "DependenciesNotReady".into())
        );
        let creating = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending", "containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 0, "image": "", "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(phase_and_reason(Some(creating)).0, Phase::Provisioning);
        let pull = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending", "containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 0, "image": "", "imageID": "", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}}}]}});
        assert_eq!(
            phase_and_reason(Some(pull)),
            (Phase::Error, "ImagePullBackOff".into())
        );
        let oom = json!({"metadata": {"name": "p"}, "status": {"phase": "Failed", "containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 0, "image": "", "imageID": "", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}});
        assert_eq!(
            phase_and_reason(Some(oom)),
            (Phase::Error, "OOMKilled".into())
        );
        let evicted = json!({"metadata": {"name": "p"}, "status": {"phase": "Failed", "reason": "Evicted", "message": "low on memory"}});
        assert_eq!(
            phase_and_reason(Some(evicted)),
            (Phase::Error, "Evicted".into())
        );
        let lost = json!({"metadata": {"name": "p"}, "status": {"phase": "Unknown", "reason": "NodeLost"}});
        assert_eq!(
            phase_and_reason(Some(lost)),
            (Phase::Error, "NodeLost".into())
        );
        assert_eq!(phase_and_reason(None), (Phase::Stopped, "Stopped".into()));
        let phase = |status| {
            phase_of(&pb::DriverSandbox {
                status: Some(status),
                ..Default::default()
            })
        };
        assert_eq!(phase(pod_missing("s", true)), Phase::Provisioning);
        assert_eq!(phase(pod_missing("s", false)), Phase::Error);
        let deleting = json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert_eq!(
            phase_and_reason(Some(deleting)),
            (Phase::Stopped, "Stopping".into()),
            "a terminating pod is a stopping sandbox; only a deleted Secret means deleting"
        );
    }

    /// The reasons upstream's gateway treats as transient, copied literally from its
    /// `is_terminal_failure_reason` (openshell-server, compute module) rather than
    /// from our constant, so a change on either side shows here.
    const UPSTREAM_TRANSIENT: [&str; 8] = [
        "reconcilererror",
        "dependenciesnotready",
        "supervisornotconnected",
        "starting",
        "containerstarting",
        "containercreated",
        "healthcheckstarting",
        "inspectfailed",
    ];

    #[test]
    fn every_reason_a_starting_pod_gets_is_transient_upstream() {
        let waiting = |reason: Option<&str>| {
            json!({"metadata": {"name": "p"}, "status": {"phase": "Pending", "containerStatuses": [
                {"name": "c", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                 "state": {"waiting": reason.map_or(json!({}), |r| json!({"reason": r}))}}]}})
        };
        let starting = [
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"name": "p"}, "status": {"phase": "Pending"}}),
            json!({"metadata": {"name": "p"}, "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}),
            waiting(None),
            waiting(Some("ContainerCreating")),
            waiting(Some("PodInitializing")),
            json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "False"}]}}),
        ];
        let mut statuses: Vec<pb::DriverSandboxStatus> = starting
            .into_iter()
            .map(|pod| sandbox_status("s", Some(&serde_json::from_value(pod).unwrap())))
            .collect();
        statuses.push(pod_missing("s", true));
        for status in statuses {
            let ready = status
                .conditions
                .iter()
                .find(|c| c.r#type == "Ready")
                .unwrap();
            assert_eq!(ready.status, "False");
            assert!(
                UPSTREAM_TRANSIENT.contains(&ready.reason.to_ascii_lowercase().as_str()),
                "{:?} is not transient upstream: the upstream gateway would show Error",
                ready.reason
            );
            assert!(proto::phase::is_transient(&ready.reason));
        }
        for transient in UPSTREAM_TRANSIENT {
            assert!(proto::phase::is_transient(transient), "{transient}");
        }
    }
}
