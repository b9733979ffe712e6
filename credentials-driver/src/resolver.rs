//! Named credentials to tokens: looks the name up in the current config and serves the
//! token from its source: a file (`static`), or the identity provider through the
//! token cache (`client_credentials`, `token_exchange`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use proto::Secret;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cache::{CachedToken, Key, Lifetime, TokenCache};
use crate::config::{Config, Credential, OAuthClient};
use crate::error::Error;
use crate::idp::{ACCESS_TOKEN_TYPE, Grant, Idp, IdpError, Issued};
use crate::metrics::{IdpMetrics, outcome};
use crate::secrets::SecretsDir;

/// A resolve request, as the domain sees it.
#[derive(Clone, Debug, Default)]
pub struct ResolveRequest {
    /// The credential's name.
    pub name: String,
    /// The caller's subject token (token exchange only).
    pub subject_token: Secret,
    /// Its RFC 8693 type URI (empty: access token).
    pub subject_token_type: String,
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
    /// RFC 8693 issued token type, for exchanges.
    pub issued_token_type: String,
    /// Where the token came from.
    pub served_from: ServedFrom,
}

/// Where a resolved token came from (the `served_from` of the reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedFrom {
    /// The token cache: no request to the identity provider.
    Cache,
    /// A request to the identity provider made (or joined) for this call.
    IdentityProvider,
    /// A static credential's file.
    File,
}

impl ServedFrom {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cache => "cache",
            Self::IdentityProvider => "identity-provider",
            Self::File => "file",
        }
    }
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
    idp: Idp,
    cache: Arc<TokenCache>,
    metrics: IdpMetrics,
}

/// The credential kinds this build serves.
pub const SERVED_KINDS: [&str; 3] = ["static", "client_credentials", "token_exchange"];

impl Resolver {
    /// A resolver reading the config from `config` (replaced on reload), secrets from
    /// `secrets`, tokens from `idp` through `cache`.
    pub fn new(
        config: watch::Receiver<Arc<Config>>,
        secrets: SecretsDir,
        idp: Idp,
        cache: Arc<TokenCache>,
        metrics: IdpMetrics,
    ) -> Self {
        Self {
            config,
            secrets,
            idp,
            cache,
            metrics,
        }
    }

    /// The token cache (for metrics).
    pub fn cache(&self) -> &Arc<TokenCache> {
        &self.cache
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
    /// [`Error`]: malformed request, unknown name, misconfiguration, identity
    /// provider failures (classified).
    pub async fn resolve(&self, request: &ResolveRequest) -> Result<Resolved, Error> {
        check_name(&request.name)?;
        let credential = {
            let config = self.config.borrow();
            config
                .credentials
                .get(&request.name)
                .cloned()
                .ok_or_else(|| Error::NotFound(request.name.clone()))?
        };
        let name = &request.name;
        let idp_error = |error: IdpError| Error::Idp {
            credential: name.clone(),
            error,
        };
        match credential {
            Credential::Static {
                token_ref,
                token_type,
                expires_at_ms,
                scopes,
            } => {
                let token = self
                    .secrets
                    .read(&token_ref)
                    .map_err(|e| Error::Misconfigured {
                        credential: name.clone(),
                        reason: e.to_string(),
                    })?;
                Ok(Resolved {
                    token,
                    expires_at_ms,
                    token_type,
                    granted_scopes: scopes,
                    issued_token_type: String::new(),
                    served_from: ServedFrom::File,
                })
            }
            Credential::ClientCredentials(client) => {
                let (audience, scopes) = requested(request, &client);
                let key = Key::new(name, &audience, &scopes, None);
                let fetch = self.fetcher(client, audience, scopes, None);
                self.cache
                    .get_served(&key, fetch)
                    .await
                    .map(resolved)
                    .map_err(idp_error)
            }
            Credential::TokenExchange(client) => {
                if request.subject_token.is_empty() {
                    return Err(Error::SubjectTokenRequired(name.clone()));
                }
                let bound = subject_expiry(&request.subject_token)
                    .map(|remaining| remaining.ok_or_else(|| Error::SubjectExpired(name.clone())))
                    .transpose()?;
                let (audience, scopes) = requested(request, &client);
                let key = Key::new(name, &audience, &scopes, Some(&request.subject_token));
                let subject = Subject {
                    token: request.subject_token.clone(),
                    kind: if request.subject_token_type.is_empty() {
                        ACCESS_TOKEN_TYPE.to_owned()
                    } else {
                        request.subject_token_type.clone()
                    },
                    bound: bound.map(|remaining| Instant::now() + remaining),
                };
                let fetch = self.fetcher(client, audience, scopes, Some(subject));
                self.cache
                    .get_served(&key, fetch)
                    .await
                    .map(resolved)
                    .map_err(idp_error)
            }
        }
    }

    /// A fetch for the cache: reads the client secret at fetch time (so a rotated
    /// secret is used by the next fetch) and asks the token endpoint.
    fn fetcher(
        &self,
        client: OAuthClient,
        audience: Vec<String>,
        scopes: Vec<String>,
        subject: Option<Subject>,
    ) -> impl FnOnce()
        -> std::pin::Pin<Box<dyn Future<Output = Result<CachedToken, IdpError>> + Send>>
    + use<> {
        let (idp, secrets, metrics) =
            (self.idp.clone(), self.secrets.clone(), self.metrics.clone());
        move || {
            Box::pin(async move {
                let secret = secrets.read(&client.client_secret_ref).map_err(|e| {
                    IdpError::Misconfigured {
                        reason: format!("client secret: {e}"),
                    }
                })?;
                let grant = match &subject {
                    None => Grant::ClientCredentials,
                    Some(s) => Grant::Exchange {
                        subject_token: &s.token,
                        subject_token_type: &s.kind,
                    },
                };
                let started = Instant::now();
                let result = idp
                    .request(&client, &secret, grant, &audience, &scopes)
                    .await;
                metrics.record(outcome(&result.as_ref().map(drop)), started.elapsed());
                Ok(cached(result?, subject.and_then(|s| s.bound)))
            })
        }
    }
}

/// The caller's token for an exchange.
struct Subject {
    token: Secret,
    kind: String,
    bound: Option<Instant>,
}

fn requested(request: &ResolveRequest, client: &OAuthClient) -> (Vec<String>, Vec<String>) {
    let pick = |asked: &Vec<String>, configured: &Vec<String>| {
        if asked.is_empty() {
            configured.clone()
        } else {
            asked.clone()
        }
    };
    (
        pick(&request.audience, &client.audience),
        pick(&request.scopes, &client.scopes),
    )
}

fn cached(issued: Issued, bound: Option<Instant>) -> CachedToken {
    let received = Instant::now();
    let lifetime = Lifetime::new(received, issued.expires_in, bound);
    let expires_at_ms = lifetime.expires_at.map_or(0, |at| {
        let remaining = at.saturating_duration_since(received);
        epoch_ms(SystemTime::now() + remaining)
    });
    CachedToken {
        token: issued.token,
        expires_at_ms,
        token_type: issued.token_type,
        scopes: issued.scopes,
        issued_token_type: issued.issued_token_type,
        lifetime,
    }
}

fn resolved((token, from_cache): (CachedToken, bool)) -> Resolved {
    Resolved {
        token: token.token,
        expires_at_ms: token.expires_at_ms,
        token_type: token.token_type,
        granted_scopes: token.scopes,
        issued_token_type: token.issued_token_type,
        served_from: if from_cache {
            ServedFrom::Cache
        } else {
            ServedFrom::IdentityProvider
        },
    }
}

fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// For a JWT subject token: `Some(Some(time left))`, or `Some(None)` when it has
/// expired. `None` when it is not a JWT with `exp` (then only the IdP can tell).
/// The signature is not checked here: the identity provider checks it.
fn subject_expiry(token: &Secret) -> Option<Option<Duration>> {
    let payload = token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = u64::try_from(claims.get("exp")?.as_i64()?).ok()?;
    let expires = UNIX_EPOCH + Duration::from_secs(exp);
    Some(
        expires
            .duration_since(SystemTime::now())
            .ok()
            .filter(|d| !d.is_zero()),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: i64) -> Secret {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = engine.encode(format!(r#"{{"sub":"u","exp":{exp}}}"#));
        Secret::new(format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig"))
    }

    #[test]
    fn subject_expiry_reads_exp_without_trusting_anything_else() {
        let now = epoch_ms(SystemTime::now()) / 1000;
        let left = subject_expiry(&jwt(now + 100)).unwrap().unwrap();
        assert!(left > Duration::from_secs(90) && left <= Duration::from_secs(100));
        assert_eq!(subject_expiry(&jwt(now - 5)), Some(None));
        assert_eq!(subject_expiry(&Secret::new("opaque-token")), None);
    }
}
