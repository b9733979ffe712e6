//! The credentials driver client: `ResolveCredential` through [`DriverLink`].

use std::path::Path;

use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::{Idempotency, RetryPolicy, Secret};
use tonic::Status;
use tonic::transport::Channel;

use super::link::DriverLink;

/// The credentials driver, as the gateway calls it.
#[derive(Clone, Debug)]
pub struct CredentialsClient {
    link: DriverLink,
    client: CredentialsDriverClient<Channel>,
}

impl CredentialsClient {
    /// A client of the driver at `socket`.
    pub fn new(socket: &Path, policy: RetryPolicy) -> Self {
        let link = DriverLink::new("credentials driver", socket, policy);
        let client = CredentialsDriverClient::new(link.channel());
        Self { link, client }
    }

    /// The connection state.
    pub fn link(&self) -> &DriverLink {
        &self.link
    }

    /// Resolves credential `name`, with `subject_token` for token exchanges.
    ///
    /// # Errors
    /// The driver's status.
    pub async fn resolve(
        &self,
        name: &str,
        subject_token: Option<&Secret>,
    ) -> Result<pb::ResolveCredentialResponse, Status> {
        let client = self.client.clone();
        let request = || pb::ResolveCredentialRequest {
            name: name.to_owned(),
            subject_token: subject_token
                .map(|t| t.expose().to_owned())
                .unwrap_or_default(),
            ..Default::default()
        };
        self.link
            .call(Idempotency::Idempotent, request, |request| {
                let mut client = client.clone();
                async move { client.resolve_credential(request).await }
            })
            .await
    }
}
