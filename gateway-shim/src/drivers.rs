//! Start-up contact with the drivers: wait until each answers `GetCapabilities` (the
//! readiness probe gateways use), then report what it is.

use std::path::Path;
use std::time::Duration;

use proto::pb::compute::v1 as compute;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::pb::credentials::v1 as credentials;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::{ConnectConfig, ConnectError, lazy_channel, wait_for_answer};
use tonic::transport::Channel;

/// A compute driver that has answered, and what it said about itself.
#[derive(Clone, Debug)]
pub struct ComputeDriver {
    /// Client over the driver's socket.
    pub client: ComputeDriverClient<Channel>,
    /// Its capabilities.
    pub capabilities: compute::GetCapabilitiesResponse,
}

/// A credentials driver that has answered. Deployed drivers lack `GetCapabilities`,
/// so `capabilities` is `None` for them.
#[derive(Clone, Debug)]
pub struct CredentialsDriver {
    /// Client over the driver's socket.
    pub client: CredentialsDriverClient<Channel>,
    /// Its capabilities, when it has the RPC.
    pub capabilities: Option<credentials::GetCapabilitiesResponse>,
}

fn config(deadline: Duration) -> ConnectConfig {
    ConnectConfig {
        deadline,
        ..ConnectConfig::default()
    }
}

fn with_timeout<M>(message: M, timeout: Duration) -> tonic::Request<M> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Waits for the compute driver at `socket` to answer `GetCapabilities`.
///
/// # Errors
/// [`ConnectError`] naming the socket when it does not answer within `deadline`.
pub async fn connect_compute(
    socket: &Path,
    deadline: Duration,
) -> Result<ComputeDriver, ConnectError> {
    let client = ComputeDriverClient::new(lazy_channel(socket));
    let capabilities = wait_for_answer(socket, &config(deadline), false, |timeout| {
        let mut client = client.clone();
        async move {
            let request = with_timeout(compute::GetCapabilitiesRequest {}, timeout);
            client
                .get_capabilities(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await?;
    Ok(ComputeDriver {
        client,
        capabilities: capabilities.unwrap_or_default(),
    })
}

/// Waits for the credentials driver at `socket` to answer `GetCapabilities`
/// (UNIMPLEMENTED, from a deployed driver, also counts as an answer).
///
/// # Errors
/// [`ConnectError`] naming the socket when it does not answer within `deadline`.
pub async fn connect_credentials(
    socket: &Path,
    deadline: Duration,
) -> Result<CredentialsDriver, ConnectError> {
    let client = CredentialsDriverClient::new(lazy_channel(socket));
    let capabilities = wait_for_answer(socket, &config(deadline), true, |timeout| {
        let mut client = client.clone();
        async move {
            let request = with_timeout(credentials::GetCapabilitiesRequest {}, timeout);
            client
                .get_capabilities(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await?;
    Ok(CredentialsDriver {
        client,
        capabilities,
    })
}
