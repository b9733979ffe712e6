//! Mock drivers with fault injection, served on real Unix sockets; what the gateway's
//! contract tests use. In-memory and conformant (the harness checks them like any
//! driver), with [`Faults`] to make them misbehave on purpose.

mod compute;
mod credentials;
mod faults;
mod held;

pub use compute::MockCompute;
pub use credentials::{MockCredential, MockCredentials};
pub use faults::{Faults, parse_failure};

use proto::pb::compute::v1::compute_driver_server::{self, ComputeDriverServer};
use proto::pb::credentials::v1::credentials_driver_server::{self, CredentialsDriverServer};
use tonic::service::Routes;

/// A mock ComputeDriver served on a socket that tests can restart (closing every connection, keeping
/// the mock's state) and stop.
#[derive(Debug)]
pub struct MockServer {
    socket: proto::SocketConfig,
    compute: MockCompute,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), proto::cli::ServerError>>>,
}

impl MockServer {
    /// Serves `mock` on `socket`.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn compute(
        socket: proto::SocketConfig,
        mock: MockCompute,
    ) -> Result<Self, proto::cli::ServerError> {
        let mut server = Self {
            socket,
            compute: mock,
            stop: None,
            task: None,
        };
        server.start().await?;
        Ok(server)
    }

    async fn start(&mut self) -> Result<(), proto::cli::ServerError> {
        let bound = proto::bind(&self.socket)?;
        let (health, health_service) =
            proto::Health::new([compute_driver_server::SERVICE_NAME]).await;
        let routes = Routes::new(ComputeDriverServer::new(self.compute.clone()));
        let routes = routes.add_service(health_service);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = proto::ServeOptions {
            shutdown_grace: std::time::Duration::ZERO,
            ..Default::default()
        };
        self.task = Some(tokio::spawn(async move {
            proto::serve(bound, routes, health, options, async {
                let _ = stopped.await;
            })
            .await
            .map_err(proto::cli::ServerError::from)
        }));
        self.stop = Some(stop);
        Ok(())
    }

    /// Stops serving: every connection is closed at once and the socket removed.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Closes every connection and serves again on the same socket, with the same state.
    ///
    /// # Errors
    /// When the socket cannot be bound again.
    pub async fn restart(&mut self) -> Result<(), proto::cli::ServerError> {
        self.stop().await;
        self.start().await
    }
}

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
