//! The gateway server: health on TCP, drivers contacted at start-up.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::drivers::{ComputeDriver, CredentialsDriver, connect_compute, connect_credentials};
use crate::{Error, GatewayArgs};

/// The drivers the gateway reached.
#[derive(Clone, Debug)]
pub struct Drivers {
    /// The compute driver.
    pub compute: ComputeDriver,
    /// The credentials driver, when configured.
    pub credentials: Option<CredentialsDriver>,
}

/// Binds the gateway's TCP address.
///
/// # Errors
/// [`Error::Listen`] naming the address.
pub(crate) async fn listen(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

/// Serves the gateway on `listener` until `shutdown` completes.
///
/// Health is NOT_SERVING until every configured driver has answered, then SERVING;
/// it turns NOT_SERVING again when shutdown starts.
///
/// # Errors
/// [`Error::MissingComputeSocket`], [`Error::Driver`] when a driver never answers,
/// [`Error::Serve`] when the server fails.
pub async fn run_gateway<F>(
    args: &GatewayArgs,
    listener: TcpListener,
    shutdown: F,
) -> Result<(), Error>
where
    F: Future<Output = ()>,
{
    let compute_socket = args
        .compute_driver_socket
        .clone()
        .ok_or(Error::MissingComputeSocket)?;
    let (health, health_service) = proto::Health::new(Vec::<String>::new()).await;
    let local = listener.local_addr().ok();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(health_service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stop_rx.await;
            }),
    );
    tracing::info!(listen = ?local, "gateway listening; health NOT_SERVING until the drivers answer");

    tokio::pin!(shutdown);
    let drivers = tokio::select! {
        drivers = contact_drivers(args, &compute_socket) => Some(drivers?),
        () = &mut shutdown => None,
    };
    if drivers.is_some() {
        health.set_serving().await;
        tracing::info!("drivers answered; health SERVING");
        shutdown.await;
    }
    health.set_not_serving().await;
    let _ = stop_tx.send(());
    match server.await {
        Ok(result) => result?,
        Err(join) => tracing::error!(%join, "gateway server task failed"),
    }
    tracing::info!("gateway stopped");
    Ok(())
}

async fn contact_drivers(
    args: &GatewayArgs,
    compute_socket: &std::path::Path,
) -> Result<Drivers, Error> {
    let deadline = args.driver_connect_timeout;
    let compute = connect_compute(compute_socket, deadline).await?;
    let caps = &compute.capabilities;
    tracing::info!(
        socket = %compute_socket.display(),
        driver = %caps.driver_name,
        version = %caps.driver_version,
        default_image = %caps.default_image,
        "compute driver answered"
    );
    let credentials = match &args.credentials_driver_socket {
        Some(socket) => {
            let driver = connect_credentials(socket, deadline).await?;
            match &driver.capabilities {
                Some(caps) => tracing::info!(
                    socket = %socket.display(),
                    driver = %caps.driver_name,
                    version = %caps.driver_version,
                    kinds = ?caps.supported_kinds,
                    "credentials driver answered"
                ),
                None => tracing::info!(
                    socket = %socket.display(),
                    "credentials driver answered (no GetCapabilities: a deployed-contract driver)"
                ),
            }
            Some(driver)
        }
        None => {
            tracing::warn!("no credentials driver configured: credential lookups will fail");
            None
        }
    };
    Ok(Drivers {
        compute,
        credentials,
    })
}
