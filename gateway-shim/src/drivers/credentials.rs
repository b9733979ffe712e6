//! The credentials driver client: `ResolveCredential` and `ListCredentials` through
//! [`DriverLink`], and a short-lived cache of the list (what kind each credential is,
//! for the credential policy's token-exchange rule on the resolve path).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::uds::DirectChannel;
use proto::{Idempotency, RetryPolicy, Secret};

use super::link::{DriverError, DriverLink};

/// How long a fetched credential list answers "is it a token exchange?".
const CATALOG_TTL: Duration = Duration::from_secs(2);

/// Credential name → whether it needs a subject token (a token exchange).
pub type Catalog = HashMap<String, bool>;

/// The last fetched list and when it was fetched.
type CachedCatalog = Option<(tokio::time::Instant, Arc<Catalog>)>;

/// The credentials driver, as the gateway calls it.
#[derive(Clone, Debug)]
pub struct CredentialsClient {
    link: DriverLink,
    client: CredentialsDriverClient<DirectChannel>,
    catalog: Arc<tokio::sync::Mutex<CachedCatalog>>,
}

impl CredentialsClient {
    /// A client of the driver at `socket`.
    pub fn new(socket: &Path, policy: RetryPolicy) -> Self {
        let link = DriverLink::new("credentials driver", socket, policy);
        let client = CredentialsDriverClient::new(link.channel());
        Self {
            link,
            client,
            catalog: Arc::default(),
        }
    }

    /// The credentials the driver serves, fetched now (and cached for [`Self::catalog`]).
    ///
    /// # Errors
    /// The driver's status.
    pub async fn list(&self) -> Result<Arc<Catalog>, DriverError> {
        let mut cached = self.catalog.lock().await;
        self.fetch(&mut cached).await
    }

    /// The credential list, at most [`CATALOG_TTL`] old (one fetch at a time).
    ///
    /// # Errors
    /// The driver's status.
    pub async fn catalog(&self) -> Result<Arc<Catalog>, DriverError> {
        let mut cached = self.catalog.lock().await;
        if let Some((at, catalog)) = cached.as_ref()
            && at.elapsed() < CATALOG_TTL
        {
            return Ok(Arc::clone(catalog));
        }
        self.fetch(&mut cached).await
    }

    async fn fetch(&self, cached: &mut CachedCatalog) -> Result<Arc<Catalog>, DriverError> {
        let client = self.client.clone();
        let listed = self
            .link
            .call(
                Idempotency::Idempotent,
                || pb::ListCredentialsRequest {},
                |request| {
                    let mut client = client.clone();
                    async move { client.list_credentials(request).await }
                },
            )
            .await?;
        let catalog: Arc<Catalog> = Arc::new(
            listed
                .credentials
                .into_iter()
                .map(|info| (info.name, info.requires_subject_token))
                .collect(),
        );
        *cached = Some((tokio::time::Instant::now(), Arc::clone(&catalog)));
        Ok(catalog)
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
    ) -> Result<pb::ResolveCredentialResponse, DriverError> {
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
