//! Talking to the Kubernetes API: the client (kubeconfig or in-cluster), and one
//! wrapper that bounds every call by the RPC's deadline and sorts its outcome into what
//! callers act on (done, missing, conflict) or the suite's error table.
//!
//! The kube client's own retry layer is switched off: it retries 429/503/504 for up to
//! fifteen attempts with delays up to minutes, which would outlive any caller. Retrying
//! is the gateway's job (UNAVAILABLE is retryable there), within its deadline.

use std::future::Future;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Status;

use super::config::Config;
use crate::backend::Deadline;
use crate::{ComputeError as Error, Result};

/// A call's outcome that callers handle themselves.
#[derive(Debug)]
pub(crate) enum Answer<T> {
    /// It worked.
    Done(T),
    /// 404: the object (or its namespace) does not exist.
    Missing(Box<Status>),
    /// 409: it exists already, or the write lost a race.
    Conflict(Box<Status>),
}

/// Builds the client: from `config.kubeconfig` when given, else in-cluster or the
/// usual kubeconfig locations.
///
/// # Errors
/// `FailedPrecondition` naming the file when the configuration cannot be loaded.
pub(crate) async fn client(config: &Config) -> Result<kube::Client> {
    let loaded = match &config.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                Error::FailedPrecondition(format!(
                    "--kubeconfig {}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| {
                    Error::FailedPrecondition(format!(
                        "--kubeconfig {}: unusable: {e}",
                        path.display()
                    ))
                })?
        }
        None => kube::Config::infer().await.map_err(|e| {
            Error::FailedPrecondition(format!(
                "no Kubernetes configuration (not in a pod, and no usable $KUBECONFIG or ~/.kube/config; pass --kubeconfig): {e}"
            ))
        })?,
    };
    let mut loaded = loaded;
    loaded.default_retry = false;
    kube::Client::try_from(loaded)
        .map_err(|e| Error::FailedPrecondition(format!("cannot build a Kubernetes client: {e}")))
}

/// Runs one API call, `action` naming it for messages, bounded by `deadline` (at most
/// `cap`).
///
/// # Errors
/// `DeadlineExceeded` when time runs out; otherwise see [`error`].
pub(crate) async fn call<T>(
    deadline: Deadline,
    cap: Duration,
    action: &str,
    request: impl Future<Output = kube::Result<T>>,
) -> Result<Answer<T>> {
    let limit = deadline.remaining(cap);
    match tokio::time::timeout(limit, request).await {
        Err(_) => Err(Error::DeadlineExceeded(format!(
            "the Kubernetes API did not answer in time to {action} ({} ms left)",
            limit.as_millis()
        ))),
        Ok(Ok(value)) => Ok(Answer::Done(value)),
        Ok(Err(kube::Error::Api(status))) if status.is_not_found() => Ok(Answer::Missing(status)),
        Ok(Err(kube::Error::Api(status))) if status.code == 409 => Ok(Answer::Conflict(status)),
        Ok(Err(other)) => Err(error(action, other)),
    }
}

/// Like [`call`], for calls where 404 and 409 are errors too.
///
/// # Errors
/// See [`call`]; a 404 is `FailedPrecondition`, a 409 `Unavailable` (retry).
pub(crate) async fn must<T>(
    deadline: Deadline,
    cap: Duration,
    action: &str,
    request: impl Future<Output = kube::Result<T>>,
) -> Result<T> {
    match call(deadline, cap, action, request).await? {
        Answer::Done(value) => Ok(value),
        Answer::Missing(status) => Err(Error::FailedPrecondition(format!(
            "cannot {action}: {}",
            status.message
        ))),
        Answer::Conflict(status) => Err(Error::Unavailable(format!(
            "cannot {action} now ({}); retry",
            status.message
        ))),
    }
}

/// The suite's error for a failed call.
pub(crate) fn error(action: &str, error: kube::Error) -> Error {
    match error {
        kube::Error::Api(status) if status.is_forbidden() => Error::PermissionDenied(format!(
            "the Kubernetes API refused to let this driver {action}: {} (grant it the RBAC rules in the README)",
            status.message
        )),
        kube::Error::Api(status) if matches!(status.code, 400 | 422) => {
            Error::FailedPrecondition(format!(
                "the Kubernetes API rejected the request to {action}: {}",
                status.message
            ))
        }
        kube::Error::Api(status) => Error::Unavailable(format!(
            "the Kubernetes API failed to {action}: {} {}",
            status.code, status.message
        )),
        other => Error::Unavailable(format!(
            "cannot reach the Kubernetes API to {action}: {other}"
        )),
    }
}
