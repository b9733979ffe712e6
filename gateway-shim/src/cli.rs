//! Command-line flags. Flags deployed gateways already use keep their spelling and env
//! vars (`OPENSHELL_*`); every other flag reads a `GATEWAY_*` env var.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use proto::cli::{LogArgs, parse_duration};

/// The thin sandbox gateway: checks its compute and credentials drivers over Unix
/// sockets and serves grpc.health.v1 on a TCP address.
#[derive(Parser, Clone, Debug)]
#[command(name = "gateway-shim", version, about, long_about = None)]
pub struct Args {
    /// What to run; without a subcommand the gateway serves.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Gateway flags.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Run the whole suite on this machine: both drivers (spawned from the binaries
    /// next to this one) on sockets in the state directory, and the gateway.
    Dev(DevArgs),
}

/// Flags of the gateway itself.
#[derive(ClapArgs, Clone, Debug)]
pub struct GatewayArgs {
    /// Unix socket of the compute driver (required unless running `dev`).
    #[arg(long, value_name = "PATH", env = "OPENSHELL_COMPUTE_DRIVER_SOCKET")]
    pub compute_driver_socket: Option<PathBuf>,
    /// Unix socket of the credentials driver (optional: without it, credential
    /// lookups are unavailable).
    #[arg(long, value_name = "PATH", env = "OPENSHELL_CREDENTIALS_DRIVER_SOCKET")]
    pub credentials_driver_socket: Option<PathBuf>,
    /// TCP address to serve the gateway's gRPC API (health for now) on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How long to wait for a driver to answer at start-up (e.g. 30s).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub driver_connect_timeout: Duration,
}

/// Flags of `dev`.
#[derive(ClapArgs, Clone, Debug)]
pub struct DevArgs {
    /// Directory for the driver sockets (default: /tmp/openshell-dev-<uid>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}
