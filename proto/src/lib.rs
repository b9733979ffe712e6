//! The wire shared by every crate of the suite.
//!
//! - [`pb`]: the generated gRPC code for the ComputeDriver and CredentialsDriver
//!   contracts, plus `grpc.health.v1`.
//! - [`uds`]: both sides of a Unix domain socket: safe bind, peer-credential allowlist,
//!   serving with health and graceful shutdown; lazy connect with readiness = a
//!   completed RPC.
//! - [`retry`]: one backoff type, one status classifier (the status-code table), one
//!   retry helper for typed client calls.
//! - [`Secret`]: a string whose `Debug`/`Display` print `[redacted]`.
//! - [`watch`]: a server stream that reconnects with backoff and marks every new stream,
//!   so consumers reconcile from its snapshot.
//! - [`deadline`]: the caller's `grpc-timeout`, for server streams.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics` over HTTP.
//! - [`phase`]: the sandbox phase derived from driver conditions (the contract's rule).
//! - [`private`]: the rules for files and directories that hold secrets.
//! - [`reason`]: machine-readable reasons on error statuses.
//! - [`cli`] (feature `cli`): flag and logging helpers shared by the binaries.
//! - `testing` (feature `test-util`): spawn a driver binary in tests.

pub mod admin;
pub mod deadline;
pub mod pb;
pub mod phase;
pub mod private;
pub mod reason;
pub mod retry;
mod secret;
pub mod uds;
pub mod watch;

#[cfg(feature = "cli")]
pub mod cli;

#[cfg(feature = "test-util")]
pub mod testing;

pub use retry::{Backoff, Idempotency, RetryClass, RetryPolicy, call, classify};
pub use secret::Secret;
pub use uds::{
    BindError, BoundSocket, ConnectConfig, ConnectError, Health, PeerPolicy, Readiness, ServeError,
    ServeOptions, SocketConfig, bind, connect, describe_status, error_chain, lazy_channel, serve,
    shutdown_signal, wait_for_answer, wait_ready,
};
pub use watch::{WatchEvent, reconnecting};
