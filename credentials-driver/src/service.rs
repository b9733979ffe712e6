//! The tonic adapter for `openshell.credentials.v1.CredentialsDriver`. Errors become
//! gRPC codes in exactly one place, [`status`].

use proto::Secret;
use proto::admin::Metrics;
use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_server::CredentialsDriver;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::idp::IdpError;
use crate::resolver::{ResolveRequest, Resolver, SERVED_KINDS};

type Reply<T> = Result<Response<T>, Status>;

/// The CredentialsDriver service.
#[derive(Clone, Debug)]
pub struct CredentialsDriverService {
    resolver: Resolver,
    metrics: Metrics,
}

/// The one mapping from domain errors to gRPC codes (DESIGN.md's table).
pub fn status(error: Error) -> Status {
    let message = error.to_string();
    match error {
        Error::InvalidArgument { .. } => Status::invalid_argument(message),
        Error::SubjectTokenRequired(_) => proto::reason::with_reason(
            Status::invalid_argument(message),
            proto::reason::SUBJECT_TOKEN_REQUIRED,
        ),
        Error::NotFound(_) => Status::not_found(message),
        Error::Misconfigured { .. } => Status::failed_precondition(message),
        Error::SubjectExpired(_) => Status::unauthenticated(message),
        Error::Idp { error, .. } => match error {
            IdpError::ClientRejected { .. } | IdpError::Misconfigured { .. } => {
                Status::failed_precondition(message)
            }
            IdpError::SubjectRejected { .. } => Status::unauthenticated(message),
            IdpError::AccessDenied { .. } => Status::permission_denied(message),
            IdpError::Transient { .. }
            | IdpError::Unreachable { .. }
            | IdpError::BadResponse { .. } => Status::unavailable(message),
        },
    }
}

impl CredentialsDriverService {
    /// A service over `resolver`, counting RPCs in `metrics`.
    pub fn new(resolver: Resolver, metrics: Metrics) -> Self {
        Self { resolver, metrics }
    }
}

#[tonic::async_trait]
impl CredentialsDriver for CredentialsDriverService {
    async fn resolve_credential(
        &self,
        request: Request<pb::ResolveCredentialRequest>,
    ) -> Reply<pb::ResolveCredentialResponse> {
        let r = request.into_inner();
        let domain = ResolveRequest {
            name: r.name,
            subject_token: Secret::new(r.subject_token),
            subject_token_type: r.subject_token_type,
            audience: r.audience,
            scopes: r.scopes,
        };
        let result = self.resolver.resolve(&domain).await;
        if let Err(error) = &result {
            tracing::info!(credential = %domain.name, request_id = %r.request_id, %error, "resolve refused");
        }
        let reply = result
            .map(|resolved| {
                Response::new(pb::ResolveCredentialResponse {
                    token: resolved.token.expose().to_owned(),
                    expires_at_ms: resolved.expires_at_ms,
                    token_type: resolved.token_type,
                    granted_scopes: resolved.granted_scopes,
                    issued_token_type: resolved.issued_token_type,
                    served_from: resolved.served_from.as_str().to_owned(),
                })
            })
            .map_err(status);
        self.metrics.record_rpc(
            "ResolveCredential",
            reply.as_ref().err().map_or(tonic::Code::Ok, Status::code),
        );
        reply
    }

    async fn list_credentials(
        &self,
        _request: Request<pb::ListCredentialsRequest>,
    ) -> Reply<pb::ListCredentialsResponse> {
        let credentials = self
            .resolver
            .list()
            .into_iter()
            .map(|c| pb::CredentialInfo {
                name: c.name,
                scopes: c.scopes,
                kind: c.kind.to_owned(),
                requires_subject_token: c.requires_subject_token,
            })
            .collect();
        self.metrics.record_rpc("ListCredentials", tonic::Code::Ok);
        Ok(Response::new(pb::ListCredentialsResponse { credentials }))
    }

    async fn get_capabilities(
        &self,
        _request: Request<pb::GetCapabilitiesRequest>,
    ) -> Reply<pb::GetCapabilitiesResponse> {
        self.metrics.record_rpc("GetCapabilities", tonic::Code::Ok);
        Ok(Response::new(pb::GetCapabilitiesResponse {
            driver_name: crate::DRIVER_NAME.to_owned(),
            driver_version: env!("CARGO_PKG_VERSION").to_owned(),
            supported_kinds: SERVED_KINDS.iter().map(|k| (*k).to_owned()).collect(),
            supports_token_exchange: true,
            supports_request_audience_and_scopes: true,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_subject_token_is_signalled_by_reason_not_only_by_text() {
        let refused = status(Error::SubjectTokenRequired("kc".into()));
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().starts_with("subject_token:"));
        assert_eq!(
            proto::reason::reason_of(&refused),
            Some(proto::reason::SUBJECT_TOKEN_REQUIRED)
        );
        let other = status(Error::InvalidArgument {
            field: "name",
            reason: "required".into(),
        });
        assert_eq!(proto::reason::reason_of(&other), None);
    }

    #[test]
    fn each_error_maps_to_its_table_row() {
        let rows = [
            (
                Error::InvalidArgument {
                    field: "name",
                    reason: "required".into(),
                },
                tonic::Code::InvalidArgument,
            ),
            (Error::NotFound("x".into()), tonic::Code::NotFound),
            (
                Error::Misconfigured {
                    credential: "x".into(),
                    reason: "no file".into(),
                },
                tonic::Code::FailedPrecondition,
            ),
            (
                Error::SubjectExpired("x".into()),
                tonic::Code::Unauthenticated,
            ),
            (
                Error::Idp {
                    credential: "x".into(),
                    error: IdpError::ClientRejected {
                        reason: "HTTP 401".into(),
                    },
                },
                tonic::Code::FailedPrecondition,
            ),
            (
                Error::Idp {
                    credential: "x".into(),
                    error: IdpError::Misconfigured {
                        reason: "HTTP 400".into(),
                    },
                },
                tonic::Code::FailedPrecondition,
            ),
            (
                Error::Idp {
                    credential: "x".into(),
                    error: IdpError::SubjectRejected {
                        reason: "HTTP 400".into(),
                    },
                },
                tonic::Code::Unauthenticated,
            ),
            (
                Error::Idp {
                    credential: "x".into(),
                    error: IdpError::AccessDenied {
                        reason: "HTTP 403".into(),
                    },
                },
                tonic::Code::PermissionDenied,
            ),
            (
                Error::Idp {
                    credential: "x".into(),
                    error: IdpError::Transient {
                        reason: "HTTP 503".into(),
                        retry_after: None,
                    },
                },
                tonic::Code::Unavailable,
            ),
            (
                Error::Idp {
                    credential: "x".into(),
                    error: IdpError::Unreachable {
                        reason: "timed out".into(),
                    },
                },
                tonic::Code::Unavailable,
            ),
        ];
        for (error, code) in rows {
            assert_eq!(status(error).code(), code);
        }
    }
}
