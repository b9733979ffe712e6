//! The `--control-plane-*` flags of `serve`: an optional external control plane
//! ([`crate::control_plane`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use proto::cli::parse_duration;

use crate::control_plane::ControlPlaneConfig;

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
}

impl Default for ControlPlaneArgs {
    fn default() -> Self {
        Self {
            control_plane_url: None,
            control_plane_secret_file: None,
            control_plane_insecure_http: false,
            control_plane_timeout: Duration::from_secs(5),
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
        Ok(config)
    }
}
