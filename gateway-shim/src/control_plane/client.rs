//! Requests to the control plane: over HTTPS (rustls with ring), over a Unix socket
//! (a control plane running as a sidecar in the same pod; HTTP/1.1 with `hyperlocal`),
//! or over plain HTTP only when the operator says so. Every request carries the
//! internal shared secret in `x-internal-secret` and is bounded by a timeout; the
//! secret never appears in logs or errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use proto::Secret;
use serde::Deserialize;

use super::cache::{Answer, Digest, Fetched, KeyAnswer, Plan};

/// The header carrying the internal shared secret, both ways.
pub const SECRET_HEADER: &str = "x-internal-secret";

/// Where the control plane listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `https://…` (or `http://…` with the insecure flag): the base URL.
    Http(String),
    /// `unix:/path/to.sock`.
    Unix(PathBuf),
}

/// The control plane's configuration (`--control-plane-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPlaneConfig {
    /// Where it listens.
    pub address: Address,
    /// The file holding the internal shared secret (not readable by others).
    pub secret_file: PathBuf,
    /// Bound on one request.
    pub timeout: Duration,
    /// Platform providers tenants may override with their own key: provider name →
    /// the name of the key in the tenant's provider-env (`--tenant-provider-key`).
    pub tenant_keys: std::collections::BTreeMap<String, String>,
}

impl ControlPlaneConfig {
    /// The configuration from the flags' values: both or neither.
    ///
    /// # Errors
    /// A message naming the missing or malformed flag.
    pub fn from_flags(
        url: Option<&str>,
        secret_file: Option<PathBuf>,
        insecure_http: bool,
        timeout: Duration,
    ) -> Result<Option<Self>, String> {
        let (url, secret_file) = match (url.filter(|u| !u.is_empty()), secret_file) {
            (None, None) => return Ok(None),
            (Some(url), Some(file)) => (url, file),
            (Some(_), None) => {
                return Err(
                    "--control-plane-url needs --control-plane-secret-file (the internal shared secret)"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return Err("--control-plane-secret-file needs --control-plane-url".into());
            }
        };
        let address = if let Some(path) = url.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!(
                    "--control-plane-url {url}: write unix:/absolute/path.sock"
                ));
            }
            Address::Unix(PathBuf::from(path))
        } else if url.starts_with("https://") {
            Address::Http(url.trim_end_matches('/').to_owned())
        } else if url.starts_with("http://") {
            if !insecure_http {
                return Err(format!(
                    "--control-plane-url {url}: plain http sends the internal secret in clear; use https:// or unix:, or pass --control-plane-insecure-http"
                ));
            }
            Address::Http(url.trim_end_matches('/').to_owned())
        } else {
            return Err(format!(
                "--control-plane-url {url}: use https://host, unix:/path.sock (or http:// with --control-plane-insecure-http)"
            ));
        };
        Ok(Some(Self {
            address,
            secret_file,
            timeout,
            tenant_keys: std::collections::BTreeMap::new(),
        }))
    }
}

/// A client of the control plane.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    transport: Transport,
    secret: Secret,
    timeout: Duration,
}

#[derive(Clone, Debug)]
enum Transport {
    Http {
        client: reqwest::Client,
        base: String,
    },
    Unix {
        client: Box<hyper_util::client::legacy::Client<hyperlocal::UnixConnector, Full<Bytes>>>,
        socket: PathBuf,
    },
}

/// A reply: its status and body.
struct Reply {
    status: u16,
    body: Bytes,
}

/// A tenant's own provider keys by env name (only the names the operator allows).
pub type TenantEnv = Arc<BTreeMap<String, Secret>>;

#[derive(Deserialize)]
struct EnvReply {
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct KeyReply {
    active: bool,
    #[serde(default)]
    consumer: String,
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    rate_per_min: u32,
    #[serde(default)]
    burst: u32,
}

impl ControlPlane {
    /// A client for `config`, reading its secret.
    ///
    /// # Errors
    /// A message naming the flag to fix.
    pub fn new(config: &ControlPlaneConfig) -> Result<Self, String> {
        let secret =
            crate::auth::read_shared_secret("--control-plane-secret-file", &config.secret_file)?;
        let transport = match &config.address {
            Address::Http(base) => Transport::Http {
                client: reqwest::Client::builder()
                    .timeout(config.timeout)
                    .build()
                    .map_err(|e| format!("--control-plane-url: HTTP client: {e}"))?,
                base: base.clone(),
            },
            Address::Unix(socket) => Transport::Unix {
                client: Box::new(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(hyperlocal::UnixConnector),
                ),
                socket: socket.clone(),
            },
        };
        Ok(Self {
            transport,
            secret,
            timeout: config.timeout,
        })
    }

    /// Asks the control plane about the key with `digest`.
    pub async fn resolve_key(&self, digest: &Digest) -> Fetched {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let reply = match self
            .get(&format!("/internal/keys/resolve?sha256={hex}"))
            .await
        {
            Ok(reply) => reply,
            Err(why) => return Fetched::Unreachable(why),
        };
        if reply.status >= 500 {
            return Fetched::Unreachable(format!("the control plane answered {}", reply.status));
        }
        if reply.status != 200 {
            return Fetched::Answer(KeyAnswer::Refused(format!(
                "the control plane answered {}",
                reply.status
            )));
        }
        let answer = match serde_json::from_slice::<KeyReply>(&reply.body) {
            Ok(key) if !key.active => KeyAnswer::Refused("inactive".into()),
            Ok(key)
                if crate::auth::is_label_value(&key.tenant_id)
                    && !key.consumer.is_empty()
                    && key.consumer.len() <= 253 =>
            {
                KeyAnswer::Active(Plan {
                    consumer: key.consumer,
                    tenant: key.tenant_id,
                    rate_per_min: key.rate_per_min,
                    burst: key.burst,
                })
            }
            Ok(_) => KeyAnswer::Refused("malformed answer: consumer or tenant_id".into()),
            Err(e) => KeyAnswer::Refused(format!("malformed answer: {e}")),
        };
        Fetched::Answer(answer)
    }

    /// Asks the control plane for `tenant`'s own provider keys, keeping only the names
    /// in `allowed`. A tenant it does not know (404) has none.
    pub async fn provider_env(
        &self,
        tenant: &str,
        allowed: &BTreeSet<String>,
    ) -> Fetched<TenantEnv> {
        if !crate::auth::is_label_value(tenant) {
            return Fetched::Answer(Answer::Refused("not a tenant id".into()));
        }
        let reply = match self
            .get(&format!("/internal/tenants/{tenant}/provider-env"))
            .await
        {
            Ok(reply) => reply,
            Err(why) => return Fetched::Unreachable(why),
        };
        match reply.status {
            500.. => Fetched::Unreachable(format!("the control plane answered {}", reply.status)),
            404 => Fetched::Answer(Answer::Active(TenantEnv::default())),
            200 => Fetched::Answer(match serde_json::from_slice::<EnvReply>(&reply.body) {
                Ok(reply) => Answer::Active(Arc::new(
                    reply
                        .env
                        .into_iter()
                        .filter(|(name, value)| {
                            allowed.contains(name) && http::HeaderValue::from_str(value).is_ok()
                        })
                        .map(|(name, value)| (name, Secret::new(value)))
                        .collect(),
                )),
                Err(e) => Answer::Refused(format!("malformed provider-env: {e}")),
            }),
            status => Fetched::Answer(Answer::Refused(format!(
                "the control plane answered {status}"
            ))),
        }
    }

    /// `GET path` with the secret, within the timeout.
    async fn get(&self, path: &str) -> Result<Reply, String> {
        let request = async {
            match &self.transport {
                Transport::Http { client, base } => {
                    let response = client
                        .get(format!("{base}{path}"))
                        .header(SECRET_HEADER, self.secret.expose())
                        .send()
                        .await
                        .map_err(|e| e.without_url().to_string())?;
                    let status = response.status().as_u16();
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| e.without_url().to_string())?;
                    Ok(Reply { status, body })
                }
                Transport::Unix { client, socket } => {
                    let uri: http::Uri = hyperlocal::Uri::new(socket, path).into();
                    let request = http::Request::get(uri)
                        .header(SECRET_HEADER, self.secret.expose())
                        .body(Full::new(Bytes::new()))
                        .map_err(|e| e.to_string())?;
                    let response = client.request(request).await.map_err(|e| e.to_string())?;
                    let status = response.status().as_u16();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    Ok(Reply { status, body })
                }
            }
        };
        tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}
