//! Command-line flags (every flag also reads a `COMPUTE_DRIVER_*` env var).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use proto::cli::{LogArgs, SocketArgs, parse_duration};

/// Serves the ComputeDriver gRPC contract (and grpc.health.v1) on a Unix socket.
#[derive(Parser, Clone, Debug)]
#[command(name = "compute-driver", version, about, long_about = None)]
pub struct Args {
    /// Socket flags.
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Where sandboxes run.
    #[arg(long, value_enum, default_value_t = BackendKind::Process)]
    pub backend: BackendKind,
    /// Directory for sandbox records, tokens, logs and working directories
    /// (default: /tmp/compute-driver-<uid>). Sandboxes survive driver restarts through it.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// After SIGTERM to a sandbox's processes on Stop/Delete, how long before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub stop_grace: Duration,
    /// Serve /healthz, /readyz and /metrics over HTTP on this address (off when unset).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
}

/// A compute backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Local process groups on this machine (the embedded default).
    Process,
}

impl Args {
    /// The state directory, defaulted per user.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "/tmp/compute-driver-{}",
                nix::unistd::Uid::effective()
            ))
        })
    }
}
