//! Programmable faults for the mock drivers: fail the next N calls of an RPC with a
//! code, add latency, hang, end watch streams.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tonic::{Code, Status};

#[derive(Debug, Default)]
struct Plan {
    failures: HashMap<String, (Code, u32)>,
    latency: HashMap<String, Duration>,
    hang: HashMap<String, bool>,
}

/// A handle to program faults; clones share the same plan.
#[derive(Clone, Debug)]
pub struct Faults {
    plan: Arc<Mutex<Plan>>,
    watch_epoch: Arc<watch::Sender<u64>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            plan: Arc::default(),
            watch_epoch: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Faults {
    /// The next `count` calls of `rpc` (e.g. "CreateSandbox") fail with `code`.
    pub async fn fail_next(&self, rpc: &str, code: Code, count: u32) {
        self.plan
            .lock()
            .await
            .failures
            .insert(rpc.to_owned(), (code, count));
    }

    /// Every call of `rpc` waits `delay` first.
    pub async fn set_latency(&self, rpc: &str, delay: Duration) {
        self.plan.lock().await.latency.insert(rpc.to_owned(), delay);
    }

    /// Calls of `rpc` never answer (until [`Faults::clear`]).
    pub async fn hang(&self, rpc: &str) {
        self.plan.lock().await.hang.insert(rpc.to_owned(), true);
    }

    /// Removes every programmed fault.
    pub async fn clear(&self) {
        *self.plan.lock().await = Plan::default();
    }

    /// Ends every open watch stream (with UNAVAILABLE).
    pub fn end_watches(&self) {
        self.watch_epoch.send_modify(|epoch| *epoch += 1);
    }

    /// A receiver that changes when watches should end.
    pub(crate) fn watch_epoch(&self) -> watch::Receiver<u64> {
        self.watch_epoch.subscribe()
    }

    /// Applies the plan to one call of `rpc`.
    pub(crate) async fn before(&self, rpc: &str) -> Result<(), Status> {
        let (delay, hang, failure) = {
            let mut plan = self.plan.lock().await;
            let failure = match plan.failures.get_mut(rpc) {
                Some((code, left)) if *left > 0 => {
                    *left -= 1;
                    Some(*code)
                }
                _ => None,
            };
            (
                plan.latency.get(rpc).copied(),
                plan.hang.get(rpc).copied().unwrap_or(false),
                failure,
            )
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if hang {
            std::future::pending::<()>().await;
        }
        match failure {
            Some(code) => Err(Status::new(code, format!("{rpc}: injected fault"))),
            None => Ok(()),
        }
    }
}

/// Parses `RPC=CODE:COUNT` (e.g. `CreateSandbox=UNAVAILABLE:3`), for the mock binaries.
///
/// # Errors
/// A message with the expected form.
pub fn parse_failure(text: &str) -> Result<(String, Code, u32), String> {
    let bad = || format!("{text:?}: use RPC=CODE:COUNT, e.g. CreateSandbox=UNAVAILABLE:3");
    let (rpc, rest) = text.split_once('=').ok_or_else(bad)?;
    let (code, count) = rest.split_once(':').ok_or_else(bad)?;
    let code = match code {
        "UNAVAILABLE" => Code::Unavailable,
        "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
        "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
        "INTERNAL" => Code::Internal,
        "NOT_FOUND" => Code::NotFound,
        "INVALID_ARGUMENT" => Code::InvalidArgument,
        "FAILED_PRECONDITION" => Code::FailedPrecondition,
        "PERMISSION_DENIED" => Code::PermissionDenied,
        "UNAUTHENTICATED" => Code::Unauthenticated,
        _ => return Err(bad()),
    };
    Ok((rpc.to_owned(), code, count.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_count_down_then_calls_pass() {
        let faults = Faults::default();
        faults.fail_next("Get", Code::Unavailable, 2).await;
        assert_eq!(
            faults.before("Get").await.unwrap_err().code(),
            Code::Unavailable
        );
        assert_eq!(
            faults.before("Get").await.unwrap_err().code(),
            Code::Unavailable
        );
        assert!(faults.before("Get").await.is_ok());
        assert!(faults.before("Other").await.is_ok());
    }

    #[test]
    fn failure_flags_parse() {
        assert_eq!(
            parse_failure("CreateSandbox=UNAVAILABLE:3").unwrap(),
            ("CreateSandbox".into(), Code::Unavailable, 3)
        );
        assert!(
            parse_failure("CreateSandbox")
                .unwrap_err()
                .contains("RPC=CODE:COUNT")
        );
    }
}
