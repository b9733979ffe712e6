//! Command-line flags. Flags deployed gateways already use keep their spelling and env
//! vars (`OPENSHELL_*`); every other flag reads a `GATEWAY_*` env var.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use proto::cli::{CheckArgs, LogArgs, parse_duration};

use crate::config::{GatewayConfig, defaults};

mod control_plane;
mod trusted_proxy;
pub use control_plane::ControlPlaneArgs;
pub use trusted_proxy::TrustedProxyArgs;

use crate::client::cli::{
    CredentialCommand, GatewayCommand, InferenceCommand, Login, Logout, ProviderCommand,
    SandboxCommand,
};

/// The thin sandbox gateway (`serve`, `dev`) and its command-line client (the other
/// subcommands).
#[derive(Parser, Clone, Debug)]
#[command(name = "gateway-shim", version, about, long_about = None)]
pub struct Args {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Logging flags.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Subcommands.
// Parsed once per process: the size of the `serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Serve the gateway against drivers already running on their sockets (production).
    Serve(GatewayArgs),
    /// Run the whole suite on this machine: both drivers (spawned from the binaries
    /// next to this one) on sockets in a private directory, and the gateway on loopback
    /// with a local token.
    Dev(DevArgs),
    /// Sandboxes: create, list, get, stop, start, delete, watch.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Providers: create, list, get, update, delete, attach, detach.
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Your inference route: set, get, delete.
    #[command(subcommand)]
    Inference(InferenceCommand),
    /// From inside a sandbox: resolve an attached provider's credential.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// API keys (admins): create, list, revoke, block.
    #[command(subcommand)]
    Apikey(crate::client::api_keys::ApiKeyCommand),
    /// Remembered gateways: add, list, use, remove.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Log in to a gateway's identity provider (browser, --device, or
    /// --client-credentials for CI); later calls use and refresh the login.
    Login(Login),
    /// Revoke and delete the login of a gateway.
    Logout(Logout),
}

/// Flags of the gateway server.
#[derive(ClapArgs, Clone, Debug)]
pub struct GatewayArgs {
    /// Unix socket of the compute driver (required for `serve`).
    #[arg(long, value_name = "PATH", env = "OPENSHELL_COMPUTE_DRIVER_SOCKET")]
    pub compute_driver_socket: Option<PathBuf>,
    /// Unix socket of the credentials driver (optional: without it, resolving a
    /// provider's credential fails with FAILED_PRECONDITION).
    #[arg(long, value_name = "PATH", env = "OPENSHELL_CREDENTIALS_DRIVER_SOCKET")]
    pub credentials_driver_socket: Option<PathBuf>,
    /// TCP address of the gateway's gRPC API.
    #[arg(long, value_name = "ADDR", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,
    /// Where records live: sqlite:<path>, sqlite::memory: (tests) or
    /// postgres://user:password@host/db (for more than one replica). A SQLite file is
    /// created 0600 in a directory only this user controls (created 0700 if missing).
    #[arg(long, value_name = "URL", default_value = defaults::DB_URL)]
    pub db_url: String,
    /// `/metrics`, `/healthz` and `/readyz` on this address (off when unset).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Generate a local bearer token at start-up and write it to this file (mode
    /// 0600). It is accepted from loopback connections only and acts as an admin.
    #[arg(long, value_name = "PATH")]
    pub local_token_file: Option<PathBuf>,
    /// File holding the key (32 bytes or more) that signs sandbox tokens; unset = a
    /// key generated once and kept in the store (shared by replicas of one database).
    #[arg(long, value_name = "PATH")]
    pub sandbox_token_key_file: Option<PathBuf>,
    /// Lifetime of the per-sandbox tokens.
    #[arg(long, value_name = "DURATION", default_value = defaults::SANDBOX_TOKEN_TTL, value_parser = parse_duration)]
    pub sandbox_token_ttl: Duration,
    /// The gateway address sandboxes are told (OPENSHELL_GATEWAY_ENDPOINT); default
    /// http://<listen>.
    #[arg(long, value_name = "URL")]
    pub sandbox_endpoint: Option<String>,
    /// Overall deadline of one driver call, retries included.
    #[arg(long, value_name = "DURATION", default_value = defaults::DRIVER_CALL_TIMEOUT, value_parser = parse_duration)]
    pub driver_call_timeout: Duration,
    /// How often to reconcile with a full ListSandboxes (besides the watch stream).
    #[arg(long, value_name = "DURATION", default_value = defaults::RECONCILE_INTERVAL, value_parser = parse_duration)]
    pub reconcile_interval: Duration,
    /// How long a sandbox's resolve and bundle may serve the sandbox, provider and
    /// route records from memory. This replica's writes show at once; another
    /// replica's (same database) within this bound. 0s: always read the database.
    #[arg(long, value_name = "DURATION", default_value = defaults::STORE_CACHE_TTL, value_parser = parse_duration)]
    pub store_cache_ttl: Duration,
    /// After SIGTERM/SIGINT, how long open calls may run before they are cut (watches
    /// end at once).
    #[arg(long, value_name = "DURATION", default_value = defaults::SHUTDOWN_GRACE, value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Sandboxes one owner may have (RESOURCE_EXHAUSTED beyond).
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_SANDBOXES_PER_OWNER)]
    pub max_sandboxes_per_owner: usize,
    /// Providers one owner may have (RESOURCE_EXHAUSTED beyond).
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_PROVIDERS_PER_OWNER)]
    pub max_providers_per_owner: usize,
    /// YAML file saying which credentials users may back their providers with (see
    /// the README, "Credential policy"); re-read when it changes. Unset: users may
    /// reference token-exchange credentials only; admins any.
    #[arg(long, value_name = "PATH")]
    pub credential_policy: Option<PathBuf>,
    /// YAML file of attribute rules: which callers besides an object's owner may read,
    /// use, update or delete it, by the attributes they share with it (see the README,
    /// "Tenants and attribute rules"). Unset: owner or admin only.
    #[arg(long, value_name = "PATH", env = "GATEWAY_ACCESS_RULES")]
    pub access_rules: Option<PathBuf>,
    /// OIDC authentication of users.
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// PEM certificate chain of the API listener (with --tls-key: TLS on; the files
    /// are re-read when they change).
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (not readable by others).
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to (mTLS).
    #[arg(long, value_name = "PATH")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: `required` refuses clients without a certificate.
    #[arg(long, value_enum, default_value = "optional")]
    pub tls_client_auth: crate::tls::ClientAuth,
    /// Attribute category of the sandbox owner's identity whose value becomes the
    /// `x-gateway-inference-fairness-id` header of inference bundles. Empty: the
    /// owner's tenant.
    #[arg(
        long,
        value_name = "CATEGORY",
        default_value = "",
        env = "GATEWAY_INFERENCE_FAIRNESS_ATTRIBUTE"
    )]
    pub inference_fairness_attribute: String,
    /// Value of the `x-gateway-inference-objective` header of inference bundles.
    /// Empty: no such header.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "",
        env = "GATEWAY_INFERENCE_OBJECTIVE"
    )]
    pub inference_objective: String,
    /// The trusted-proxy listener.
    #[command(flatten)]
    pub trusted_proxy: TrustedProxyArgs,
    /// The external control plane (API keys).
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
    /// Calls a minute per user or API key whose key names no limit of its own
    /// (RESOURCE_EXHAUSTED with grpc-retry-pushback-ms beyond); 0: unlimited.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "GATEWAY_RATE_LIMIT_PER_MIN"
    )]
    pub rate_limit_per_min: u32,
    /// Calls above the rate a caller may make at once; 0: a minute's worth.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "GATEWAY_RATE_LIMIT_BURST"
    )]
    pub rate_limit_burst: u32,
    /// `--check-config`.
    #[command(flatten)]
    pub check: CheckArgs,
}

impl GatewayArgs {
    /// The configuration these flags describe.
    ///
    /// # Errors
    /// One line per problem, each naming the flag to fix.
    pub fn config(&self) -> Result<GatewayConfig, String> {
        let (compute, oidc, tls, proxy, control_plane, internal_api) = match (
            self.compute_driver_socket.clone(),
            self.oidc.config(),
            self.tls(),
            self.trusted_proxy.config(),
            self.control_plane.config(),
            self.control_plane.internal_api(),
        ) {
            (Some(compute), Ok(oidc), Ok(tls), Ok(proxy), Ok(control_plane), Ok(internal_api)) => {
                (compute, oidc, tls, proxy, control_plane, internal_api)
            }
            (compute, oidc, tls, proxy, control_plane, internal_api) => {
                let missing = compute.is_none().then(|| {
                    "--compute-driver-socket (or OPENSHELL_COMPUTE_DRIVER_SOCKET) is required; or run `gateway-shim dev` to start the drivers too".to_owned()
                });
                return Err(missing
                    .into_iter()
                    .chain(oidc.err())
                    .chain(tls.err())
                    .chain(proxy.err())
                    .chain(control_plane.err())
                    .chain(internal_api.err())
                    .collect::<Vec<_>>()
                    .join("\n"));
            }
        };
        Ok(GatewayConfig {
            credentials_driver_socket: self.credentials_driver_socket.clone(),
            listen: self.listen,
            db_url: self.db_url.clone(),
            metrics_addr: self.metrics_addr,
            local_token_file: self.local_token_file.clone(),
            sandbox_token_key_file: self.sandbox_token_key_file.clone(),
            sandbox_token_ttl: self.sandbox_token_ttl,
            sandbox_endpoint: self.sandbox_endpoint.clone(),
            driver_call_timeout: self.driver_call_timeout,
            reconcile_interval: self.reconcile_interval,
            store_cache_ttl: self.store_cache_ttl,
            shutdown_grace: self.shutdown_grace,
            max_sandboxes_per_owner: self.max_sandboxes_per_owner,
            max_providers_per_owner: self.max_providers_per_owner,
            credential_policy: self.credential_policy.clone(),
            access_rules: self.access_rules.clone(),
            oidc,
            tls,
            trusted_proxy: proxy,
            control_plane,
            internal_api,
            rate_limit: (self.rate_limit_per_min > 0).then_some(crate::auth::rate_limit::Rate {
                per_min: self.rate_limit_per_min,
                burst: if self.rate_limit_burst == 0 {
                    self.rate_limit_per_min
                } else {
                    self.rate_limit_burst
                },
            }),
            fairness: crate::api::fairness::Fairness {
                attribute: (!self.inference_fairness_attribute.is_empty())
                    .then(|| self.inference_fairness_attribute.clone()),
                objective: (!self.inference_objective.is_empty())
                    .then(|| self.inference_objective.clone()),
            },
            ..GatewayConfig::new(compute)
        })
    }

    fn tls(&self) -> Result<Option<crate::tls::TlsConfig>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
                client_auth: self.tls_client_auth,
            })),
            (None, None) if self.tls_client_ca.is_some() => {
                Err("--tls-client-ca needs TLS: set --tls-cert and --tls-key too".into())
            }
            (None, None) => Ok(None),
            (Some(_), None) => {
                Err("--tls-cert needs --tls-key (the certificate's private key)".into())
            }
            (None, Some(_)) => {
                Err("--tls-key needs --tls-cert (the key's certificate chain)".into())
            }
        }
    }
}

/// OIDC flags, spelled as deployed gateways spell them.
#[derive(ClapArgs, Clone, Debug)]
pub struct OidcArgs {
    /// Issuer URL (Keycloak: https://host/realms/<realm>); unset = OIDC off.
    #[arg(long, value_name = "URL", env = "OPENSHELL_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Audience user tokens must carry (required with --oidc-issuer).
    #[arg(long, value_name = "AUDIENCE", env = "OPENSHELL_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Maximum age of the cached signing keys (JWKS).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration, env = "OPENSHELL_OIDC_JWKS_TTL")]
    pub oidc_jwks_ttl: Duration,
    /// Dotted path of the roles claim.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "realm_access.roles",
        env = "OPENSHELL_OIDC_ROLES_CLAIM"
    )]
    pub oidc_roles_claim: String,
    /// Role that grants everything (empty, with an empty --oidc-user-role: no RBAC).
    #[arg(
        long,
        value_name = "ROLE",
        default_value = "openshell-admin",
        env = "OPENSHELL_OIDC_ADMIN_ROLE"
    )]
    pub oidc_admin_role: String,
    /// Role that grants the user methods.
    #[arg(
        long,
        value_name = "ROLE",
        default_value = "openshell-user",
        env = "OPENSHELL_OIDC_USER_ROLE"
    )]
    pub oidc_user_role: String,
    /// Claim holding scopes (space-separated string or array); empty = scopes not
    /// enforced.
    #[arg(
        long,
        value_name = "CLAIM",
        default_value = "",
        env = "OPENSHELL_OIDC_SCOPES_CLAIM"
    )]
    pub oidc_scopes_claim: String,
    /// Public OIDC client the CLI logs in with (`gateway-shim login`); told to CLIs by
    /// the discovery document at /auth/oidc-config. Empty: CLIs pass --client-id.
    #[arg(
        long,
        value_name = "CLIENT_ID",
        default_value = "",
        env = "OPENSHELL_OIDC_CLI_CLIENT_ID"
    )]
    pub oidc_cli_client_id: String,
    /// Scopes the CLI requests at login (space-separated; `openid` is always added).
    #[arg(
        long,
        value_name = "SCOPES",
        default_value = defaults::OIDC_CLI_SCOPES,
        env = "OPENSHELL_OIDC_CLI_SCOPES"
    )]
    pub oidc_cli_scopes: String,
    /// Dotted path of the claim naming the caller's tenant (e.g. `tenant`); tokens
    /// without it are refused. Empty: every OIDC user is in the default tenant.
    #[arg(
        long,
        value_name = "CLAIM",
        default_value = "",
        env = "GATEWAY_OIDC_TENANT_CLAIM"
    )]
    pub oidc_tenant_claim: String,
    /// Role (in the roles claim) of platform admins, who also change the platform
    /// layer every tenant falls back to. Empty: nobody holds it.
    #[arg(
        long,
        value_name = "ROLE",
        default_value = "",
        env = "GATEWAY_OIDC_PLATFORM_ADMIN_ROLE"
    )]
    pub oidc_platform_admin_role: String,
    /// An attribute category read from a claim, `CATEGORY=CLAIM` (dotted path; a
    /// string or an array), for the attribute rules; repeatable.
    #[arg(
        long = "oidc-attribute-claim",
        value_name = "CATEGORY=CLAIM",
        env = "GATEWAY_OIDC_ATTRIBUTE_CLAIMS",
        value_delimiter = ','
    )]
    pub oidc_attribute_claims: Vec<String>,
}

impl Default for OidcArgs {
    /// OIDC off, with the flags' defaults otherwise.
    fn default() -> Self {
        Self {
            oidc_issuer: None,
            oidc_audience: None,
            oidc_jwks_ttl: Duration::from_secs(600),
            oidc_roles_claim: "realm_access.roles".into(),
            oidc_admin_role: "openshell-admin".into(),
            oidc_user_role: "openshell-user".into(),
            oidc_scopes_claim: String::new(),
            oidc_cli_client_id: String::new(),
            oidc_cli_scopes: defaults::OIDC_CLI_SCOPES.into(),
            oidc_tenant_claim: String::new(),
            oidc_platform_admin_role: String::new(),
            oidc_attribute_claims: Vec::new(),
        }
    }
}

impl OidcArgs {
    /// The OIDC configuration, `None` when OIDC is off.
    ///
    /// # Errors
    /// A message naming the flag to fix.
    pub fn config(&self) -> Result<Option<crate::auth::OidcConfig>, String> {
        let Some(issuer) = self.oidc_issuer.clone().filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        let audience =
            self.oidc_audience.clone().filter(|a| !a.is_empty()).ok_or(
                "--oidc-audience (OPENSHELL_OIDC_AUDIENCE) is required with --oidc-issuer",
            )?;
        let roles = match (
            self.oidc_admin_role.is_empty(),
            self.oidc_user_role.is_empty(),
        ) {
            (false, false) => Some(crate::auth::RoleNames {
                admin: self.oidc_admin_role.clone(),
                user: self.oidc_user_role.clone(),
            }),
            (true, true) => None,
            _ => {
                return Err(
                    "set both --oidc-admin-role and --oidc-user-role (RBAC) or neither (authentication only)".into(),
                );
            }
        };
        Ok(Some(crate::auth::OidcConfig {
            issuer,
            audience,
            jwks_ttl: self.oidc_jwks_ttl,
            roles_claim: self.oidc_roles_claim.clone(),
            roles,
            scopes_claim: (!self.oidc_scopes_claim.is_empty())
                .then(|| self.oidc_scopes_claim.clone()),
            cli_client_id: (!self.oidc_cli_client_id.is_empty())
                .then(|| self.oidc_cli_client_id.clone()),
            cli_scopes: self
                .oidc_cli_scopes
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            tenant_claim: (!self.oidc_tenant_claim.is_empty())
                .then(|| self.oidc_tenant_claim.clone()),
            platform_admin_role: (!self.oidc_platform_admin_role.is_empty())
                .then(|| self.oidc_platform_admin_role.clone()),
            attribute_claims: pairs("--oidc-attribute-claim", &self.oidc_attribute_claims)?,
        }))
    }
}

/// Flags of `dev`.
#[derive(ClapArgs, Clone, Debug)]
pub struct DevArgs {
    /// Private runtime directory: driver sockets, the local token, the sample
    /// credentials and the database (default: $TMPDIR/openshell-dev-<uid>, /tmp without TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// TCP address of the gateway (loopback).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

/// `KEY=VALUE` flag values as a map.
///
/// # Errors
/// A message naming `flag` and the malformed value.
pub(crate) fn pairs(
    flag: &str,
    values: &[String],
) -> Result<std::collections::BTreeMap<String, String>, String> {
    values
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() && !value.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.trim().to_owned()))
            }
            _ => Err(format!("{flag} {pair:?}: use KEY=VALUE")),
        })
        .collect()
}
