//! A process sandbox's lifecycle state and the conditions it reports: pure data and
//! pure functions, persisted as `state.json`.

use proto::pb::compute::v1 as pb;
use serde::{Deserialize, Serialize};

/// What the user last asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Desired {
    /// Keep it running (Create, Start).
    Running,
    /// Keep it stopped (Stop).
    Stopped,
}

/// What the main process is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Phase {
    /// Running as process group `pid`; `start_ticks` tells it apart from a later
    /// process that reuses the pid.
    Running {
        /// Process (and process group) id.
        pid: i32,
        /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
        start_ticks: u64,
    },
    /// Stopped on request.
    Stopped,
    /// Ended on its own.
    Exited {
        /// Exit code, when it exited normally.
        code: Option<i32>,
        /// Signal number, when a signal ended it.
        signal: Option<i32>,
    },
    /// Ended while the driver was not watching; its exit status is unknown.
    Lost,
}

/// The persisted state of one sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// What the user asked for.
    pub(crate) desired: Desired,
    /// What the process does.
    pub(crate) phase: Phase,
    /// When `phase` last changed (ms since the epoch).
    pub(crate) since_ms: i64,
    /// Resource limits the platform could not enforce, for the conditions.
    #[serde(default)]
    pub(crate) unenforced_limits: Vec<String>,
}

impl State {
    /// The pid and start time when running.
    pub(crate) fn running(&self) -> Option<(i32, u64)> {
        match self.phase {
            Phase::Running { pid, start_ticks } => Some((pid, start_ticks)),
            _ => None,
        }
    }
}

fn condition(
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
    since: &str,
) -> pb::DriverCondition {
    pb::DriverCondition {
        r#type: kind.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: since.to_owned(),
    }
}

/// The contract conditions for a state: `Ready`, plus `Suspended` when stopped,
/// `Terminated` when the process ended, and `ResourceLimits` when a requested limit
/// is not enforced.
pub(crate) fn conditions(state: &State) -> Vec<pb::DriverCondition> {
    let since = rfc3339(state.since_ms);
    let mut out = match &state.phase {
        Phase::Running { pid, .. } => vec![
            condition(
                "Ready",
                true,
                "Running",
                format!("main process {pid} is running"),
                &since,
            ),
            condition("Suspended", false, "Running", String::new(), &since),
        ],
        Phase::Stopped => vec![
            condition(
                "Ready",
                false,
                "Stopped",
                "stopped on request".into(),
                &since,
            ),
            condition(
                "Suspended",
                true,
                "StoppedByRequest",
                "stopped on request; Start runs it again".into(),
                &since,
            ),
        ],
        Phase::Exited { code, signal } => {
            let (reason, message) = exit_summary(*code, *signal);
            vec![
                condition("Ready", false, reason, message.clone(), &since),
                condition("Terminated", true, reason, message, &since),
            ]
        }
        Phase::Lost => {
            let message = "the main process ended while the driver was not running; its exit status is unknown".to_owned();
            vec![
                condition("Ready", false, "ProcessLost", message.clone(), &since),
                condition("Terminated", true, "ProcessLost", message, &since),
            ]
        }
    };
    if !state.unenforced_limits.is_empty() {
        out.push(condition(
            "ResourceLimits",
            false,
            "NotEnforced",
            format!(
                "not enforced on this host: {}",
                state.unenforced_limits.join("; ")
            ),
            &since,
        ));
    }
    out
}

/// Reason and message for an ended process.
pub(crate) fn exit_summary(code: Option<i32>, signal: Option<i32>) -> (&'static str, String) {
    match (code, signal) {
        (Some(0), _) => ("Completed", "main process exited with status 0".to_owned()),
        (Some(code), _) => ("Failed", format!("main process exited with status {code}")),
        (None, Some(signal)) => (
            "Failed",
            format!("main process was killed by signal {signal}"),
        ),
        (None, None) => (
            "Failed",
            "main process ended; exit status unknown".to_owned(),
        ),
    }
}

/// RFC 3339 (UTC, seconds) for a millisecond timestamp.
pub(crate) fn rfc3339(ms: i64) -> String {
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(phase: Phase) -> State {
        State {
            desired: Desired::Running,
            phase,
            since_ms: 0,
            unenforced_limits: vec![],
        }
    }

    fn find<'a>(conditions: &'a [pb::DriverCondition], kind: &str) -> &'a pb::DriverCondition {
        conditions.iter().find(|c| c.r#type == kind).unwrap()
    }

    #[test]
    fn running_is_ready() {
        let c = conditions(&state(Phase::Running {
            pid: 42,
            start_ticks: 1,
        }));
        assert_eq!(find(&c, "Ready").status, "True");
        assert!(find(&c, "Ready").message.contains("42"));
        assert_eq!(
            find(&c, "Ready").last_transition_time,
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn stopped_is_suspended_and_not_ready() {
        let c = conditions(&state(Phase::Stopped));
        assert_eq!(find(&c, "Suspended").status, "True");
        assert_eq!(find(&c, "Ready").status, "False");
    }

    #[test]
    fn a_failed_exit_reports_its_status() {
        let c = conditions(&state(Phase::Exited {
            code: Some(3),
            signal: None,
        }));
        let terminated = find(&c, "Terminated");
        assert_eq!(
            (terminated.status.as_str(), terminated.reason.as_str()),
            ("True", "Failed")
        );
        assert!(terminated.message.contains("status 3"));
        assert_eq!(find(&c, "Ready").reason, "Failed");
    }

    #[test]
    fn a_clean_exit_is_completed() {
        let c = conditions(&state(Phase::Exited {
            code: Some(0),
            signal: None,
        }));
        assert_eq!(find(&c, "Terminated").reason, "Completed");
    }

    #[test]
    fn unenforced_limits_are_reported() {
        let mut s = state(Phase::Running {
            pid: 1,
            start_ticks: 1,
        });
        s.unenforced_limits.push("cpu limit 500m".into());
        let c = conditions(&s);
        assert!(
            find(&c, "ResourceLimits")
                .message
                .contains("cpu limit 500m")
        );
    }

    #[test]
    fn state_round_trips_through_json() {
        let s = state(Phase::Exited {
            code: None,
            signal: Some(9),
        });
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<State>(&text).unwrap(), s);
    }
}
