//! Mock drivers with fault injection, served on real Unix sockets; what the gateway's
//! contract tests use. In-memory and conformant (the harness checks them like any
//! driver), with [`Faults`] to make them misbehave on purpose.

mod compute;
mod credentials;
mod faults;

pub use compute::MockCompute;
pub use credentials::{MockCredential, MockCredentials};
pub use faults::{Faults, parse_failure};

use proto::pb::compute::v1::compute_driver_server::{self, ComputeDriverServer};
use proto::pb::credentials::v1::credentials_driver_server::{self, CredentialsDriverServer};
use tonic::service::Routes;

/// Serves `mock` (with health) on the socket until `shutdown`.
///
/// # Errors
/// Bind or serve failures.
pub async fn serve_compute<F>(
    socket: &proto::SocketConfig,
    mock: MockCompute,
    shutdown: F,
) -> Result<(), proto::cli::ServerError>
where
    F: std::future::Future<Output = ()>,
{
    let bound = proto::bind(socket)?;
    let (health, health_service) = proto::Health::new([compute_driver_server::SERVICE_NAME]).await;
    let routes = Routes::new(ComputeDriverServer::new(mock)).add_service(health_service);
    proto::serve(
        bound,
        routes,
        health,
        proto::ServeOptions::default(),
        shutdown,
    )
    .await?;
    Ok(())
}

/// Serves `mock` (with health) on the socket until `shutdown`.
///
/// # Errors
/// Bind or serve failures.
pub async fn serve_credentials<F>(
    socket: &proto::SocketConfig,
    mock: MockCredentials,
    shutdown: F,
) -> Result<(), proto::cli::ServerError>
where
    F: std::future::Future<Output = ()>,
{
    let bound = proto::bind(socket)?;
    let (health, health_service) =
        proto::Health::new([credentials_driver_server::SERVICE_NAME]).await;
    let routes = Routes::new(CredentialsDriverServer::new(mock)).add_service(health_service);
    proto::serve(
        bound,
        routes,
        health,
        proto::ServeOptions::default(),
        shutdown,
    )
    .await?;
    Ok(())
}
