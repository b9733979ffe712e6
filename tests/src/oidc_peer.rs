//! The OIDC/OAuth2 test peer (`tests/oidc-peer`, npm `oidc-provider`, Keycloak-shaped)
//! for the credentials driver's and the gateway's tests: installs its npm packages once
//! (under a file lock), starts it on loopback, mints tokens, rotates keys, injects
//! failures. Killed when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::fcntl::{Flock, FlockArg};
use serde_json::{Value, json};

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-peer")
}

/// Installs the peer's npm dependencies once (under a file lock: tests run in parallel).
fn install_peer() {
    let dir = peer_dir();
    let lock = std::fs::File::create(dir.join(".install.lock")).unwrap();
    let _guard = Flock::lock(lock, FlockArg::LockExclusive).unwrap();
    if dir.join("node_modules/oidc-provider").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .expect("npm is installed");
    assert!(status.success(), "npm ci for the OIDC test peer failed");
}

/// A running OIDC peer on loopback; killed when dropped.
pub struct OidcPeer {
    child: Child,
    pub issuer: String,
    pub base: String,
    http: reqwest::Client,
}

impl OidcPeer {
    pub async fn start() -> Self {
        Self::start_with(json!({})).await
    }

    /// A peer with config overrides (e.g. `{"accessTokenTTL": 4}`).
    pub async fn start_with(overrides: Value) -> Self {
        install_peer();
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(config.path(), overrides.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg("server.mjs")
            .arg(config.path())
            .current_dir(peer_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).expect("the peer's ready line");
        let issuer = ready["issuer"].as_str().unwrap().to_owned();
        let base = format!("http://127.0.0.1:{}", ready["port"]);
        Self {
            child,
            issuer,
            base,
            http: reqwest::Client::new(),
        }
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        self.http
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The peer's counters: `token_requests`, `by_grant` (grant type -> successes),
    /// `errors` (OAuth2 error -> count), `denied` (sign-ins denied at the form).
    pub async fn stats(&self) -> Value {
        let url = format!("{}/__peer/stats", self.base);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Successful token requests of `grant` (e.g. `refresh_token`).
    pub async fn grants(&self, grant: &str) -> u64 {
        self.stats().await["by_grant"][grant].as_u64().unwrap_or(0)
    }

    /// Token requests seen since start (or the last reset).
    pub async fn token_requests(&self) -> u64 {
        self.stats().await["token_requests"].as_u64().unwrap()
    }

    /// Makes the next `count` token requests fail with `status`.
    pub async fn fail_next(&self, count: u32, status: u16) {
        self.post("/__peer/fail", json!({ "count": count, "status": status }))
            .await;
    }

    /// Puts a new signing key first in the JWKS (`retire`: drop the older ones);
    /// returns the new key id.
    pub async fn rotate(&self, retire: bool) -> String {
        self.post("/__peer/rotate", json!({ "retire": retire }))
            .await["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A signed user access token, as a gateway login would hold.
    pub async fn mint(&self, body: Value) -> String {
        self.post("/__peer/mint", body).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for OidcPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The payload of a JWT (signature not checked: the peer signed it).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
