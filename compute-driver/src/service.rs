//! The tonic adapter for `openshell.compute.v1.ComputeDriver`.
//!
//! Only the discovery surface is real in this version; every sandbox RPC answers
//! UNIMPLEMENTED with a message saying no backend is built in, so a gateway never
//! mistakes this driver for one that runs sandboxes.

use std::pin::Pin;

use proto::pb::compute::v1 as pb;
use proto::pb::compute::v1::compute_driver_server::ComputeDriver;
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status};

type Reply<T> = Result<Response<T>, Status>;

/// The ComputeDriver service.
#[derive(Debug, Default)]
pub struct ComputeDriverService {
    _private: (),
}

impl ComputeDriverService {
    /// A service with no backend.
    pub fn new() -> Self {
        Self::default()
    }
}

fn no_backend(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc}: compute-driver {} has no sandbox backend built in yet",
        env!("CARGO_PKG_VERSION")
    ))
}

#[tonic::async_trait]
impl ComputeDriver for ComputeDriverService {
    async fn get_capabilities(
        &self,
        _request: Request<pb::GetCapabilitiesRequest>,
    ) -> Reply<pb::GetCapabilitiesResponse> {
        Ok(Response::new(pb::GetCapabilitiesResponse {
            driver_name: crate::DRIVER_NAME.to_owned(),
            driver_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        }))
    }

    async fn authenticate_sandbox(
        &self,
        _request: Request<pb::AuthenticateSandboxRequest>,
    ) -> Reply<pb::AuthenticateSandboxResponse> {
        Err(no_backend("AuthenticateSandbox"))
    }

    async fn get_gateway_listener_requirements(
        &self,
        _request: Request<pb::GetGatewayListenerRequirementsRequest>,
    ) -> Reply<pb::GetGatewayListenerRequirementsResponse> {
        Ok(Response::new(
            pb::GetGatewayListenerRequirementsResponse::default(),
        ))
    }

    async fn validate_sandbox_create(
        &self,
        _request: Request<pb::ValidateSandboxCreateRequest>,
    ) -> Reply<pb::ValidateSandboxCreateResponse> {
        Err(no_backend("ValidateSandboxCreate"))
    }

    async fn get_sandbox(
        &self,
        _request: Request<pb::GetSandboxRequest>,
    ) -> Reply<pb::GetSandboxResponse> {
        Err(no_backend("GetSandbox"))
    }

    async fn list_sandboxes(
        &self,
        _request: Request<pb::ListSandboxesRequest>,
    ) -> Reply<pb::ListSandboxesResponse> {
        Err(no_backend("ListSandboxes"))
    }

    async fn create_sandbox(
        &self,
        _request: Request<pb::CreateSandboxRequest>,
    ) -> Reply<pb::CreateSandboxResponse> {
        Err(no_backend("CreateSandbox"))
    }

    async fn stop_sandbox(
        &self,
        _request: Request<pb::StopSandboxRequest>,
    ) -> Reply<pb::StopSandboxResponse> {
        Err(no_backend("StopSandbox"))
    }

    async fn start_sandbox(
        &self,
        _request: Request<pb::StartSandboxRequest>,
    ) -> Reply<pb::StartSandboxResponse> {
        Err(no_backend("StartSandbox"))
    }

    async fn delete_sandbox(
        &self,
        _request: Request<pb::DeleteSandboxRequest>,
    ) -> Reply<pb::DeleteSandboxResponse> {
        Err(no_backend("DeleteSandbox"))
    }

    type WatchSandboxesStream =
        Pin<Box<dyn Stream<Item = Result<pb::WatchSandboxesEvent, Status>> + Send + 'static>>;

    async fn watch_sandboxes(
        &self,
        _request: Request<pb::WatchSandboxesRequest>,
    ) -> Reply<Self::WatchSandboxesStream> {
        Err(no_backend("WatchSandboxes"))
    }

    async fn ensure_workspace(
        &self,
        _request: Request<pb::EnsureWorkspaceRequest>,
    ) -> Reply<pb::EnsureWorkspaceResponse> {
        Err(no_backend("EnsureWorkspace"))
    }

    async fn delete_workspace(
        &self,
        _request: Request<pb::DeleteWorkspaceRequest>,
    ) -> Reply<pb::DeleteWorkspaceResponse> {
        Err(no_backend("DeleteWorkspace"))
    }
}
