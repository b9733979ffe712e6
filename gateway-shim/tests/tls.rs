//! TLS and mTLS on the gateway's API listener, with the real `serve` binary, the real
//! CLI and a gRPC client, all against certificates from a test CA: the CA verifies the
//! gateway; required client certificates refuse clients without one or with one from
//! another CA; a certificate rotated on disk is served without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use proto::pb::gateway::v1 as pb;
use proto::testing::SpawnedDriver;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use support::serve::{GATEWAY, Serve};

/// A test certificate authority.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// Writes the CA certificate to `dir/name` and returns its path.
    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.issuer.pem()).unwrap();
        path
    }

    /// A leaf certificate and key (PEM) for `sans`, for a server or a client.
    fn leaf(&self, sans: &[&str], client: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, sans[0]);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes a leaf's certificate and key (0600) as `dir/name.crt` and `dir/name.key`,
    /// each replaced at once.
    fn write_leaf(
        &self,
        dir: &Path,
        name: &str,
        sans: &[&str],
        client: bool,
    ) -> (PathBuf, PathBuf) {
        let (cert, key) = self.leaf(sans, client);
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        replace(&key_path, &key);
        replace(&cert_path, &cert);
        (cert_path, key_path)
    }
}

/// Replaces `path` with `contents` at once (0600).
fn replace(path: &Path, contents: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// A compute driver and a TLS gateway with a local token.
struct World {
    dir: tempfile::TempDir,
    api: SocketAddr,
    token: PathBuf,
    gateway: Serve,
    _compute: SpawnedDriver,
}

impl World {
    async fn start(dir: tempfile::TempDir, tls: &[&str]) -> Self {
        let token = dir.path().join("private/gateway.token");
        let mut flags = vec!["--local-token-file", token.to_str().unwrap()];
        flags.extend_from_slice(tls);
        let (compute, gateway, api) = support::serve::with_compute(dir.path(), &flags).await;
        Self {
            dir,
            api,
            token,
            gateway,
            _compute: compute,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.api)
    }

    /// `gateway-shim sandbox list` over TLS with `extra` flags.
    fn list(&self, extra: &[&str]) -> Output {
        Command::new(GATEWAY)
            .args([
                "sandbox",
                "list",
                "--gateway",
                &self.url(),
                "--timeout",
                "5s",
            ])
            .arg("--token-file")
            .arg(&self.token)
            .args(extra)
            .env("OPENSHELL_CONFIG_DIR", self.dir.path().join("cfg"))
            .env_remove("OPENSHELL_CA_FILE")
            .env_remove("OPENSHELL_CLIENT_CERT")
            .env_remove("OPENSHELL_CLIENT_KEY")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn list_ok(&self, extra: &[&str]) {
        let output = self.list(extra);
        assert!(
            output.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Expects the connection itself to be refused (not a call).
    fn list_refused(&self, extra: &[&str]) -> String {
        let output = self.list(extra);
        assert!(!output.status.success(), "{extra:?} was let in");
        let said = String::from_utf8(output.stderr).unwrap();
        // Refused in the handshake, or (TLS 1.3 client certificates) right after it.
        assert!(
            said.contains("cannot reach the gateway") || said.contains("client certificate"),
            "{extra:?}: {said}"
        );
        said
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_a_grpc_client_reach_a_tls_gateway_that_the_test_ca_vouches_for() {
    let dir = proto::testing::short_dir();
    let ca = Ca::new("test CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let (cert, key) = ca.write_leaf(dir.path(), "server", &["127.0.0.1", "localhost"], false);
    let world = World::start(dir, &["--tls-cert", s(&cert), "--tls-key", s(&key)]).await;

    // The CLI, trusting the CA; the local token still counts as loopback over TLS.
    world.list_ok(&["--ca-file", s(&ca_file)]);
    let unverified = world.list_refused(&[]);
    assert!(
        unverified.contains("certificate") || unverified.contains("UnknownIssuer"),
        "{unverified}"
    );

    // A gRPC client of its own.
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(&ca_file).unwrap()),
    );
    let channel = tonic::transport::Endpoint::from_shared(world.url())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = std::fs::read_to_string(&world.token).unwrap();
    let mut client = pb::gateway_client::GatewayClient::with_interceptor(
        channel,
        support::Bearer::new(token.trim()),
    );
    client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap();

    // The discovery document over HTTPS (HTTP/1.1 by ALPN), as `gateway add` reads it.
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca_file).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let document: serde_json::Value = http
        .get(format!("{}/auth/oidc-config", world.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["auth_enabled"], false);

    // Plain HTTP/2 on the TLS port gets nowhere.
    let plain = Command::new(GATEWAY)
        .args(["sandbox", "list", "--timeout", "3s", "--gateway"])
        .arg(format!("http://{}", world.api))
        .arg("--token-file")
        .arg(&world.token)
        .output()
        .unwrap();
    assert!(!plain.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_refuse_clients_without_one_or_from_another_ca() {
    let dir = proto::testing::short_dir();
    let ca = Ca::new("server CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let clients = Ca::new("client CA");
    let clients_file = clients.write(dir.path(), "clients.pem");
    let stranger = Ca::new("another CA");
    let (cert, key) = ca.write_leaf(dir.path(), "server", &["127.0.0.1"], false);
    let (good_cert, good_key) = clients.write_leaf(dir.path(), "alice", &["alice"], true);
    let (bad_cert, bad_key) = stranger.write_leaf(dir.path(), "mallory", &["mallory"], true);
    let world = World::start(
        dir,
        &[
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--tls-client-ca",
            s(&clients_file),
            "--tls-client-auth",
            "required",
        ],
    )
    .await;
    let trust = ["--ca-file", s(&ca_file)];
    world.list_refused(&trust);
    world.list_refused(&[
        trust[0],
        trust[1],
        "--client-cert",
        s(&bad_cert),
        "--client-key",
        s(&bad_key),
    ]);
    world.list_ok(&[
        trust[0],
        trust[1],
        "--client-cert",
        s(&good_cert),
        "--client-key",
        s(&good_key),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates_admit_none_but_refuse_a_stranger() {
    let dir = proto::testing::short_dir();
    let ca = Ca::new("server CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let clients = Ca::new("client CA");
    let clients_file = clients.write(dir.path(), "clients.pem");
    let stranger = Ca::new("another CA");
    let (cert, key) = ca.write_leaf(dir.path(), "server", &["127.0.0.1"], false);
    let (bad_cert, bad_key) = stranger.write_leaf(dir.path(), "mallory", &["mallory"], true);
    let world = World::start(
        dir,
        &[
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--tls-client-ca",
            s(&clients_file),
        ],
    )
    .await;
    world.list_ok(&["--ca-file", s(&ca_file)]);
    world.list_refused(&[
        "--ca-file",
        s(&ca_file),
        "--client-cert",
        s(&bad_cert),
        "--client-key",
        s(&bad_key),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotated_on_disk_is_served_without_a_restart() {
    let dir = proto::testing::short_dir();
    let old_ca = Ca::new("old CA");
    let old_file = old_ca.write(dir.path(), "old.pem");
    let new_ca = Ca::new("new CA");
    let new_file = new_ca.write(dir.path(), "new.pem");
    let (cert, key) = old_ca.write_leaf(dir.path(), "server", &["127.0.0.1"], false);
    let world = World::start(dir, &["--tls-cert", s(&cert), "--tls-key", s(&key)]).await;
    world.list_ok(&["--ca-file", s(&old_file)]);
    world.list_refused(&["--ca-file", s(&new_file)]);

    new_ca.write_leaf(world.dir.path(), "server", &["127.0.0.1"], false);
    let mut rotated = false;
    for _ in 0..40 {
        if world.list(&["--ca-file", s(&new_file)]).status.success() {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        rotated,
        "the new certificate was never served:\n{}",
        world.gateway.log()
    );
    world.list_refused(&["--ca-file", s(&old_file)]);
    assert!(world.gateway.log().contains("TLS certificate reloaded"));
}

#[test]
fn tls_flags_are_checked_and_name_the_flag_to_fix() {
    let dir = proto::testing::short_dir();
    let socket = dir.path().join("c.sock");
    let check = |extra: &[&str]| {
        let output = Command::new(GATEWAY)
            .args([
                "serve",
                "--check-config",
                "--compute-driver-socket",
                s(&socket),
            ])
            .args(extra)
            .output()
            .unwrap();
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let (ok, said) = check(&["--tls-cert", "/nonexistent.crt"]);
    assert!(!ok && said.contains("--tls-key"), "{said}");
    let (ok, said) = check(&["--tls-client-ca", "/nonexistent.pem"]);
    assert!(!ok && said.contains("--tls-cert"), "{said}");
    let ca = Ca::new("ca");
    let (cert, key) = ca.write_leaf(dir.path(), "server", &["127.0.0.1"], false);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, said) = check(&["--tls-cert", s(&cert), "--tls-key", s(&key)]);
    assert!(!ok && said.contains("chmod 600"), "{said}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, other_key) = ca.write_leaf(dir.path(), "other", &["127.0.0.1"], false);
    let (ok, said) = check(&["--tls-cert", s(&cert), "--tls-key", s(&other_key)]);
    assert!(!ok && said.contains("--tls-cert"), "{said}");
    let (ok, said) = check(&["--tls-cert", s(&cert), "--tls-key", s(&key)]);
    assert!(ok, "{said}");
}

/// A gRPC client over TLS trusting `ca_file`, with the client certificate `identity`
/// when given, sending `headers` with every call.
async fn tls_client(
    addr: SocketAddr,
    ca_file: &Path,
    identity: Option<(&Path, &Path)>,
    headers: &[(&str, &str)],
) -> Result<support::Client, tonic::transport::Error> {
    let mut tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(ca_file).unwrap()),
    );
    if let Some((cert, key)) = identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ));
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await?;
    Ok(pb::gateway_client::GatewayClient::with_interceptor(
        channel,
        support::Bearer::headers(headers),
    ))
}

/// The trusted-proxy listener checking the proxy by its client certificate (the real
/// `serve` binary with the flags an operator writes): the proxy's certificate lets its
/// headers in; no certificate, or one another CA signed, gets no call through; the
/// API listener ignores the same headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_checked_by_its_client_certificate_is_the_only_one_let_in() {
    let dir = proto::testing::short_dir();
    let ca = Ca::new("server CA");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let proxies = Ca::new("proxy CA");
    let proxies_file = proxies.write(dir.path(), "proxies.pem");
    let stranger = Ca::new("another CA");
    let (cert, key) = ca.write_leaf(dir.path(), "server", &["127.0.0.1"], false);
    let (proxy_cert, proxy_key) = proxies.write_leaf(dir.path(), "proxy", &["proxy"], true);
    let (bad_cert, bad_key) = stranger.write_leaf(dir.path(), "mallory", &["mallory"], true);
    let proxy_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listen = proxy_addr.to_string();
    let world = World::start(
        dir,
        &[
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--trusted-proxy-listen",
            &listen,
            "--trusted-proxy-client-ca",
            s(&proxies_file),
            "--trusted-proxy-principal-header",
            "x-maas-user",
        ],
    )
    .await;
    let identity = [("x-maas-user", "carol")];
    let mut proxy = tls_client(
        proxy_addr,
        &ca_file,
        Some((&proxy_cert, &proxy_key)),
        &identity,
    )
    .await
    .unwrap();
    let carols = proxy
        .create_sandbox(support::create_request("carols"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(carols.owner, "proxy.carol");
    assert!(world.gateway.log().contains("client certificate (TLS)"));

    // No certificate, or another CA's: no call gets through.
    for client_identity in [None, Some((bad_cert.as_path(), bad_key.as_path()))] {
        let refused = match tls_client(proxy_addr, &ca_file, client_identity, &identity).await {
            Err(_) => true,
            Ok(mut client) => client
                .list_sandboxes(pb::ListSandboxesRequest {})
                .await
                .is_err(),
        };
        assert!(refused, "a client without the proxy's certificate got in");
    }
    // The API listener: the same headers are no identity.
    let mut api = tls_client(world.api, &ca_file, None, &identity)
        .await
        .unwrap();
    let status = api
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}
