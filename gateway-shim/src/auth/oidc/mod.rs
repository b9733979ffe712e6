//! OIDC bearer tokens: issuer discovery at start-up, a JWKS cache, signature and claim
//! checks, and the user they describe (subject, roles from a configurable claim path,
//! scopes from a configurable claim).

mod jwk;
mod keys;
mod token;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::Secret;
use serde::Deserialize;
use tonic::Status;

use super::owner::oidc_owner;
use super::{Identity, Principal, User, is_label_value};
use keys::{KeyCache, KeyError};

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Minimum time between refreshes forced by unknown key ids.
const UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(10);
/// How long start-up keeps trying to reach the issuer.
const DISCOVERY_DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one request to the IdP.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// What OIDC checks, from the `--oidc-*` flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcConfig {
    /// The issuer URL (must equal the discovered `issuer`).
    pub issuer: String,
    /// The audience tokens must carry.
    pub audience: String,
    /// Maximum age of the cached JWKS.
    pub jwks_ttl: Duration,
    /// Dotted path of the roles claim.
    pub roles_claim: String,
    /// Role names: `Some` for both = RBAC, `None` for both = authentication only.
    pub roles: Option<RoleNames>,
    /// Claim holding scopes; `None` = scopes not enforced.
    pub scopes_claim: Option<String>,
    /// The public client CLIs log in with (told them by the discovery document);
    /// `None`: the CLI must be given one.
    pub cli_client_id: Option<String>,
    /// Scopes the CLI should request (`openid` is always added).
    pub cli_scopes: Vec<String>,
    /// Dotted path of the claim naming the caller's tenant; `None`: every user is in
    /// the default tenant. When set, a token without it is refused.
    pub tenant_claim: Option<String>,
    /// The role (in the roles claim) of platform admins; `None`: nobody holds it.
    pub platform_admin_role: Option<String>,
    /// Attribute categories read from claims: category → dotted claim path.
    pub attribute_claims: std::collections::BTreeMap<String, String>,
}

/// The two role names of RBAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleNames {
    /// Grants everything.
    pub admin: String,
    /// Grants user methods.
    pub user: String,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// A verifier of one issuer's tokens.
#[derive(Debug)]
pub struct Oidc {
    config: OidcConfig,
    keys: KeyCache,
}

impl Oidc {
    /// Discovers the issuer (retrying for up to 30 s) and loads its keys.
    ///
    /// # Errors
    /// A message naming the issuer and what went wrong.
    pub async fn discover(config: OidcConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let started = tokio::time::Instant::now();
        let mut delays = proto::Backoff::CONNECT.session();
        let discovery = loop {
            match fetch_discovery(&http, &url).await {
                Ok(discovery) => break discovery,
                Err(error) if started.elapsed() < DISCOVERY_DEADLINE => {
                    tracing::warn!(issuer = %config.issuer, %error, "OIDC discovery failed; retrying");
                    tokio::time::sleep(delays.next_delay().max(Duration::from_millis(500))).await;
                }
                Err(error) => {
                    return Err(format!(
                        "--oidc-issuer {}: discovery failed: {error}",
                        config.issuer
                    ));
                }
            }
        };
        if discovery.issuer.trim_end_matches('/') != config.issuer.trim_end_matches('/') {
            return Err(format!(
                "--oidc-issuer {} does not match the issuer the IdP reports ({}): use exactly that URL",
                config.issuer, discovery.issuer
            ));
        }
        let keys = KeyCache::new(
            http,
            discovery.jwks_uri,
            config.jwks_ttl,
            UNKNOWN_KID_COOLDOWN,
        );
        let count = keys
            .load()
            .await
            .map_err(|e| format!("--oidc-issuer {}: {e}", config.issuer))?;
        tracing::info!(issuer = %config.issuer, keys = count, "OIDC issuer discovered");
        Ok(Self { config, keys })
    }

    /// The user `token` describes, in the tenant its tenant claim names.
    ///
    /// # Errors
    /// UNAUTHENTICATED saying why (never echoing the token); UNAVAILABLE when the
    /// IdP's keys cannot be had.
    pub async fn verify(&self, token: &str) -> Result<Principal, Status> {
        let unauthenticated =
            |why: &str| Status::unauthenticated(format!("invalid bearer token: {why}"));
        let parsed = token::parse(token).map_err(unauthenticated)?;
        let kid = parsed
            .kid
            .as_deref()
            .ok_or_else(|| unauthenticated("no key id (kid)"))?;
        let key = self.keys.key(kid).await.map_err(|error| match error {
            KeyError::UnknownKey => unauthenticated("signed with an unknown key"),
            KeyError::Unavailable(why) => {
                Status::unavailable(format!("cannot verify tokens now: {why}"))
            }
        })?;
        if parsed.alg != key.alg.name() {
            return Err(unauthenticated("algorithm does not match the key"));
        }
        if !key.verify(parsed.signed.as_bytes(), &parsed.signature) {
            return Err(unauthenticated("bad signature"));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let expect = token::Expectations {
            issuer: &self.config.issuer,
            audience: &self.config.audience,
            now,
            leeway: LEEWAY_SECS,
        };
        token::check(&parsed.claims, &expect).map_err(unauthenticated)?;
        let mut principal = Principal::new(Identity::User(self.user(&parsed.claims, token)));
        if let Some(claim) = &self.config.tenant_claim {
            let tenant = match token::strings_at(&parsed.claims, claim).as_slice() {
                [tenant] if is_label_value(tenant) => tenant.clone(),
                [] => return Err(unauthenticated(&format!("no tenant claim `{claim}`"))),
                _ => {
                    return Err(unauthenticated(&format!(
                        "the tenant claim `{claim}` must be one label value"
                    )));
                }
            };
            principal.tenant = tenant;
        }
        for (category, claim) in &self.config.attribute_claims {
            let values = token::strings_at(&parsed.claims, claim);
            if !values.is_empty() {
                principal
                    .attributes
                    .insert(category.clone(), values.into_iter().collect());
            }
        }
        Ok(principal)
    }

    fn user(&self, claims: &serde_json::Value, token: &str) -> User {
        let subject = claims["sub"].as_str().unwrap_or_default().to_owned();
        let roles = token::strings_at(claims, &self.config.roles_claim);
        let (admin, user_role) = match &self.config.roles {
            Some(names) => {
                let admin = roles.contains(&names.admin);
                (admin, admin || roles.contains(&names.user))
            }
            None => (false, true),
        };
        let platform_admin = self
            .config
            .platform_admin_role
            .as_ref()
            .is_some_and(|role| roles.contains(role));
        let scopes = self.config.scopes_claim.as_deref().map(|claim| {
            token::scopes_at(claims, claim)
                .into_iter()
                .collect::<BTreeSet<_>>()
        });
        User {
            owner: oidc_owner(&self.config.issuer, &subject),
            subject,
            admin: admin || platform_admin,
            platform_admin,
            user_role: user_role || platform_admin,
            scopes,
            bearer: Some(Secret::new(token)),
        }
    }
}

async fn fetch_discovery(http: &reqwest::Client, url: &str) -> Result<Discovery, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response
        .json()
        .await
        .map_err(|e| format!("{url}: {}", e.without_url()))
}
