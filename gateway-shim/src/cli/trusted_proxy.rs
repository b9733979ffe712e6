//! The `--trusted-proxy-*` flags of `serve`: a second listener for a trusted
//! authenticating proxy ([`crate::auth::trusted_proxy`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::auth::TrustedProxyConfig;
use crate::auth::trusted_proxy::Cidr;

/// Flags of the trusted-proxy listener (off unless `--trusted-proxy-listen` is set).
#[derive(Args, Clone, Debug, Default)]
pub struct TrustedProxyArgs {
    /// Address of a second listener that takes identity from the headers of a trusted
    /// authenticating proxy in front (off when unset). Set at least one check of the
    /// proxy: --trusted-proxy-peer, --trusted-proxy-secret-file or
    /// --trusted-proxy-client-ca.
    #[arg(long, value_name = "ADDR", env = "GATEWAY_TRUSTED_PROXY_LISTEN")]
    pub trusted_proxy_listen: Option<SocketAddr>,
    /// Addresses the proxy connects from (ADDRESS or ADDRESS/PREFIX); repeatable.
    #[arg(
        long = "trusted-proxy-peer",
        value_name = "CIDR",
        env = "GATEWAY_TRUSTED_PROXY_PEERS",
        value_delimiter = ','
    )]
    pub trusted_proxy_peers: Vec<Cidr>,
    /// File (not readable by others) holding a secret the proxy sends in
    /// --trusted-proxy-secret-header; compared in constant time.
    #[arg(long, value_name = "PATH", env = "GATEWAY_TRUSTED_PROXY_SECRET_FILE")]
    pub trusted_proxy_secret_file: Option<PathBuf>,
    /// Header carrying the proxy's shared secret.
    #[arg(long, value_name = "HEADER", default_value = "x-trusted-proxy-secret")]
    pub trusted_proxy_secret_header: String,
    /// PEM CA the proxy's client certificate must chain to: the listener speaks TLS
    /// (with --tls-cert and --tls-key) and requires one.
    #[arg(long, value_name = "PATH", env = "GATEWAY_TRUSTED_PROXY_CLIENT_CA")]
    pub trusted_proxy_client_ca: Option<PathBuf>,
    /// Header naming the caller (missing or empty: UNAUTHENTICATED).
    #[arg(long, value_name = "HEADER", default_value = "x-forwarded-user")]
    pub trusted_proxy_principal_header: String,
    /// Header carrying a JSON object of attribute category → string or array.
    #[arg(long, value_name = "HEADER")]
    pub trusted_proxy_attributes_header: Option<String>,
    /// A header whose values (a JSON array or a comma-separated list) join an
    /// attribute category, `HEADER=CATEGORY` (e.g. X-MaaS-Group=teams); repeatable.
    #[arg(
        long = "trusted-proxy-attribute-header",
        value_name = "HEADER=CATEGORY",
        value_delimiter = ','
    )]
    pub trusted_proxy_attribute_headers: Vec<String>,
    /// Header naming the caller's tenant.
    #[arg(long, value_name = "HEADER")]
    pub trusted_proxy_tenant_header: Option<String>,
    /// Attribute category naming the caller's tenant (exactly one value).
    #[arg(long, value_name = "CATEGORY")]
    pub trusted_proxy_tenant_attribute: Option<String>,
    /// Attribute category holding the caller's roles.
    #[arg(long, value_name = "CATEGORY", default_value = "roles")]
    pub trusted_proxy_roles_attribute: String,
    /// Role of tenant admins.
    #[arg(long, value_name = "ROLE", default_value = "openshell-admin")]
    pub trusted_proxy_admin_role: String,
    /// Role of platform admins (empty: nobody).
    #[arg(long, value_name = "ROLE", default_value = "")]
    pub trusted_proxy_platform_admin_role: String,
}

impl TrustedProxyArgs {
    /// The listener's configuration, `None` when it is off.
    ///
    /// # Errors
    /// A message naming the flag to fix.
    pub fn config(&self) -> Result<Option<TrustedProxyConfig>, String> {
        let Some(listen) = self.trusted_proxy_listen else {
            return Ok(None);
        };
        let attribute_headers = super::pairs(
            "--trusted-proxy-attribute-header",
            &self.trusted_proxy_attribute_headers,
        )?
        .into_iter()
        .map(|(header, category)| (header.to_ascii_lowercase(), category))
        .collect();
        let config = TrustedProxyConfig {
            listen,
            allowed_peers: self.trusted_proxy_peers.clone(),
            secret_file: self.trusted_proxy_secret_file.clone(),
            secret_header: self.trusted_proxy_secret_header.to_ascii_lowercase(),
            client_ca: self.trusted_proxy_client_ca.clone(),
            principal_header: self.trusted_proxy_principal_header.to_ascii_lowercase(),
            attributes_header: self
                .trusted_proxy_attributes_header
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
            attribute_headers,
            tenant_header: self
                .trusted_proxy_tenant_header
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
            tenant_attribute: self.trusted_proxy_tenant_attribute.clone(),
            roles_attribute: self.trusted_proxy_roles_attribute.clone(),
            admin_role: self.trusted_proxy_admin_role.clone(),
            platform_admin_role: (!self.trusted_proxy_platform_admin_role.is_empty())
                .then(|| self.trusted_proxy_platform_admin_role.clone()),
        };
        // The same checks start-up makes, so flags fail at parse time.
        crate::auth::TrustedProxy::load(config.clone())?;
        Ok(Some(config))
    }
}
