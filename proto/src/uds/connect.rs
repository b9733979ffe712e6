//! Client side of a socket: a lazy channel, and readiness = a completed RPC.
//!
//! A socket file existing proves nothing (it may be stale, or the server may still be
//! starting), so [`wait_ready`] keeps probing with backoff and jitter until an RPC
//! completes, logs "still waiting for <socket>" every few seconds, and gives up at its
//! deadline with an error that names the socket.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::client::GrpcService;
use tonic::codegen::{Body as HttpBody, Bytes, StdError};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status};

use crate::pb::health::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use crate::retry::Backoff;

/// How long and how patiently to wait for a server.
#[derive(Clone, Copy, Debug)]
pub struct ConnectConfig {
    /// Delay between probes (default 50 ms doubling to 1 s, 50 % jitter).
    pub backoff: Backoff,
    /// Give up after this long (default 30 s).
    pub deadline: Duration,
    /// Log "still waiting" this often (default 5 s).
    pub log_every: Duration,
    /// Bound on one probe call (default 1 s).
    pub probe_timeout: Duration,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            backoff: Backoff::CONNECT,
            deadline: Duration::from_secs(30),
            log_every: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

/// The outcome of one readiness probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// An RPC completed: the server is up.
    Ready,
    /// Not yet, and why (shown in logs and in the final error).
    NotReady(String),
}

/// The server never became ready.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The deadline passed without a completed probe.
    #[error("gave up waiting for socket {socket:?} after {waited:?}: {last}")]
    GaveUp {
        /// The socket we waited for.
        socket: PathBuf,
        /// How long we waited.
        waited: Duration,
        /// The last probe's reason.
        last: String,
    },
}

/// A channel to the socket at `path` that connects on first use and reconnects after
/// failures. The HTTP/2 `:authority` is a placeholder; servers must accept any.
pub fn lazy_channel(path: impl Into<PathBuf>) -> Channel {
    let path = Arc::new(path.into());
    Endpoint::from_static("http://localhost").connect_with_connector_lazy(tower::service_fn(
        move |_: Uri| {
            let path = Arc::clone(&path);
            async move { UnixStream::connect(path.as_path()).await.map(TokioIo::new) }
        },
    ))
}

/// A lazy channel to `path`, returned once the server answers `grpc.health.v1` Check.
///
/// # Errors
/// [`ConnectError::GaveUp`] at `config.deadline`.
pub async fn connect(path: &Path, config: &ConnectConfig) -> Result<Channel, ConnectError> {
    let channel = lazy_channel(path);
    let probe_channel = channel.clone();
    let timeout = config.probe_timeout;
    wait_ready(path, config, || {
        health_probe(probe_channel.clone(), timeout)
    })
    .await?;
    Ok(channel)
}

/// Probes with `grpc.health.v1` Check (overall status).
///
/// SERVING is ready; NOT_SERVING is not. UNIMPLEMENTED also counts as ready: the call
/// completed, the server simply does not serve health (as some deployed drivers do).
pub async fn health_probe<T>(channel: T, timeout: Duration) -> Readiness
where
    T: GrpcService<Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: HttpBody<Data = Bytes> + Send + 'static,
    <T::ResponseBody as HttpBody>::Error: Into<StdError> + Send,
{
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request.set_timeout(timeout);
    let mut client = HealthClient::new(channel);
    match tokio::time::timeout(timeout, client.check(request)).await {
        Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving => {
            Readiness::Ready
        }
        Ok(Ok(response)) => {
            Readiness::NotReady(format!("health is {:?}", response.get_ref().status()))
        }
        Ok(Err(status)) if status.code() == Code::Unimplemented => Readiness::Ready,
        Ok(Err(status)) => Readiness::NotReady(describe_status(&status)),
        Err(_) => Readiness::NotReady(format!("no answer within {timeout:?}")),
    }
}

/// Runs `probe` with backoff until it reports [`Readiness::Ready`] or the deadline
/// passes; logs "still waiting for <socket>" every `config.log_every`.
///
/// # Errors
/// [`ConnectError::GaveUp`] with the last probe's reason.
pub async fn wait_ready<F, Fut>(
    socket: &Path,
    config: &ConnectConfig,
    mut probe: F,
) -> Result<(), ConnectError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Readiness>,
{
    let started = Instant::now();
    let deadline = started + config.deadline;
    let mut next_log = started + config.log_every;
    let mut backoff = config.backoff.session();
    loop {
        let reason = match probe().await {
            Readiness::Ready => {
                tracing::debug!(socket = %socket.display(), waited = ?started.elapsed(), "ready");
                return Ok(());
            }
            Readiness::NotReady(reason) => reason,
        };
        let now = Instant::now();
        if now >= next_log {
            tracing::info!(socket = %socket.display(), waited = ?now - started, %reason, "still waiting for socket");
            next_log = now + config.log_every;
        }
        let delay = backoff.next_delay();
        if now + delay >= deadline {
            return Err(ConnectError::GaveUp {
                socket: socket.to_path_buf(),
                waited: now - started,
                last: reason,
            });
        }
        tokio::time::sleep(delay).await;
    }
}

/// Waits until `call` completes and returns its answer: readiness for servers whose
/// probe is a contract RPC (e.g. GetCapabilities). `call` gets the per-probe timeout.
/// With `unimplemented_is_ready`, an UNIMPLEMENTED answer also counts (the server is
/// up but lacks the RPC) and yields `None`.
///
/// # Errors
/// [`ConnectError::GaveUp`] at `config.deadline`.
pub async fn wait_for_answer<T, F, Fut>(
    socket: &Path,
    config: &ConnectConfig,
    unimplemented_is_ready: bool,
    call: F,
) -> Result<Option<T>, ConnectError>
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let answer = std::sync::OnceLock::new();
    wait_ready(socket, config, || {
        let reply = call(config.probe_timeout);
        let answer = &answer;
        async move {
            match reply.await {
                Ok(value) => {
                    let _ = answer.set(value);
                    Readiness::Ready
                }
                Err(status) if unimplemented_is_ready && status.code() == Code::Unimplemented => {
                    Readiness::Ready
                }
                Err(status) => Readiness::NotReady(describe_status(&status)),
            }
        }
    })
    .await?;
    Ok(answer.into_inner())
}

/// A status's code and message with its source chain (transport errors keep the OS
/// error there), for logs and error messages.
pub fn describe_status(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = std::error::Error::source(status) {
        append_causes(&mut text, source);
    }
    text
}

/// An error and its sources on one line, each cause once (wrappers often repeat the
/// message of what they wrap).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    if let Some(source) = error.source() {
        append_causes(&mut text, source);
    }
    text
}

fn append_causes(text: &mut String, first: &dyn std::error::Error) {
    let mut source = Some(first);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
}
