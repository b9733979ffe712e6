//! The one trait every backend implements; the service never knows which one runs.

pub mod kubernetes;
pub mod process;

use proto::pb::compute::encoded::ListSandboxesReply;
use proto::pb::compute::v1 as pb;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::Result;
use crate::validate::Limits;

/// What a backend can do, for `GetCapabilities` and validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Image used when a request names none (empty: a command is required).
    pub default_image: String,
    /// Whether `Ready=True` means the workload itself is up.
    pub reports_runtime_readiness: bool,
}

/// How a request names a sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SandboxRef {
    /// By the gateway-assigned id.
    Id(String),
    /// By name (when no id is given).
    Name(String),
}

impl SandboxRef {
    /// The reference a request carries: the id when present, else the name.
    pub fn from_request(id: &str, name: &str) -> Self {
        if id.is_empty() {
            Self::Name(name.to_owned())
        } else {
            Self::Id(id.to_owned())
        }
    }

    /// The id or name, for messages.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(s) | Self::Name(s) => s,
        }
    }
}

/// When the caller stops waiting (its `grpc-timeout`). Backends that call a remote
/// platform bound every call by it; local work may outlive it (see `service::detached`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: the backend's own bound applies.
    pub const NONE: Self = Self(None);

    /// The deadline a request carries.
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        Self(proto::deadline::grpc_timeout(request.metadata()).map(|t| Instant::now() + t))
    }

    /// `after` from now.
    pub fn after(after: Duration) -> Self {
        Self(Some(Instant::now() + after))
    }

    /// The instant, when there is one.
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// Time left, at most `cap` (zero once passed).
    pub fn remaining(self, cap: Duration) -> Duration {
        self.0.map_or(cap, |at| {
            at.saturating_duration_since(Instant::now()).min(cap)
        })
    }
}

/// A change a backend reports to watchers.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A sandbox's current state (token cleared).
    Sandbox(Box<pb::DriverSandbox>),
    /// A sandbox is gone.
    Deleted(String),
    /// Something happened to a sandbox on the platform.
    Platform {
        /// The sandbox.
        sandbox_id: String,
        /// What happened.
        event: pb::DriverPlatformEvent,
    },
}

/// A compute backend. Sandboxes it returns never carry the sandbox token.
#[tonic::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// Backend-specific checks of a request that passed common validation; no side
    /// effects.
    fn validate(&self, sandbox: &pb::DriverSandbox, limits: &Limits) -> Result<()>;

    /// Accepts a sandbox and starts provisioning it. Same id and same spec again is a
    /// no-op; same id or name with another spec is `AlreadyExists`.
    async fn create(
        &self,
        sandbox: pb::DriverSandbox,
        limits: Limits,
        deadline: Deadline,
    ) -> Result<()>;

    /// One sandbox.
    async fn get(&self, sandbox: &SandboxRef) -> Result<pb::DriverSandbox>;

    /// Every sandbox.
    async fn list(&self) -> Result<Vec<pb::DriverSandbox>>;

    /// Every sandbox, each encoded (`DriverSandbox` bytes), for the List reply; by
    /// default [`Backend::list`] encoded. Backends that keep encodings hand them over.
    async fn list_encoded(&self) -> Result<Vec<bytes::Bytes>> {
        let sandboxes = self.list().await?;
        Ok(ListSandboxesReply::encoding(&sandboxes).sandboxes)
    }

    /// Stops a sandbox's workload, keeping its state. Missing or stopped: no-op.
    async fn stop(&self, sandbox: &SandboxRef, deadline: Deadline) -> Result<()>;

    /// Starts a stopped sandbox. Running: no-op.
    async fn start(&self, sandbox: &SandboxRef, deadline: Deadline) -> Result<()>;

    /// Removes a sandbox; true when something was removed.
    async fn delete(&self, sandbox: &SandboxRef, deadline: Deadline) -> Result<bool>;

    /// Changes from now on (subscribe before taking a snapshot with `list`).
    fn subscribe(&self) -> broadcast::Receiver<Event>;

    /// Creates a workspace if missing.
    async fn ensure_workspace(&self, name: &str, deadline: Deadline) -> Result<()>;

    /// Removes a workspace; missing is fine.
    async fn delete_workspace(&self, name: &str, deadline: Deadline) -> Result<()>;

    /// What the sandbox's main process wrote (see [`LogRequest`]).
    async fn logs(&self, sandbox: &SandboxRef, request: LogRequest) -> Result<LogStream> {
        let _ = (sandbox, request);
        Err(crate::ComputeError::Unimplemented(
            "this backend does not serve sandbox logs".into(),
        ))
    }
}

/// Which output a chunk of logs came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A piece of a sandbox's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// Where it was written.
    pub source: LogSource,
    /// The bytes, as written.
    pub data: Vec<u8>,
}

/// What to read of a sandbox's output.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogRequest {
    /// Keep following until the process ends.
    pub follow: bool,
    /// Only the last this many bytes of each output (0: all).
    pub tail_bytes: u64,
}

/// Log chunks, ending when everything asked for was sent.
pub type LogStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<LogChunk>> + Send + 'static>>;

/// A sandbox as a backend stores it: status and token cleared (the token returned on
/// its own), the namespace set to where the backend runs it.
pub(crate) fn split_token(
    sandbox: &pb::DriverSandbox,
    namespace: &str,
) -> (pb::DriverSandbox, proto::Secret) {
    let mut record = sandbox.clone();
    record.status = None;
    record.namespace = namespace.to_owned();
    let token = record
        .spec
        .as_mut()
        .map(|spec| proto::Secret::new(std::mem::take(&mut spec.sandbox_token)))
        .unwrap_or_default();
    (record, token)
}
