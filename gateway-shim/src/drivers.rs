//! Start-up contact with the drivers: wait until each answers `GetCapabilities` (the
//! readiness probe gateways use), then report what it is.

use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use proto::pb::compute::v1 as compute;
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::pb::credentials::v1 as credentials;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::{ConnectConfig, ConnectError, Readiness, describe_status, lazy_channel, wait_ready};
use tonic::Code;
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

/// Waits until `call` completes: its answer, or `None` when the driver answered
/// UNIMPLEMENTED and `unimplemented_is_ready`.
async fn first_answer<T, F, Fut>(
    socket: &Path,
    deadline: Duration,
    unimplemented_is_ready: bool,
    call: F,
) -> Result<Option<T>, ConnectError>
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let config = ConnectConfig {
        deadline,
        ..ConnectConfig::default()
    };
    let answer = OnceLock::new();
    wait_ready(socket, &config, || {
        let reply = call(config.probe_timeout);
        let answer = &answer;
        async move {
            match reply.await {
                Ok(value) => {
                    let _ = answer.set(value);
                    Readiness::Ready
                }
                Err(status) if unimplemented_is_ready && status.code() == Code::Unimplemented => {
                    Readiness::Ready
                }
                Err(status) => Readiness::NotReady(describe_status(&status)),
            }
        }
    })
    .await?;
    Ok(answer.into_inner())
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
    let capabilities = first_answer(socket, deadline, false, |timeout| {
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
    let capabilities = first_answer(socket, deadline, true, |timeout| {
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
