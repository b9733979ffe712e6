//! A gateway served in-process on loopback against drivers on real sockets, and a
//! client holding its local token.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod oidc;
pub mod serve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway_shim::GatewayConfig;
use proto::pb::gateway::v1 as pb;
use proto::pb::gateway::v1::gateway_client::GatewayClient;
use proto::pb::health::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tokio::sync::oneshot;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub token_file: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), gateway_shim::Error>>>,
}

/// Gateway configuration for tests: SQLite in memory, a local token in `dir`, short
/// deadlines.
pub fn args(dir: &Path, compute: &Path, credentials: Option<&Path>) -> GatewayConfig {
    GatewayConfig {
        credentials_driver_socket: credentials.map(Path::to_owned),
        listen: "127.0.0.1:0".parse().unwrap(),
        db_url: "sqlite::memory:".into(),
        local_token_file: Some(dir.join("gateway.token")),
        sandbox_token_ttl: Duration::from_secs(3600),
        driver_call_timeout: Duration::from_secs(3),
        ..GatewayConfig::new(compute)
    }
}

impl Gateway {
    pub async fn start(args: GatewayConfig) -> Self {
        let listener = tokio::net::TcpListener::bind(args.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token_file = args.local_token_file.clone().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway_shim::run_gateway(&args, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        for _ in 0..200 {
            if token_file.exists() {
                break;
            }
            if task.is_finished() {
                let result = task.await.unwrap();
                panic!("the gateway stopped at start: {result:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            addr,
            token_file,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A client authenticated with `token`.
    pub async fn client_with(&self, token: &str) -> Client {
        GatewayClient::with_interceptor(self.channel().await, Bearer::new(token))
    }

    /// A client with the local (admin) token.
    pub async fn client(&self) -> Client {
        let token = std::fs::read_to_string(&self.token_file).unwrap();
        self.client_with(token.trim()).await
    }

    pub async fn health(&self) -> Option<ServingStatus> {
        let mut client = HealthClient::new(self.channel().await);
        let reply = client.check(HealthCheckRequest::default()).await.ok()?;
        Some(reply.get_ref().status())
    }

    pub async fn wait_health(&self, want: ServingStatus) {
        for _ in 0..400 {
            if self.health().await == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("gateway health never became {want:?}");
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Headers every call of a client sends (a bearer token, or a proxy's identity).
#[derive(Clone)]
pub struct Bearer(
    Vec<(
        tonic::metadata::MetadataKey<tonic::metadata::Ascii>,
        MetadataValue<tonic::metadata::Ascii>,
    )>,
);

impl Bearer {
    /// Sends `authorization: Bearer <token>`.
    pub fn new(token: &str) -> Self {
        Self::headers(&[("authorization", &format!("Bearer {token}"))])
    }

    /// Sends these headers (repeated names are sent repeatedly).
    pub fn headers(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap()))
                .collect(),
        )
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        for (name, value) in &self.0 {
            request.metadata_mut().append(name.clone(), value.clone());
        }
        Ok(request)
    }
}

pub type Client = GatewayClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

/// A client of the gateway at `addr` with bearer `token`.
pub async fn client_at(addr: SocketAddr, token: &str) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    GatewayClient::with_interceptor(channel, Bearer::new(token))
}

/// A client of the gateway at `addr` sending `headers` with every call.
pub async fn client_with_headers(addr: SocketAddr, headers: &[(&str, &str)]) -> Client {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    GatewayClient::with_interceptor(channel, Bearer::headers(headers))
}

/// The names of the sandboxes `client` lists.
pub async fn sandbox_names(client: &mut Client) -> Vec<String> {
    client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes
        .into_iter()
        .map(|s| s.name)
        .collect()
}

/// The names (keys, for admins) of the providers `client` lists.
pub async fn provider_names(client: &mut Client) -> Vec<String> {
    client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner()
        .providers
        .into_iter()
        .map(|p| p.name)
        .collect()
}

pub fn create_request(name: &str) -> pb::CreateSandboxRequest {
    pb::CreateSandboxRequest {
        name: name.into(),
        spec: Some(pb::SandboxSpec {
            command: vec!["sleep".into(), "600".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn by_name(name: &str) -> pb::SandboxRef {
    pb::SandboxRef {
        id: String::new(),
        name: name.into(),
    }
}

pub fn phase(sandbox: &pb::Sandbox) -> String {
    sandbox.status.clone().unwrap_or_default().phase
}

/// Polls GetSandbox until its phase is `want`.
pub async fn wait_phase(client: &mut Client, name: &str, want: &str) -> pb::Sandbox {
    let mut last = String::new();
    for _ in 0..400 {
        let reply = tokio::time::timeout(Duration::from_secs(5), client.get_sandbox(by_name(name)))
            .await
            .unwrap_or_else(|_| panic!("GetSandbox {name} did not answer in 5 s"));
        if let Ok(reply) = reply {
            let sandbox = reply.into_inner();
            last = phase(&sandbox);
            if last == want {
                return sandbox;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} never reached {want} (last {last})");
}

/// Writes the credential policy `yaml` to `dir/policy.yaml` and returns its path.
pub fn credential_policy(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Starts the real credentials-driver in this process on `dir/k.sock`, with `config`
/// (YAML) and the secret files `secrets` (name, value); returns its socket.
pub fn credentials_driver(dir: &Path, config: &str, secrets: &[(&str, &str)]) -> PathBuf {
    use clap::Parser as _;
    let secrets_dir = dir.join("secrets");
    std::fs::create_dir_all(&secrets_dir).unwrap();
    for (name, value) in secrets {
        std::fs::write(secrets_dir.join(name), value).unwrap();
    }
    let config_path = dir.join("credentials.yaml");
    std::fs::write(&config_path, config).unwrap();
    let socket = dir.join("k.sock");
    let args = credentials_driver::Args::try_parse_from([
        "credentials-driver",
        "--socket",
        socket.to_str().unwrap(),
        "--config",
        config_path.to_str().unwrap(),
        "--secrets-dir",
        secrets_dir.to_str().unwrap(),
    ])
    .unwrap();
    tokio::spawn(credentials_driver::run_until(args, std::future::pending()));
    socket
}

/// The driver binaries live beside the gateway's (`gateway`: its path); builds them if
/// a single-crate test run did not, and returns their directory.
pub fn ensure_driver_binaries(gateway: &str) -> PathBuf {
    let dir = Path::new(gateway).parent().unwrap().to_path_buf();
    if ["compute-driver", "credentials-driver"]
        .iter()
        .all(|b| dir.join(b).exists())
    {
        return dir;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "-p", "compute-driver", "-p", "credentials-driver"])
        .status()
        .unwrap();
    assert!(status.success(), "building the driver binaries failed");
    dir
}

/// A socket config for `path` with the defaults.
pub fn socket(path: &Path) -> proto::SocketConfig {
    proto::SocketConfig {
        path: path.to_owned(),
        ..Default::default()
    }
}

/// Serves the mock credentials driver (`mock-static`, `mock-exchange`) on `dir/k.sock`
/// for the rest of the test; returns the socket.
pub fn serve_mock_credentials(dir: &Path) -> PathBuf {
    let socket_path = dir.join("k.sock");
    let config = socket(&socket_path);
    let driver =
        conformance::mock::MockCredentials::with_defaults(conformance::mock::Faults::default());
    tokio::spawn(async move {
        conformance::mock::serve_credentials(&config, driver, std::future::pending()).await
    });
    socket_path
}

/// Serves the mock compute driver `mock` on `path`.
pub async fn serve_mock_compute(
    path: &Path,
    mock: conformance::mock::MockCompute,
) -> conformance::mock::MockServer {
    conformance::mock::MockServer::compute(socket(path), mock)
        .await
        .unwrap()
}

/// Runs `python3 script args`, first installing `requirements` with pip when
/// `imports` (a Python import statement) fails; returns whether it succeeded and its
/// output (stdout then stderr).
pub fn run_python(
    requirements: &Path,
    imports: &str,
    script: &Path,
    args: &[&std::ffi::OsStr],
) -> (bool, String) {
    use std::process::Command;
    let ready = Command::new("python3")
        .args(["-c", imports])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(requirements)
            .status()
            .expect("python3 is needed");
        assert!(
            status.success(),
            "pip install -r {}",
            requirements.display()
        );
    }
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes `secret` to `dir/name`, 0600 (as a shared-secret flag requires); returns the
/// path.
pub fn secret_file(dir: &Path, name: &str, secret: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, secret).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A loopback address with a port free a moment ago (for listeners the gateway binds).
pub fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}
