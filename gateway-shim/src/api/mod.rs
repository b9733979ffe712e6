//! The gateway's public API (`openshell.gateway.v1.Gateway`): a thin adapter from the
//! generated trait to one module per resource. Handlers receive the caller's
//! [`Principal`] from the auth layer; ownership decisions live in [`names`] and the
//! `visible`/`find` helpers of each module.

mod api_keys;
mod credential_access;
pub mod driver_spec;
pub mod error;
pub mod fairness;
mod inference;
pub mod limits;
pub mod names;
pub mod owner_migration;
mod provider_token;
mod providers;
mod sandbox_calls;
pub mod sandbox_saga;
mod sandboxes;
mod settings;
mod watch;

pub use watch::SandboxEvents;

use std::sync::Arc;
use std::time::Duration;

use proto::pb::gateway::v1 as pb;
use proto::pb::gateway::v1::gateway_server::Gateway as GatewayTrait;
use tonic::{Request, Response, Status};

use crate::auth::{Principal, SigningKey};
use crate::drivers::{ComputeClient, CredentialsClient, Statuses};
use crate::store::Store;
use crate::usage::Metered;

/// Everything a handler needs.
#[derive(Debug)]
pub struct Core {
    /// Records.
    pub store: Store,
    /// The compute driver.
    pub compute: ComputeClient,
    /// The credentials driver, when configured.
    pub credentials: Option<CredentialsClient>,
    /// The operator's attribute rules on objects.
    pub access_rules: crate::authz::AccessRules,
    /// Which credentials users may reference.
    pub credential_policy: crate::authz::PolicyFile,
    /// Input limits.
    pub limits: limits::Limits,
    /// Driver-reported statuses and the change feed.
    pub statuses: Arc<Statuses>,
    /// Signs sandbox tokens.
    pub signer: SigningKey,
    /// Lifetime of sandbox tokens.
    pub sandbox_token_ttl: Duration,
    /// How sandboxes reach the gateway (`OPENSHELL_GATEWAY_ENDPOINT` in them).
    pub sandbox_endpoint: String,
    /// RPC counters for `/metrics`.
    pub metrics: proto::admin::Metrics,
    /// The gateway's own headers on inference routes.
    pub fairness: fairness::Fairness,
    /// Records usage.
    pub meter: crate::usage::Meter,
    /// Tenants' own keys for platform providers, when the operator allows any.
    pub tenant_keys: Option<Arc<crate::control_plane::TenantKeys>>,
    /// Cancelled when the gateway shuts down: open watch streams end.
    pub closing: tokio_util::sync::CancellationToken,
}

impl Core {
    /// The store partition of `who`'s tenant: every read and write a handler makes for
    /// a caller goes through it.
    pub fn records(&self, who: &Principal) -> Store {
        self.store.in_tenant(&who.tenant)
    }

    /// The store partition `record` was read from.
    pub fn records_of(&self, record: &crate::store::Record) -> Store {
        self.store.in_tenant(&record.tenant)
    }

    /// The credentials driver, or FAILED_PRECONDITION saying none is configured.
    ///
    /// # Errors
    /// FAILED_PRECONDITION.
    pub fn credentials(&self) -> Result<&CredentialsClient, error::ApiError> {
        self.credentials.as_ref().ok_or_else(|| {
            error::ApiError::precondition(
                "no credentials driver is configured (--credentials-driver-socket): providers cannot resolve credentials",
            )
        })
    }
}

/// The generated service's implementation.
#[derive(Clone, Debug)]
pub struct GatewayApi {
    core: Arc<Core>,
}

impl GatewayApi {
    /// The API over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Counts a finished call by method and code.
    fn observe<T>(&self, method: &'static str, reply: Reply<T>) -> Reply<T> {
        let code = reply
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        self.core.metrics.record_rpc(method, code);
        reply
    }

    /// Starts metering `method` for the request's caller (usage; see
    /// [`crate::usage`]). Dropped unfinished, it records the call as cancelled.
    fn meter<T>(&self, request: &Request<T>, method: &'static str) -> Option<Metered> {
        request
            .extensions()
            .get::<Principal>()
            .map(|who| self.core.meter.begin(who, method))
    }

    /// [`Self::observe`], and the metered call recorded with its code.
    fn observe_metered<T>(
        &self,
        method: &'static str,
        metered: Option<Metered>,
        reply: Reply<T>,
    ) -> Reply<T> {
        let reply = self.observe(method, reply);
        if let Some(metered) = metered {
            metered.finish(
                reply
                    .as_ref()
                    .map_or_else(Status::code, |_| tonic::Code::Ok),
            );
        }
        reply
    }
}

fn about_sandbox(metered: &mut Option<Metered>, id: &str) {
    if let Some(metered) = metered {
        metered.sandbox(id);
    }
}

fn from_credential(
    metered: &mut Option<Metered>,
    source: impl Into<Option<provider_token::CredentialSource>>,
) {
    if let (Some(metered), Some(source)) = (metered, source.into()) {
        metered.credential(source.as_str());
    }
}

/// The caller, as the auth layer put it on the request.
fn caller<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("this call needs `authorization: Bearer <token>`"))
}

/// When the caller stops waiting (its `grpc-timeout`), if it said.
fn deadline_of<T>(request: &Request<T>) -> Option<tokio::time::Instant> {
    proto::deadline::grpc_timeout(request.metadata())
        .map(|timeout| tokio::time::Instant::now() + timeout)
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl GatewayTrait for GatewayApi {
    async fn create_sandbox(
        &self,
        request: Request<pb::CreateSandboxRequest>,
    ) -> Reply<pb::Sandbox> {
        let mut metered = self.meter(&request, "CreateSandbox");
        let meter = &mut metered;
        let reply = async move {
            let who = caller(&request)?;
            let deadline = deadline_of(&request);
            let sandbox =
                sandboxes::create(&self.core, &who, request.into_inner(), deadline).await?;
            about_sandbox(meter, &sandbox.id);
            Ok(Response::new(sandbox))
        }
        .await;
        self.observe_metered("CreateSandbox", metered, reply)
    }

    async fn get_sandbox(&self, request: Request<pb::SandboxRef>) -> Reply<pb::Sandbox> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                sandboxes::get(&self.core, &who, &request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("GetSandbox", reply)
    }

    async fn list_sandboxes(
        &self,
        request: Request<pb::ListSandboxesRequest>,
    ) -> Reply<pb::ListSandboxesResponse> {
        let reply = async move {
            let who = caller(&request)?;
            let sandboxes = sandboxes::list(&self.core, &who).await?;
            Ok(Response::new(pb::ListSandboxesResponse { sandboxes }))
        }
        .await;
        self.observe("ListSandboxes", reply)
    }

    async fn stop_sandbox(&self, request: Request<pb::SandboxRef>) -> Reply<pb::Sandbox> {
        let mut metered = self.meter(&request, "StopSandbox");
        let meter = &mut metered;
        let reply = async move {
            let who = caller(&request)?;
            let deadline = deadline_of(&request);
            let sandbox =
                sandboxes::stop(&self.core, &who, &request.into_inner(), deadline).await?;
            about_sandbox(meter, &sandbox.id);
            Ok(Response::new(sandbox))
        }
        .await;
        self.observe_metered("StopSandbox", metered, reply)
    }

    async fn start_sandbox(&self, request: Request<pb::SandboxRef>) -> Reply<pb::Sandbox> {
        let mut metered = self.meter(&request, "StartSandbox");
        let meter = &mut metered;
        let reply = async move {
            let who = caller(&request)?;
            let deadline = deadline_of(&request);
            let sandbox =
                sandboxes::start(&self.core, &who, &request.into_inner(), deadline).await?;
            about_sandbox(meter, &sandbox.id);
            Ok(Response::new(sandbox))
        }
        .await;
        self.observe_metered("StartSandbox", metered, reply)
    }

    async fn delete_sandbox(
        &self,
        request: Request<pb::SandboxRef>,
    ) -> Reply<pb::DeleteSandboxResponse> {
        let mut metered = self.meter(&request, "DeleteSandbox");
        let meter = &mut metered;
        let reply = async move {
            let who = caller(&request)?;
            let reference = request.into_inner();
            let deleted = sandboxes::delete(&self.core, &who, &reference).await?;
            let shown = if reference.id.is_empty() {
                &reference.name
            } else {
                &reference.id
            };
            about_sandbox(meter, shown);
            Ok(Response::new(pb::DeleteSandboxResponse { deleted }))
        }
        .await;
        self.observe_metered("DeleteSandbox", metered, reply)
    }

    type ReadSandboxLogsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::SandboxLogChunk, Status>> + Send>,
    >;

    async fn read_sandbox_logs(
        &self,
        request: Request<pb::ReadSandboxLogsRequest>,
    ) -> Reply<Self::ReadSandboxLogsStream> {
        use proto::pb::compute::v1::LogStream;
        use tokio_stream::StreamExt as _;
        let reply = async move {
            let who = caller(&request)?;
            let chunks = sandboxes::logs(&self.core, &who, request.into_inner()).await?;
            let chunks = chunks.map(|item| {
                item.map(|chunk| pb::SandboxLogChunk {
                    stream: match chunk.stream() {
                        LogStream::Stderr => "stderr",
                        _ => "stdout",
                    }
                    .into(),
                    data: chunk.data,
                })
                .map_err(|status| {
                    tracing::warn!(error = %proto::describe_status(&status), "sandbox logs: the driver's stream failed");
                    Status::unavailable("the compute driver's log stream broke off; read again")
                })
            });
            let chunks: Self::ReadSandboxLogsStream = Box::pin(chunks);
            Ok(Response::new(chunks))
        }
        .await;
        self.observe("ReadSandboxLogs", reply)
    }

    type WatchSandboxesStream = watch::SandboxEvents;

    async fn watch_sandboxes(
        &self,
        request: Request<pb::WatchSandboxesRequest>,
    ) -> Reply<Self::WatchSandboxesStream> {
        let reply = async move {
            let who = caller(&request)?;
            let deadline = proto::deadline::grpc_timeout(request.metadata());
            Ok(Response::new(watch::start(
                Arc::clone(&self.core),
                who,
                deadline,
            )))
        }
        .await;
        self.observe("WatchSandboxes", reply)
    }

    async fn create_provider(&self, request: Request<pb::Provider>) -> Reply<pb::Provider> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                providers::create(&self.core, &who, request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("CreateProvider", reply)
    }

    async fn get_provider(&self, request: Request<pb::ProviderRef>) -> Reply<pb::Provider> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                providers::get(&self.core, &who, &request.into_inner().name).await?,
            ))
        }
        .await;
        self.observe("GetProvider", reply)
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Reply<pb::ListProvidersResponse> {
        let reply = async move {
            let who = caller(&request)?;
            let providers = providers::list(&self.core, &who).await?;
            Ok(Response::new(pb::ListProvidersResponse { providers }))
        }
        .await;
        self.observe("ListProviders", reply)
    }

    async fn update_provider(&self, request: Request<pb::Provider>) -> Reply<pb::Provider> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                providers::update(&self.core, &who, request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("UpdateProvider", reply)
    }

    async fn delete_provider(
        &self,
        request: Request<pb::ProviderRef>,
    ) -> Reply<pb::DeleteProviderResponse> {
        let reply = async move {
            let who = caller(&request)?;
            providers::delete(&self.core, &who, &request.into_inner().name).await?;
            Ok(Response::new(pb::DeleteProviderResponse {}))
        }
        .await;
        self.observe("DeleteProvider", reply)
    }

    async fn attach_provider(&self, request: Request<pb::AttachmentRequest>) -> Reply<pb::Sandbox> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                sandboxes::attach(&self.core, &who, request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("AttachProvider", reply)
    }

    async fn detach_provider(&self, request: Request<pb::AttachmentRequest>) -> Reply<pb::Sandbox> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                sandboxes::detach(&self.core, &who, request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("DetachProvider", reply)
    }

    async fn set_inference_route(
        &self,
        request: Request<pb::SetInferenceRouteRequest>,
    ) -> Reply<pb::InferenceRoute> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                inference::set(&self.core, &who, request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("SetInferenceRoute", reply)
    }

    async fn get_inference_route(
        &self,
        request: Request<pb::GetInferenceRouteRequest>,
    ) -> Reply<pb::InferenceRoute> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                inference::get(&self.core, &who, request.get_ref()).await?,
            ))
        }
        .await;
        self.observe("GetInferenceRoute", reply)
    }

    async fn delete_inference_route(
        &self,
        request: Request<pb::DeleteInferenceRouteRequest>,
    ) -> Reply<pb::DeleteInferenceRouteResponse> {
        let reply = async move {
            let who = caller(&request)?;
            inference::delete(&self.core, &who, request.get_ref()).await?;
            Ok(Response::new(pb::DeleteInferenceRouteResponse {}))
        }
        .await;
        self.observe("DeleteInferenceRoute", reply)
    }

    async fn get_inference_bundle(
        &self,
        request: Request<pb::GetInferenceBundleRequest>,
    ) -> Reply<pb::InferenceBundle> {
        let mut metered = self.meter(&request, "GetInferenceBundle");
        let meter = &mut metered;
        let reply = async move {
            let who = caller(&request)?;
            let (bundle, source) = sandbox_calls::bundle(&self.core, &who).await?;
            from_credential(meter, source);
            Ok(Response::new(bundle))
        }
        .await;
        self.observe_metered("GetInferenceBundle", metered, reply)
    }

    async fn resolve_provider_credential(
        &self,
        request: Request<pb::ResolveProviderCredentialRequest>,
    ) -> Reply<pb::ResolveProviderCredentialResponse> {
        let mut metered = self.meter(&request, "ResolveProviderCredential");
        let meter = &mut metered;
        let reply = async move {
            let who = caller(&request)?;
            let (resolved, source) =
                sandbox_calls::resolve(&self.core, &who, &request.into_inner().provider).await?;
            from_credential(meter, source);
            Ok(Response::new(resolved))
        }
        .await;
        self.observe_metered("ResolveProviderCredential", metered, reply)
    }

    async fn get_sandbox_settings(
        &self,
        request: Request<pb::GetSandboxSettingsRequest>,
    ) -> Reply<pb::SandboxSettings> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                settings::get(&self.core, &who, request.get_ref()).await?,
            ))
        }
        .await;
        self.observe("GetSandboxSettings", reply)
    }

    async fn update_sandbox_settings(
        &self,
        request: Request<pb::UpdateSandboxSettingsRequest>,
    ) -> Reply<pb::SandboxSettings> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                settings::update(&self.core, &who, request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("UpdateSandboxSettings", reply)
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Reply<pb::CreatedApiKey> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                api_keys::create(&self.core, &who, request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("CreateApiKey", reply)
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Reply<pb::ListApiKeysResponse> {
        let reply = async move {
            let who = caller(&request)?;
            let keys = api_keys::list(&self.core, &who).await?;
            Ok(Response::new(pb::ListApiKeysResponse { keys }))
        }
        .await;
        self.observe("ListApiKeys", reply)
    }

    async fn revoke_api_key(&self, request: Request<pb::ApiKeyRef>) -> Reply<pb::ApiKey> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                api_keys::revoke(&self.core, &who, request.get_ref()).await?,
            ))
        }
        .await;
        self.observe("RevokeApiKey", reply)
    }

    async fn set_caller_blocked(
        &self,
        request: Request<pb::SetCallerBlockedRequest>,
    ) -> Reply<pb::SetCallerBlockedResponse> {
        let reply = async move {
            let who = caller(&request)?;
            api_keys::set_blocked(&self.core, &who, request.into_inner()).await?;
            Ok(Response::new(pb::SetCallerBlockedResponse {}))
        }
        .await;
        self.observe("SetCallerBlocked", reply)
    }

    async fn get_own_sandbox_settings(
        &self,
        request: Request<pb::GetOwnSandboxSettingsRequest>,
    ) -> Reply<pb::SandboxSettings> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(settings::get_own(&self.core, &who).await?))
        }
        .await;
        self.observe("GetOwnSandboxSettings", reply)
    }

    async fn report_policy_status(
        &self,
        request: Request<pb::ReportPolicyStatusRequest>,
    ) -> Reply<pb::SandboxSettings> {
        let reply = async move {
            let who = caller(&request)?;
            Ok(Response::new(
                settings::report(&self.core, &who, request.into_inner()).await?,
            ))
        }
        .await;
        self.observe("ReportPolicyStatus", reply)
    }
}
