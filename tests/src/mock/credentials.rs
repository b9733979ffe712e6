//! An in-memory, conformant CredentialsDriver with programmable faults. Exchange
//! credentials accept subject tokens starting with `valid-`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_server::CredentialsDriver;
use tonic::{Request, Response, Status};

use super::Faults;

/// One mock credential.
#[derive(Clone, Debug)]
pub struct MockCredential {
    /// The token it resolves to (exchanges append the subject).
    pub token: String,
    /// Listed scopes.
    pub scopes: Vec<String>,
    /// Whether it is a token exchange.
    pub exchange: bool,
}

/// The mock CredentialsDriver.
#[derive(Clone, Debug)]
pub struct MockCredentials {
    credentials: Arc<BTreeMap<String, MockCredential>>,
    faults: Faults,
    expires_at_ms: i64,
}

impl MockCredentials {
    /// A mock serving `credentials`, using `faults`.
    pub fn new(credentials: BTreeMap<String, MockCredential>, faults: Faults) -> Self {
        let expires = SystemTime::now() + Duration::from_secs(3600);
        let expires_at_ms = expires
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
        Self {
            credentials: Arc::new(credentials),
            faults,
            expires_at_ms,
        }
    }

    /// `mock-static` (a fixed token) and `mock-exchange` (needs a subject token).
    pub fn with_defaults(faults: Faults) -> Self {
        let credentials = [
            (
                "mock-static".to_owned(),
                MockCredential {
                    token: "mock-static-token".into(),
                    scopes: vec!["read".into()],
                    exchange: false,
                },
            ),
            (
                "mock-exchange".to_owned(),
                MockCredential {
                    token: "mock-exchanged".into(),
                    scopes: vec![],
                    exchange: true,
                },
            ),
        ]
        .into();
        Self::new(credentials, faults)
    }
}

#[tonic::async_trait]
impl CredentialsDriver for MockCredentials {
    async fn resolve_credential(
        &self,
        r: Request<pb::ResolveCredentialRequest>,
    ) -> Result<Response<pb::ResolveCredentialResponse>, Status> {
        self.faults.before("ResolveCredential").await?;
        let r = r.into_inner();
        if r.name.is_empty() {
            return Err(Status::invalid_argument("name: required"));
        }
        let credential = self
            .credentials
            .get(&r.name)
            .ok_or_else(|| Status::not_found(format!("no credential named {:?}", r.name)))?;
        let token = if credential.exchange {
            if r.subject_token.is_empty() {
                // As the contract says: the code, and the machine-readable reason.
                return Err(proto::reason::with_reason(
                    Status::invalid_argument(
                        "subject_token: required for a token exchange credential",
                    ),
                    proto::reason::SUBJECT_TOKEN_REQUIRED,
                ));
            }
            let Some(user) = r.subject_token.strip_prefix("valid-") else {
                return Err(Status::unauthenticated("the subject token was rejected"));
            };
            format!("{}-{user}", credential.token)
        } else {
            credential.token.clone()
        };
        Ok(Response::new(pb::ResolveCredentialResponse {
            token,
            expires_at_ms: self.expires_at_ms,
            token_type: "Bearer".into(),
            granted_scopes: credential.scopes.clone(),
            issued_token_type: String::new(),
            // Like a deployed driver: it does not say where the token came from.
            served_from: String::new(),
        }))
    }

    async fn list_credentials(
        &self,
        _: Request<pb::ListCredentialsRequest>,
    ) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        self.faults.before("ListCredentials").await?;
        let credentials = self
            .credentials
            .iter()
            .map(|(name, c)| pb::CredentialInfo {
                name: name.clone(),
                scopes: c.scopes.clone(),
                kind: if c.exchange {
                    "token_exchange"
                } else {
                    "static"
                }
                .into(),
                requires_subject_token: c.exchange,
            })
            .collect();
        Ok(Response::new(pb::ListCredentialsResponse { credentials }))
    }

    async fn get_capabilities(
        &self,
        _: Request<pb::GetCapabilitiesRequest>,
    ) -> Result<Response<pb::GetCapabilitiesResponse>, Status> {
        self.faults.before("GetCapabilities").await?;
        Ok(Response::new(pb::GetCapabilitiesResponse {
            driver_name: "mock-credentials-driver".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            supported_kinds: vec!["static".into(), "token_exchange".into()],
            supports_token_exchange: true,
            supports_request_audience_and_scopes: false,
        }))
    }
}
