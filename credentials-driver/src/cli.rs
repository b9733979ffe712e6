//! Command-line flags (every flag also reads a `CREDENTIALS_DRIVER_*` env var).

use clap::Parser;
use proto::cli::{LogArgs, SocketArgs};

/// Serves the CredentialsDriver gRPC contract (and grpc.health.v1) on a Unix socket.
#[derive(Parser, Clone, Debug)]
#[command(name = "credentials-driver", version, about, long_about = None)]
pub struct Args {
    /// Socket flags.
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
}
