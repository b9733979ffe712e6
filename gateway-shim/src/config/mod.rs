//! The gateway's configuration: a plain struct with documented defaults, built from
//! the `serve` flags ([`crate::GatewayArgs::config`]) or directly (`dev`, tests).
//!
//! - [`check`]: `serve --check-config`, everything start-up would load, without serving.

pub mod check;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::OidcConfig;

/// Everything `serve` needs. [`GatewayConfig::new`] gives the defaults below; the
/// `serve` flags' defaults are these (a test parses `serve` to check it).
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    /// Unix socket of the compute driver.
    pub compute_driver_socket: PathBuf,
    /// Unix socket of the credentials driver (none: resolving a provider's credential
    /// fails with FAILED_PRECONDITION).
    pub credentials_driver_socket: Option<PathBuf>,
    /// TCP address of the gRPC API. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `sqlite:<path>`, `sqlite::memory:` or `postgres://…`. Default `sqlite:gateway.db`.
    pub db_url: String,
    /// `/metrics`, `/healthz`, `/readyz` (off when `None`, the default).
    pub metrics_addr: Option<SocketAddr>,
    /// Where to write a generated local (loopback-only, admin) token; none by default.
    pub local_token_file: Option<PathBuf>,
    /// The sandbox-token signing key's file; `None` (default): a key kept in the store.
    pub sandbox_token_key_file: Option<PathBuf>,
    /// Lifetime of sandbox tokens. Default 30 days.
    pub sandbox_token_ttl: Duration,
    /// The address sandboxes are told; default `http://<listen>`.
    pub sandbox_endpoint: Option<String>,
    /// Deadline of one driver call, retries included. Default 10 s.
    pub driver_call_timeout: Duration,
    /// Period of the full reconcile and of repairs. Default 30 s.
    pub reconcile_interval: Duration,
    /// How long a sandbox's resolve and bundle may read the sandbox, provider and
    /// route records from memory: another replica's write shows within it (this
    /// replica's at once). Zero: always from the database. Default 1 s.
    pub store_cache_ttl: Duration,
    /// After SIGTERM/SIGINT, how long open calls may run. Default 10 s.
    pub shutdown_grace: Duration,
    /// Sandboxes one owner may have. Default 1000.
    pub max_sandboxes_per_owner: usize,
    /// Providers one owner may have. Default 100.
    pub max_providers_per_owner: usize,
    /// The credential policy file; `None` (default): the built-in policy.
    pub credential_policy: Option<PathBuf>,
    /// The attribute rules' file; `None` (default): owner or admin only.
    pub access_rules: Option<PathBuf>,
    /// OIDC authentication of users; `None` (default): off.
    pub oidc: Option<OidcConfig>,
    /// TLS on the API listener; `None` (default): plain HTTP/2.
    pub tls: Option<crate::tls::TlsConfig>,
    /// The limit of users and of API keys that name none; `None` (default): unlimited.
    pub rate_limit: Option<crate::auth::rate_limit::Rate>,
    /// The external control plane (API keys); `None` (default): off.
    pub control_plane: Option<crate::control_plane::ControlPlaneConfig>,
    /// The internal API (usage); `None` (default): its routes do not exist.
    pub internal_api: Option<crate::usage::internal_api::InternalApiConfig>,
    /// The trusted-proxy listener; `None` (default): off.
    pub trusted_proxy: Option<crate::auth::TrustedProxyConfig>,
    /// The gateway's headers on inference routes (default: the fairness id is the
    /// tenant, no objective).
    pub fairness: crate::api::fairness::Fairness,
}

/// The defaults, as the `serve` flags spell them.
pub mod defaults {
    /// `--listen`.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `--db-url`.
    pub const DB_URL: &str = "sqlite:gateway.db";
    /// `--sandbox-token-ttl`.
    pub const SANDBOX_TOKEN_TTL: &str = "30d";
    /// `--driver-call-timeout`.
    pub const DRIVER_CALL_TIMEOUT: &str = "10s";
    /// `--reconcile-interval`.
    pub const RECONCILE_INTERVAL: &str = "30s";
    /// `--store-cache-ttl`.
    pub const STORE_CACHE_TTL: &str = "1s";
    /// `--shutdown-grace`.
    pub const SHUTDOWN_GRACE: &str = "10s";
    /// `--max-sandboxes-per-owner`.
    pub const MAX_SANDBOXES_PER_OWNER: usize = 1000;
    /// `--max-providers-per-owner`.
    pub const MAX_PROVIDERS_PER_OWNER: usize = 100;
    /// `--oidc-cli-scopes`.
    pub const OIDC_CLI_SCOPES: &str = "openid offline_access";
}

const DAY: u64 = 24 * 3600;

impl GatewayConfig {
    /// The defaults, with the one setting that has none.
    pub fn new(compute_driver_socket: impl Into<PathBuf>) -> Self {
        Self {
            compute_driver_socket: compute_driver_socket.into(),
            credentials_driver_socket: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            db_url: defaults::DB_URL.into(),
            metrics_addr: None,
            local_token_file: None,
            sandbox_token_key_file: None,
            sandbox_token_ttl: Duration::from_secs(30 * DAY),
            sandbox_endpoint: None,
            driver_call_timeout: Duration::from_secs(10),
            reconcile_interval: Duration::from_secs(30),
            store_cache_ttl: crate::store::DEFAULT_CACHE_TTL,
            shutdown_grace: Duration::from_secs(10),
            max_sandboxes_per_owner: defaults::MAX_SANDBOXES_PER_OWNER,
            max_providers_per_owner: defaults::MAX_PROVIDERS_PER_OWNER,
            credential_policy: None,
            access_rules: None,
            oidc: None,
            tls: None,
            trusted_proxy: None,
            control_plane: None,
            internal_api: None,
            rate_limit: None,
            fairness: crate::api::fairness::Fairness::default(),
        }
    }
}
