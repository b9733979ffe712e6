//! `gateway-shim serve --check-config`: everything start-up loads (flags, the
//! credential policy, the signing key file, the store URL, the OIDC issuer URL, the
//! directories secrets are written to, the TLS files), checked without serving or
//! connecting.

use std::path::Path;

use proto::cli::ConfigCheck;

use super::GatewayConfig;
use crate::authz::PolicyFile;
use crate::store::Store;

/// Checks `config` as start-up would use it.
pub fn check(config: &GatewayConfig) -> ConfigCheck {
    let mut report = ConfigCheck::default();
    report.expect(
        "--compute-driver-socket",
        socket_path(&config.compute_driver_socket),
        "path fits",
    );
    if let Some(socket) = &config.credentials_driver_socket {
        report.expect(
            "--credentials-driver-socket",
            socket_path(socket),
            "path fits",
        );
    }
    if let Some(summary) = report.expect("--db-url", Store::check_url(&config.db_url), "syntax") {
        report.note(format!("--db-url: {summary}"));
    }
    if let Some(file) = &config.local_token_file {
        let parent = file.parent().unwrap_or(Path::new("."));
        report.expect(
            "--local-token-file",
            private_parent(parent),
            "directory private",
        );
    }
    if let Some(file) = &config.sandbox_token_key_file {
        report.expect(
            "--sandbox-token-key-file",
            crate::auth::SigningKey::read_file(file).map(drop),
            "key readable, 32 bytes or more, not readable by others",
        );
    }
    if let Some(file) = &config.credential_policy {
        report.expect(
            "--credential-policy",
            PolicyFile::load(file).map(drop),
            "policy parses",
        );
    }
    if let Some(file) = &config.access_rules {
        report.expect(
            "--access-rules",
            crate::authz::AccessRules::load(file).map(|r| r.rules.len()),
            "rules parse",
        );
    }
    if let Some(endpoint) = &config.sandbox_endpoint {
        report.expect("--sandbox-endpoint", http_url(endpoint), "URL");
    }
    if let Some(oidc) = &config.oidc {
        report.expect("--oidc-issuer", http_url(&oidc.issuer), "URL (not fetched)");
    }
    if let Some(control_plane) = &config.control_plane {
        report.expect(
            "--control-plane-url",
            crate::control_plane::ControlPlane::new(control_plane).map(drop),
            "secret read (the control plane is not contacted by the check)",
        );
    }
    if let Some(internal) = &config.internal_api {
        report.expect(
            internal.secret_flag,
            crate::auth::read_shared_secret(internal.secret_flag, &internal.secret_file),
            "secret read: /internal/usage routes served on the admin port",
        );
        if let Some(socket) = internal.socket_config() {
            report.expect(
                "--internal-api-socket",
                proto::uds::check(&socket).map_err(|e| e.to_string()),
                "the internal API is served on this socket too",
            );
        }
    }
    if let Some(proxy) = &config.trusted_proxy {
        report.expect(
            "--trusted-proxy-listen",
            crate::auth::TrustedProxy::load(proxy.clone()).map(|p| p.checks()),
            "the proxy is checked",
        );
    }
    if let Some(tls) = &config.tls {
        report.expect(
            "--tls-cert",
            crate::tls::Tls::load(tls).map(drop),
            "certificate, key and client CA load and match",
        );
    }
    report
}

fn socket_path(path: &Path) -> Result<(), String> {
    let len = path.as_os_str().len();
    if len > proto::uds::MAX_SOCKET_PATH {
        return Err(format!(
            "{} is {len} bytes; a socket path may have {} at most: use a shorter directory",
            path.display(),
            proto::uds::MAX_SOCKET_PATH
        ));
    }
    Ok(())
}

/// A directory a secret file is written to: private if it exists (start-up creates a
/// missing one 0700).
fn private_parent(dir: &Path) -> Result<(), String> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if dir.exists() {
        proto::private::check_dir(dir)
    } else {
        Ok(())
    }
}

fn http_url(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!(
            "{text:?}: scheme {other:?}; use http:// or https://"
        )),
    }
}
