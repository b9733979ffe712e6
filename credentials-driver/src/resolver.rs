//! Named credentials to tokens: looks the name up in the current config and asks the
//! credential's source. (Only the `static` source is built in so far.)

use std::sync::Arc;

use proto::Secret;
use tokio::sync::watch;

use crate::config::{Config, Credential};
use crate::error::Error;
use crate::secrets::SecretsDir;

/// A resolve request, as the domain sees it.
#[derive(Clone, Debug, Default)]
pub struct ResolveRequest {
    /// The credential's name.
    pub name: String,
    /// The caller's subject token (token exchange only).
    pub subject_token: Secret,
    /// Requested audiences (empty: configured ones).
    pub audience: Vec<String>,
    /// Requested scopes (empty: configured ones).
    pub scopes: Vec<String>,
}

/// A usable token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The token.
    pub token: Secret,
    /// Expiry in epoch ms (0: never).
    pub expires_at_ms: i64,
    /// Usually `Bearer`.
    pub token_type: String,
    /// Scopes granted, when known.
    pub granted_scopes: Vec<String>,
}

/// A listed credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its kind.
    pub kind: &'static str,
    /// Whether resolving it needs a subject token.
    pub requires_subject_token: bool,
}

/// Resolves credentials against the live config.
#[derive(Clone, Debug)]
pub struct Resolver {
    config: watch::Receiver<Arc<Config>>,
    secrets: SecretsDir,
}

/// The credential kinds this build serves.
pub const SERVED_KINDS: [&str; 1] = ["static"];

impl Resolver {
    /// A resolver reading the config from `config` (replaced on reload) and secrets
    /// from `secrets`.
    pub fn new(config: watch::Receiver<Arc<Config>>, secrets: SecretsDir) -> Self {
        Self { config, secrets }
    }

    /// Every credential, sorted by name.
    pub fn list(&self) -> Vec<Listed> {
        let config = Arc::clone(&self.config.borrow());
        config
            .credentials
            .iter()
            .map(|(name, credential)| Listed {
                name: name.clone(),
                scopes: credential.scopes().to_vec(),
                kind: credential.kind(),
                requires_subject_token: matches!(credential, Credential::TokenExchange(_)),
            })
            .collect()
    }

    /// Resolves one credential.
    ///
    /// # Errors
    /// [`Error`]: malformed request, unknown name, misconfiguration, unserved kind.
    pub fn resolve(&self, request: &ResolveRequest) -> Result<Resolved, Error> {
        check_name(&request.name)?;
        let config = Arc::clone(&self.config.borrow());
        let credential = config
            .credentials
            .get(&request.name)
            .ok_or_else(|| Error::NotFound(request.name.clone()))?;
        match credential {
            Credential::Static {
                token_ref,
                token_type,
                expires_at_ms,
                scopes,
            } => {
                let token = self
                    .secrets
                    .read(token_ref)
                    .map_err(|e| Error::Misconfigured {
                        credential: request.name.clone(),
                        reason: e.to_string(),
                    })?;
                Ok(Resolved {
                    token,
                    expires_at_ms: *expires_at_ms,
                    token_type: token_type.clone(),
                    granted_scopes: scopes.clone(),
                })
            }
            Credential::TokenExchange(_) if request.subject_token.is_empty() => {
                Err(Error::InvalidArgument {
                    field: "subject_token",
                    reason: format!(
                        "required: credential {:?} is a token exchange of the caller's token",
                        request.name
                    ),
                })
            }
            other => Err(Error::KindNotServed {
                credential: request.name.clone(),
                kind: other.kind(),
            }),
        }
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidArgument {
            field: "name",
            reason: "required".into(),
        });
    }
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument {
            field: "name",
            reason: "must be at most 128 characters without control characters".into(),
        });
    }
    Ok(())
}
