//! The CredentialsDriver sidecar: turns named credentials into usable tokens.
//!
//! This version serves the contract's discovery surface (health, `GetCapabilities`,
//! and `ListCredentials`, empty because no credential source is built in yet) on a
//! safely bound Unix socket. `ResolveCredential` answers UNIMPLEMENTED, saying so.

mod cli;
mod service;

pub use cli::Args;
pub use service::CredentialsDriverService;

use proto::pb::credentials::v1::credentials_driver_server::{
    CredentialsDriverServer, SERVICE_NAME,
};
use tonic::service::Routes;

/// The name this driver reports in `GetCapabilities`.
pub const DRIVER_NAME: &str = "credentials-driver";

/// Prefix of every environment variable this binary reads.
pub const ENV_PREFIX: &str = "CREDENTIALS_DRIVER";

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
    let routes = Routes::new(CredentialsDriverServer::new(CredentialsDriverService::new()))
        .add_service(health_service);
    proto::cli::serve_until(&args.socket, routes, health, shutdown).await?;
    Ok(())
}
