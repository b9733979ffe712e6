//! The tonic adapter for `openshell.credentials.v1.CredentialsDriver`.
//!
//! No credential source is built into this version: the list is truthfully empty and
//! `ResolveCredential` answers UNIMPLEMENTED, so no caller mistakes it for a working
//! driver.

use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_server::CredentialsDriver;
use tonic::{Request, Response, Status};

type Reply<T> = Result<Response<T>, Status>;

/// The CredentialsDriver service.
#[derive(Debug, Default)]
pub struct CredentialsDriverService {
    _private: (),
}

impl CredentialsDriverService {
    /// A service with no credential sources.
    pub fn new() -> Self {
        Self::default()
    }
}

#[tonic::async_trait]
impl CredentialsDriver for CredentialsDriverService {
    async fn resolve_credential(
        &self,
        _request: Request<pb::ResolveCredentialRequest>,
    ) -> Reply<pb::ResolveCredentialResponse> {
        Err(Status::unimplemented(format!(
            "ResolveCredential: credentials-driver {} has no credential source built in yet",
            env!("CARGO_PKG_VERSION")
        )))
    }

    async fn list_credentials(
        &self,
        _request: Request<pb::ListCredentialsRequest>,
    ) -> Reply<pb::ListCredentialsResponse> {
        Ok(Response::new(pb::ListCredentialsResponse::default()))
    }

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
}
