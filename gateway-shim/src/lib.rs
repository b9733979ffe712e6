//! The thin sandbox gateway.
//!
//! This version does the gateway's start-up duties over the shared transport: it
//! waits for the compute driver (and the credentials driver, when configured) to
//! answer `GetCapabilities`, reports them, and serves `grpc.health.v1` on its TCP
//! address: NOT_SERVING until the drivers have answered, SERVING after. `dev` runs the
//! whole suite on one machine. The public sandbox API arrives with the gateway issue.

mod cli;
mod dev;
mod drivers;
mod gateway;
pub mod store;

pub use cli::{Args, Command, DevArgs, GatewayArgs};
pub use dev::run_dev;
pub use drivers::{ComputeDriver, CredentialsDriver, connect_compute, connect_credentials};
pub use gateway::{Drivers, run_gateway};

/// Prefix of the environment variables of flags without a deployed name.
pub const ENV_PREFIX: &str = "GATEWAY";

/// Why the gateway stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No compute driver socket was given.
    #[error(
        "--compute-driver-socket (or OPENSHELL_COMPUTE_DRIVER_SOCKET) is required; or run `gateway-shim dev` to start the drivers too"
    )]
    MissingComputeSocket,
    /// A driver never answered.
    #[error(transparent)]
    Driver(#[from] proto::ConnectError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gateway server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// `dev` could not start or keep a driver running.
    #[error("dev: {0}")]
    Dev(String),
}

/// Runs what `args` asks for until SIGTERM or SIGINT.
///
/// # Errors
/// See [`Error`].
pub async fn run(args: Args) -> Result<(), Error> {
    match &args.command {
        Some(Command::Dev(dev)) => run_dev(dev, &args).await,
        None => {
            let listener = gateway::listen(args.gateway.listen).await?;
            run_gateway(&args.gateway, listener, proto::shutdown_signal()).await
        }
    }
}
