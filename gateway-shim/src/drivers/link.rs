//! What both driver clients share: the socket's channel, whether the driver is
//! reachable, and calls through the one retry helper with a deadline each.
//!
//! While a driver is down, calls fail fast: one health probe (bounded by
//! [`PROBE_TIMEOUT`]) instead of a full retry budget, so writes that need the driver
//! answer UNAVAILABLE naming it at once and reads of the gateway's own records carry on.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proto::uds::DirectChannel;
use proto::{Idempotency, Readiness, RetryPolicy};
use tonic::{Code, Request, Response, Status};

/// Bound on the probe made before calling a driver marked unavailable.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a driver call failed, as the gateway's callers may learn it: the driver's own
/// refusal (its code, message and machine-readable reason), or that it cannot be
/// reached (the socket and transport detail are logged, not carried).
#[derive(Clone, Debug, thiserror::Error)]
pub enum DriverError {
    /// The driver does not answer.
    #[error(
        "the {driver} is unavailable; the gateway keeps its records and catches up when it is back: retry later"
    )]
    Unavailable {
        /// Which driver.
        driver: &'static str,
    },
    /// The driver answered with an error.
    #[error("{driver}: {message}")]
    Refused {
        /// Which driver.
        driver: &'static str,
        /// The driver's code.
        code: Code,
        /// The driver's message.
        message: String,
        /// Its `openshell-reason`, if any.
        reason: Option<String>,
    },
}

impl DriverError {
    /// The gRPC code callers get.
    pub fn code(&self) -> Code {
        match self {
            Self::Unavailable { .. } => Code::Unavailable,
            Self::Refused { code, .. } => *code,
        }
    }

    /// The driver's machine-readable reason, if it gave one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Unavailable { .. } => None,
            Self::Refused { reason, .. } => reason.as_deref(),
        }
    }
}

/// A driver behind a socket.
#[derive(Clone, Debug)]
pub struct DriverLink {
    name: &'static str,
    socket: PathBuf,
    channel: DirectChannel,
    available: Arc<AtomicBool>,
    /// When "unreachable" was last logged at warn (seconds since the link was made).
    warned_at: Arc<std::sync::atomic::AtomicU64>,
    made: tokio::time::Instant,
    policy: RetryPolicy,
}

/// While a driver stays unreachable, how often the warning is repeated.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl DriverLink {
    /// A link to `name` (for messages) at `socket`; nothing is dialled yet.
    pub fn new(name: &'static str, socket: &Path, policy: RetryPolicy) -> Self {
        Self {
            name,
            socket: socket.to_owned(),
            channel: DirectChannel::lazy(socket),
            available: Arc::new(AtomicBool::new(false)),
            warned_at: Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
            made: tokio::time::Instant::now(),
            policy,
        }
    }

    /// This link with every call also bounded by `deadline` (the caller's), when that
    /// comes sooner than the configured deadline.
    pub fn within(&self, deadline: Option<tokio::time::Instant>) -> Self {
        let mut link = self.clone();
        if let Some(deadline) = deadline {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            link.policy = link
                .policy
                .with_deadline(remaining.min(self.policy.deadline));
        }
        link
    }

    /// The channel, for typed clients.
    pub fn channel(&self) -> DirectChannel {
        self.channel.clone()
    }

    /// The driver's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether the last contact succeeded.
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// Records whether the driver answers; logs transitions.
    pub fn set_available(&self, available: bool) {
        let was = self.available.swap(available, Ordering::Relaxed);
        if was != available {
            if available {
                self.warned_at.store(u64::MAX, Ordering::Relaxed);
                tracing::info!(driver = self.name, socket = %self.socket.display(), "driver available");
            } else {
                tracing::warn!(driver = self.name, socket = %self.socket.display(), "driver unavailable");
            }
        }
    }

    /// UNAVAILABLE naming the driver; the socket path and the transport's detail go to
    /// the log (for the operator), not to the caller: at warn once, then once a minute
    /// while it stays unreachable (every failure at debug).
    pub fn unavailable(&self, why: &str) -> DriverError {
        let now = self.made.elapsed().as_secs();
        let last = self.warned_at.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= WARN_EVERY.as_secs();
        if due
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                driver = self.name,
                socket = %self.socket.display(),
                %why,
                "cannot reach the driver at its socket (is it running, and is this the path it serves on?); retrying, next warning in a minute if it stays unreachable"
            );
        } else {
            tracing::debug!(driver = self.name, socket = %self.socket.display(), %why, "driver call failed: unavailable");
        }
        DriverError::Unavailable { driver: self.name }
    }

    /// Ok when the driver is marked available or answers a quick health probe now.
    ///
    /// # Errors
    /// UNAVAILABLE naming the driver.
    pub async fn ensure_available(&self) -> Result<(), DriverError> {
        if self.is_available() {
            return Ok(());
        }
        match proto::uds::health_probe(self.channel(), PROBE_TIMEOUT).await {
            Readiness::Ready => {
                self.set_available(true);
                Ok(())
            }
            Readiness::NotReady(why) => Err(self.unavailable(&why)),
        }
    }

    /// One logical call through the retry helper; driver errors keep their code and
    /// message, prefixed with the driver's name.
    ///
    /// # Errors
    /// The driver's status, or UNAVAILABLE when it cannot be reached.
    pub async fn call<M, T, B, S, Fut>(
        &self,
        idempotency: Idempotency,
        message: B,
        send: S,
    ) -> Result<T, DriverError>
    where
        B: FnMut() -> M,
        S: FnMut(Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        self.ensure_available().await?;
        match proto::call(&self.policy, idempotency, message, send).await {
            Ok(value) => Ok(value),
            Err(status) if status.code() == Code::Unavailable => {
                self.set_available(false);
                Err(self.unavailable(status.message()))
            }
            // The code and the machine-readable reason stay the driver's.
            Err(status) => Err(DriverError::Refused {
                driver: self.name,
                code: status.code(),
                message: status.message().to_owned(),
                reason: proto::reason::reason_of(&status).map(str::to_owned),
            }),
        }
    }
}
