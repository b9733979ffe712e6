//! The tonic adapter for upstream OpenShell's `openshell.credentials.v1.CredentialDriver`
//! (singular), served on the same socket as the deployed `CredentialsDriver`: the NVIDIA
//! gateway stores provider values here and resolves them by handle in batches.
//!
//! Two kinds of handle resolve:
//! - `store-<hex>`: a value the gateway stored ([`crate::store`], under `--store-dir`);
//! - `config:<name>`: a credential of the config file, resolved to a fresh token with
//!   its expiry, as `ResolveCredential` would (listed by `ListCredentials`).
//!
//! The store is opened at its first use, so a driver that only serves the deployed
//! contract never needs a writable `--store-dir`. Store operations run on the blocking
//! pool to completion even when the caller gives up (a write is whole or absent).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use proto::Secret;
use proto::admin::Metrics;
use proto::pb::upstream::credentials::v1 as pb;
use proto::pb::upstream::credentials::v1::credential_driver_server::CredentialDriver;
use proto::pb::upstream::datamodel::v1::CredentialHandle;
use tonic::{Request, Response, Status};

use crate::resolver::{ResolveRequest, Resolver};
use crate::store::{Owner, Store, StoreError};

type Reply<T> = Result<Response<T>, Status>;

/// The prefix of handles that name a configured credential.
pub const CONFIG_PREFIX: &str = "config:";

/// What `GetCapabilities` reports as the backend.
pub const BACKEND_KIND: &str = "file";

/// The `CredentialDriver` service.
#[derive(Clone, Debug)]
pub struct CredentialStoreService {
    resolver: Resolver,
    store_dir: PathBuf,
    store: Arc<tokio::sync::OnceCell<Arc<Store>>>,
    metrics: Metrics,
}

/// Store errors as gRPC statuses (the one place).
pub fn store_status(error: StoreError) -> Status {
    let message = error.to_string();
    match error {
        StoreError::NotFound(_) => Status::not_found(message),
        StoreError::Directory(_) => Status::failed_precondition(message),
        StoreError::Io { .. } => Status::unavailable(message),
    }
}

fn invalid(field: &str, reason: &str) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

fn handle_of(handle: Option<&CredentialHandle>) -> &str {
    handle.map_or("", |h| h.handle.as_str())
}

impl CredentialStoreService {
    /// A service resolving configured credentials with `resolver` and storing values
    /// under `store_dir`, counting RPCs in `metrics`.
    pub fn new(resolver: Resolver, store_dir: PathBuf, metrics: Metrics) -> Self {
        Self {
            resolver,
            store_dir,
            store: Arc::new(tokio::sync::OnceCell::new()),
            metrics,
        }
    }

    /// Runs `op` on the store, opened on first use, on the blocking pool.
    async fn with_store<T, F>(&self, op: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let dir = self.store_dir.clone();
        let store = self
            .store
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || Store::open(&dir).map(Arc::new))
                    .await
                    .map_err(|e| Status::internal(format!("opening the store: {e}")))?
                    .map_err(store_status)
            })
            .await?;
        let store = Arc::clone(store);
        tokio::task::spawn_blocking(move || op(&store))
            .await
            .map_err(|e| Status::internal(format!("store operation: {e}")))?
            .map_err(store_status)
    }

    fn record<T>(&self, rpc: &'static str, reply: Reply<T>) -> Reply<T> {
        self.metrics.record_rpc(
            rpc,
            reply.as_ref().err().map_or(tonic::Code::Ok, Status::code),
        );
        reply
    }

    async fn resolve_batch(
        &self,
        requests: Vec<pb::ResolveCredentialRequest>,
    ) -> Result<Vec<pb::ResolvedCredential>, Status> {
        let mut seen = HashSet::new();
        for (i, request) in requests.iter().enumerate() {
            if request.request_id.is_empty() {
                return Err(invalid(&format!("credentials[{i}].request_id"), "required"));
            }
            if !seen.insert(request.request_id.as_str()) {
                return Err(invalid(
                    &format!("credentials[{i}].request_id"),
                    &format!("{:?} appears twice in the batch", request.request_id),
                ));
            }
            if handle_of(request.handle.as_ref()).is_empty() {
                return Err(invalid(&format!("credentials[{i}].handle"), "required"));
            }
        }
        let answers = requests.into_iter().map(|request| async move {
            let handle = handle_of(request.handle.as_ref()).to_owned();
            let (value, expires_at_ms) = match handle.strip_prefix(CONFIG_PREFIX) {
                Some(name) => {
                    let resolved = self
                        .resolver
                        .resolve(&ResolveRequest {
                            name: name.to_owned(),
                            ..ResolveRequest::default()
                        })
                        .await
                        .map_err(|e| {
                            let status = crate::service::status(e);
                            Status::new(
                                status.code(),
                                format!("request {}: {}", request.request_id, status.message()),
                            )
                        })?;
                    (resolved.token, resolved.expires_at_ms)
                }
                None => {
                    let owner = Owner {
                        provider_name: request.provider_name.clone(),
                        credential_key: request.credential_key.clone(),
                        workspace: request.workspace.clone(),
                        provider_id: request.provider_id.clone(),
                    };
                    let stored = self
                        .with_store(move |store| store.get(&handle, &owner))
                        .await
                        .map_err(|status| {
                            Status::new(
                                status.code(),
                                format!("request {}: {}", request.request_id, status.message()),
                            )
                        })?;
                    (stored.value, 0)
                }
            };
            Ok::<_, Status>(pb::ResolvedCredential {
                request_id: request.request_id,
                value: value.expose().to_owned(),
                expires_at_ms,
            })
        });
        futures_util::future::try_join_all(answers).await
    }
}

#[tonic::async_trait]
impl CredentialDriver for CredentialStoreService {
    async fn get_capabilities(
        &self,
        _request: Request<pb::GetCredentialDriverCapabilitiesRequest>,
    ) -> Reply<pb::GetCredentialDriverCapabilitiesResponse> {
        self.record(
            "CredentialDriver/GetCapabilities",
            Ok(Response::new(pb::GetCredentialDriverCapabilitiesResponse {
                driver_name: crate::DRIVER_NAME.to_owned(),
                driver_version: env!("CARGO_PKG_VERSION").to_owned(),
                backend_kind: BACKEND_KIND.to_owned(),
                supports_list: true,
                supports_expires_at: true,
            })),
        )
    }

    async fn store_credential(
        &self,
        request: Request<pb::StoreCredentialRequest>,
    ) -> Reply<pb::StoreCredentialResponse> {
        let r = request.into_inner();
        let reply = async {
            if r.credential_key.is_empty() {
                return Err(invalid("credential_key", "required"));
            }
            let existing = handle_of(r.existing_handle.as_ref()).to_owned();
            if existing.starts_with(CONFIG_PREFIX) {
                return Err(Status::failed_precondition(
                    "existing_handle: names a configured credential, which only the config file changes",
                ));
            }
            let owner = Owner {
                provider_name: r.provider_name,
                credential_key: r.credential_key,
                workspace: r.workspace,
                provider_id: r.provider_id,
            };
            let object_id = r.object_id;
            let value = Secret::new(r.value);
            let metadata = metadata(&owner);
            let handle = self
                .with_store(move |store| {
                    store.put(&owner, &object_id, &value, Some(existing.as_str()))
                })
                .await?;
            Ok(Response::new(pb::StoreCredentialResponse {
                handle: Some(CredentialHandle {
                    driver: crate::DRIVER_NAME.to_owned(),
                    handle,
                    metadata,
                }),
            }))
        }
        .await;
        self.record("CredentialDriver/StoreCredential", reply)
    }

    async fn delete_credential(
        &self,
        request: Request<pb::DeleteCredentialRequest>,
    ) -> Reply<pb::DeleteCredentialResponse> {
        let r = request.into_inner();
        let reply = async {
            let handle = handle_of(r.handle.as_ref()).to_owned();
            if handle.is_empty() {
                return Err(invalid("handle", "required"));
            }
            if handle.starts_with(CONFIG_PREFIX) {
                return Err(Status::failed_precondition(
                    "handle: names a configured credential: remove it from the config file",
                ));
            }
            let owner = Owner {
                provider_name: r.provider_name,
                credential_key: r.credential_key,
                workspace: r.workspace,
                provider_id: r.provider_id,
            };
            self.with_store(move |store| store.delete(&handle, &owner))
                .await?;
            Ok(Response::new(pb::DeleteCredentialResponse {}))
        }
        .await;
        self.record("CredentialDriver/DeleteCredential", reply)
    }

    async fn resolve_credentials(
        &self,
        request: Request<pb::ResolveCredentialsRequest>,
    ) -> Reply<pb::ResolveCredentialsResponse> {
        let requests = request.into_inner().credentials;
        let reply = self
            .resolve_batch(requests)
            .await
            .map(|credentials| Response::new(pb::ResolveCredentialsResponse { credentials }));
        if let Err(status) = &reply {
            tracing::info!(code = ?status.code(), message = status.message(), "batch resolve refused");
        }
        self.record("CredentialDriver/ResolveCredentials", reply)
    }

    async fn list_credentials(
        &self,
        _request: Request<pb::ListCredentialsRequest>,
    ) -> Reply<pb::ListCredentialsResponse> {
        let configured = self
            .resolver
            .list()
            .into_iter()
            .map(|c| pb::ListedCredential {
                handle: format!("{CONFIG_PREFIX}{}", c.name),
                keys: vec![c.name],
                metadata: [
                    ("kind".to_owned(), c.kind.to_owned()),
                    ("source".to_owned(), "config".to_owned()),
                ]
                .into(),
            });
        let reply = self.with_store(Store::list).await.map(|stored| {
            let stored = stored
                .into_iter()
                .map(|(handle, owner)| pb::ListedCredential {
                    handle,
                    keys: vec![owner.credential_key.clone()],
                    metadata: metadata(&owner),
                });
            let credentials = configured.chain(stored).collect();
            Response::new(pb::ListCredentialsResponse { credentials })
        });
        self.record("CredentialDriver/ListCredentials", reply)
    }
}

/// The non-secret facts a handle carries.
fn metadata(owner: &Owner) -> std::collections::HashMap<String, String> {
    [
        ("provider", owner.provider_name.as_str()),
        ("credential_key", owner.credential_key.as_str()),
        ("workspace", owner.workspace.as_str()),
        ("source", "store"),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
