//! The ComputeDriver sidecar: turns "run this sandbox" into platform resources.
//!
//! This version serves the contract's discovery surface (health and
//! `GetCapabilities`) on a safely bound Unix socket. The sandbox RPCs answer
//! UNIMPLEMENTED, saying so, until a backend is built in.

mod cli;
mod service;

pub use cli::Args;
pub use service::ComputeDriverService;

use proto::pb::compute::v1::compute_driver_server::{ComputeDriverServer, SERVICE_NAME};
use tonic::service::Routes;

/// The name this driver reports in `GetCapabilities`.
pub const DRIVER_NAME: &str = "compute-driver";

/// Prefix of every environment variable this binary reads.
pub const ENV_PREFIX: &str = "COMPUTE_DRIVER";

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not start or failed.
    #[error(transparent)]
    Server(#[from] proto::cli::ServerError),
}

/// Serves the driver on the configured socket until SIGTERM or SIGINT.
///
/// # Errors
/// [`Error::Server`] when the socket cannot be bound or serving fails.
pub async fn run(args: Args) -> Result<(), Error> {
    run_until(args, proto::shutdown_signal()).await
}

/// Serves the driver on the configured socket until `shutdown` completes.
///
/// # Errors
/// [`Error::Server`] when the socket cannot be bound or serving fails.
pub async fn run_until<F>(args: Args, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()>,
{
    let (health, health_service) = proto::Health::new([SERVICE_NAME]).await;
    let routes = Routes::new(ComputeDriverServer::new(ComputeDriverService::new()))
        .add_service(health_service);
    proto::cli::serve_until(&args.socket, routes, health, shutdown).await?;
    Ok(())
}
