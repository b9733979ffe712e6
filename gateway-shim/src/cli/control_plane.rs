//! The `--control-plane-*` flags of `serve`: an optional external control plane
//! ([`crate::control_plane`]), the internal API it reads usage from
//! ([`crate::usage::internal_api`]) and the providers tenants may bring their own keys
//! for.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use proto::cli::parse_duration;

use std::collections::BTreeMap;

use crate::control_plane::ControlPlaneConfig;
use crate::usage::internal_api::InternalApiConfig;

/// Flags of the control plane (off unless both the URL and the secret are set).
#[derive(Args, Clone, Debug)]
pub struct ControlPlaneArgs {
    /// The control plane's address: https://host[:port], or unix:/path.sock for one
    /// running beside the gateway (plain http:// only with
    /// --control-plane-insecure-http). Unset: no control plane.
    #[arg(long, value_name = "URL", env = "GATEWAY_CONTROL_PLANE_URL")]
    pub control_plane_url: Option<String>,
    /// File (not readable by others) holding the internal shared secret sent in
    /// `x-internal-secret` with every request to the control plane.
    #[arg(long, value_name = "PATH", env = "GATEWAY_CONTROL_PLANE_SECRET_FILE")]
    pub control_plane_secret_file: Option<PathBuf>,
    /// Allow a plain http:// control plane (the secret travels in clear).
    #[arg(long, env = "GATEWAY_CONTROL_PLANE_INSECURE_HTTP")]
    pub control_plane_insecure_http: bool,
    /// Bound on one request to the control plane.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub control_plane_timeout: Duration,
    /// File (not readable by others) holding the secret the internal API
    /// (`/internal/usage...` on the admin port) requires in `x-internal-secret`.
    /// Default: --control-plane-secret-file. Neither: the internal routes do not exist.
    #[arg(long, value_name = "PATH", env = "GATEWAY_INTERNAL_API_SECRET_FILE")]
    pub internal_api_secret_file: Option<PathBuf>,
    /// Also serve the internal API on this Unix socket (for a control plane beside the
    /// gateway): mode 0600, only this user may connect.
    #[arg(long, value_name = "PATH")]
    pub internal_api_socket: Option<PathBuf>,
    /// Group that shares --internal-api-socket (mode 0660; its members may connect).
    #[arg(long, value_name = "GROUP", requires = "internal_api_socket")]
    pub internal_api_socket_group: Option<String>,
    /// A platform provider tenants may override with their own key:
    /// `PROVIDER=ENV_NAME` takes `ENV_NAME` from the tenant's provider-env at the
    /// control plane (repeatable; names not listed are never taken). A tenant without
    /// the key, or a control plane that cannot answer, gets the platform's credential.
    #[arg(long = "tenant-provider-key", value_name = "PROVIDER=ENV_NAME")]
    pub tenant_provider_keys: Vec<String>,
}

impl Default for ControlPlaneArgs {
    fn default() -> Self {
        Self {
            control_plane_url: None,
            control_plane_secret_file: None,
            control_plane_insecure_http: false,
            control_plane_timeout: Duration::from_secs(5),
            internal_api_secret_file: None,
            internal_api_socket: None,
            internal_api_socket_group: None,
            tenant_provider_keys: Vec::new(),
        }
    }
}

impl ControlPlaneArgs {
    /// The configuration, `None` when no control plane is set.
    ///
    /// # Errors
    /// A message naming the flag to fix.
    pub fn config(&self) -> Result<Option<ControlPlaneConfig>, String> {
        let config = ControlPlaneConfig::from_flags(
            self.control_plane_url.as_deref(),
            self.control_plane_secret_file.clone(),
            self.control_plane_insecure_http,
            self.control_plane_timeout,
        )?;
        if let Some(config) = &config {
            // The same checks start-up makes (the secret file), so flags fail early.
            crate::control_plane::ControlPlane::new(config)?;
        }
        let tenant_keys = self.tenant_keys()?;
        if !tenant_keys.is_empty() && config.is_none() {
            return Err(
                "--tenant-provider-key needs a control plane to ask for tenants' keys: set --control-plane-url and --control-plane-secret-file".into(),
            );
        }
        Ok(config.map(|config| ControlPlaneConfig {
            tenant_keys,
            ..config
        }))
    }

    /// The internal API's configuration, `None` when it has no secret.
    ///
    /// # Errors
    /// A message naming the flag to fix.
    pub fn internal_api(&self) -> Result<Option<InternalApiConfig>, String> {
        let (flag, secret_file) = match (
            &self.internal_api_secret_file,
            &self.control_plane_secret_file,
        ) {
            (Some(file), _) => ("--internal-api-secret-file", file.clone()),
            (None, Some(file)) => ("--control-plane-secret-file", file.clone()),
            (None, None) if self.internal_api_socket.is_some() => {
                return Err("--internal-api-socket needs a secret to check: set --internal-api-secret-file (or --control-plane-secret-file)".into());
            }
            (None, None) => return Ok(None),
        };
        crate::auth::read_shared_secret(flag, &secret_file)?;
        let config = InternalApiConfig {
            secret_flag: flag,
            secret_file,
            socket: self.internal_api_socket.clone(),
            socket_group: self.internal_api_socket_group.clone(),
        };
        if let Some(socket) = config.socket_config() {
            proto::uds::check(&socket).map_err(|e| format!("--internal-api-socket: {e}"))?;
        }
        Ok(Some(config))
    }

    /// `--tenant-provider-key` as provider → env name.
    fn tenant_keys(&self) -> Result<BTreeMap<String, String>, String> {
        let mut keys = BTreeMap::new();
        for given in &self.tenant_provider_keys {
            let (provider, env) = given.split_once('=').ok_or_else(|| {
                format!("--tenant-provider-key {given:?}: write PROVIDER=ENV_NAME (e.g. llm=OPENAI_API_KEY)")
            })?;
            crate::api::names::provider_name("--tenant-provider-key", provider)
                .map_err(|e| e.to_string())?;
            let env_ok = env
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                && env
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !env_ok {
                return Err(format!(
                    "--tenant-provider-key {given:?}: ENV_NAME must be upper-case letters, digits and _ (e.g. OPENAI_API_KEY)"
                ));
            }
            if keys.insert(provider.to_owned(), env.to_owned()).is_some() {
                return Err(format!(
                    "--tenant-provider-key: provider {provider:?} is given twice"
                ));
            }
        }
        Ok(keys)
    }
}
