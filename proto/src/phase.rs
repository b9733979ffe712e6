//! The sandbox phase a gateway derives from a driver's conditions (the contract's rule,
//! in one place for the gateway, the drivers' metrics and the conformance harness).

use crate::pb::compute::v1 as pb;

/// A sandbox's phase as gateways show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Being created or starting.
    Provisioning,
    /// The workload is up.
    Ready,
    /// Stopped (`Suspended=True`).
    Stopped,
    /// Being deleted.
    Deleting,
    /// The main process ended successfully (`Ready=False`, reason `Completed`).
    Completed,
    /// Failed, or ended unsuccessfully.
    Error,
    /// No conditions yet.
    Unknown,
}

impl Phase {
    /// The phase's name, as used in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "Provisioning",
            Self::Ready => "Ready",
            Self::Stopped => "Stopped",
            Self::Deleting => "Deleting",
            Self::Completed => "Completed",
            Self::Error => "Error",
            Self::Unknown => "Unknown",
        }
    }
}

/// Reasons of `Ready=False` that mean "not yet" rather than "failed", compared
/// case-insensitively: exactly the set the upstream OpenShell gateway treats as
/// transient (`is_terminal_failure_reason` in its compute module), so a sandbox our
/// drivers report while it starts is Provisioning on every gateway, never Error. Our
/// drivers emit only these while a sandbox starts (tests pin that).
pub const TRANSIENT_REASONS: [&str; 8] = [
    "ReconcilerError",
    "DependenciesNotReady",
    "SupervisorNotConnected",
    "Starting",
    "ContainerStarting",
    "ContainerCreated",
    "HealthCheckStarting",
    "InspectFailed",
];

/// Whether `reason` (of `Ready=False`) is one upstream gateways treat as transient.
pub fn is_transient(reason: &str) -> bool {
    TRANSIENT_REASONS
        .iter()
        .any(|transient| transient.eq_ignore_ascii_case(reason))
}

/// The contract's rule: `deleting` → Deleting; `Suspended=True` → Stopped (checked
/// before Ready); `Ready=True` → Ready; `Ready=False` with a transient reason →
/// Provisioning, otherwise Error. One refinement: `Ready=False` with reason
/// `Completed` (a main process that exited 0) is Completed, not Error: a finished job
/// is not a failure.
pub fn phase_of(sandbox: &pb::DriverSandbox) -> Phase {
    let Some(status) = &sandbox.status else {
        return Phase::Unknown;
    };
    if status.deleting {
        return Phase::Deleting;
    }
    let find = |kind: &str| status.conditions.iter().find(|c| c.r#type == kind);
    if find("Suspended").is_some_and(|c| c.status == "True") {
        return Phase::Stopped;
    }
    match find("Ready") {
        Some(c) if c.status == "True" => Phase::Ready,
        Some(c) if c.status == "False" && is_transient(&c.reason) => Phase::Provisioning,
        Some(c) if c.status == "False" && c.reason == "Completed" => Phase::Completed,
        Some(c) if c.status == "False" => Phase::Error,
        Some(_) => Phase::Provisioning,
        None => Phase::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(conditions: &[(&str, &str, &str)], deleting: bool) -> pb::DriverSandbox {
        pb::DriverSandbox {
            status: Some(pb::DriverSandboxStatus {
                deleting,
                conditions: conditions
                    .iter()
                    .map(|(t, s, r)| pb::DriverCondition {
                        r#type: (*t).into(),
                        status: (*s).into(),
                        reason: (*r).into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_contract_rules() {
        assert_eq!(
            phase_of(&with(&[("Ready", "True", "")], true)),
            Phase::Deleting
        );
        assert_eq!(
            phase_of(&with(
                &[("Ready", "True", ""), ("Suspended", "True", "")],
                false
            )),
            Phase::Stopped
        );
        assert_eq!(
            phase_of(&with(&[("Ready", "True", "")], false)),
            Phase::Ready
        );
        assert_eq!(
            phase_of(&with(&[("Ready", "False", "Starting")], false)),
            Phase::Provisioning
        );
        assert_eq!(
            phase_of(&with(&[("Ready", "False", "Failed")], false)),
            Phase::Error
        );
        assert_eq!(
            phase_of(&with(&[("Ready", "False", "Completed")], false)),
            Phase::Completed
        );
        assert_eq!(phase_of(&with(&[], false)), Phase::Unknown);
        assert_eq!(phase_of(&pb::DriverSandbox::default()), Phase::Unknown);
    }
}
