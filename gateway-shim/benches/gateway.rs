//! Gateway benchmarks, printed as tables:
//! 1. a sandbox resolving its provider's credential through the gateway (TCP, sandbox
//!    token auth, store reads, UDS call to the real credentials-driver), and fetching
//!    its inference bundle (the same credential behind its owner's route), beside the
//!    same credential resolved directly on the driver's socket and through a bare
//!    proxy (the same two HTTP/2 stacks around the driver's call and nothing else: the
//!    floor under any gateway of this shape), at 1, 16 and 64 callers;
//! 2. sandbox create throughput through the gateway (SQLite file store) beside creates
//!    made directly on the driver: the mock compute driver, and the real compute-driver
//!    binary's process backend;
//! 3. authentication: OIDC JWT verification alone (warm JWKS), and a cheap call
//!    (ListProviders) with the local token beside the same call with an OIDC token and
//!    through the trusted-proxy listener (address and shared-secret checks, identity,
//!    tenant and attributes from headers), and with API keys: a local key, a key of the
//!    control-plane test peer (Unix socket) with a warm cache, and a cold key on every
//!    call (one control-plane request each).
//!
//! Needs node (the OIDC test peer).
//! Everything runs in this process on one 2-worker runtime. Run:
//! `cargo bench -p gateway-shim --bench gateway` (`BENCH_SECONDS`, default 3;
//! `BENCH_RESOLVE_ONLY=1` stops after the resolve rows, for alternated runs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/bare_proxy.rs"]
mod bare_proxy;
#[path = "common/measure.rs"]
mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conformance::mock::{Faults, MockCompute};
use measure::{measure, row, seconds};
use proto::pb::compute::v1::compute_driver_client::ComputeDriverClient;
use proto::pb::credentials::v1::ResolveCredentialRequest;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::pb::gateway::v1 as pb;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let length = seconds();
    let dir = proto::testing::short_dir();
    let compute_socket = dir.path().join("c.sock");
    let credentials_socket = support::credentials_driver(
        dir.path(),
        "credentials:\n  bench:\n    kind: static\n    token_ref: bench\n",
        &[("bench", "bench-token-value\n")],
    );
    let mock = MockCompute::new(Faults::default());
    let _compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    let gateway = start_for_creates(dir.path(), &compute_socket, Some(&credentials_socket)).await;
    let mut admin = gateway.client().await;
    admin
        .create_provider(pb::Provider {
            name: "bench".into(),
            r#type: "generic".into(),
            credential: "bench".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // The owner's inference route: the sandbox's bundle resolves the same credential.
    admin
        .set_inference_route(pb::SetInferenceRouteRequest {
            provider: "bench".into(),
            model: "bench-model".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut request = support::create_request("resolver");
    request.providers = vec!["bench".into()];
    let sandbox = admin.create_sandbox(request).await.unwrap().into_inner();
    let sandbox_token = mock.token_of(&sandbox.id).await.unwrap();
    let sandbox_client = gateway.client_with(&sandbox_token).await;
    let direct = CredentialsDriverClient::new(proto::lazy_channel(&credentials_socket));
    // The same header the sandbox sends the gateway (the bare proxy does not read it).
    let bare = support::client_with_headers(
        bare_proxy::start(&credentials_socket).await,
        &[("authorization", &format!("Bearer {sandbox_token}"))],
    )
    .await;

    println!(
        "\n## resolve: through the gateway vs directly on the driver ({length:?} per level)\n"
    );
    println!("| path | callers | calls | p50 | p99 | calls/s |\n|---|---:|---:|---:|---:|---:|");
    for callers in [1, 16, 64] {
        let client = direct.clone();
        let direct_call = move || {
            let mut client = client.clone();
            async move {
                let request = ResolveCredentialRequest {
                    name: "bench".into(),
                    ..Default::default()
                };
                client.resolve_credential(request).await.unwrap();
            }
        };
        row(
            "driver (UDS)",
            callers,
            measure(callers, length, direct_call).await,
        );
        row(
            "gateway (TCP → UDS)",
            callers,
            measure(callers, length, {
                let client = sandbox_client.clone();
                move || resolve(client.clone())
            })
            .await,
        );
        row(
            "bare proxy, the floor (TCP → UDS)",
            callers,
            measure(callers, length, {
                let client = bare.clone();
                move || resolve(client.clone())
            })
            .await,
        );
        let client = sandbox_client.clone();
        let bundle_call = move || {
            let mut client = client.clone();
            async move {
                let bundle = client
                    .get_inference_bundle(pb::GetInferenceBundleRequest {})
                    .await
                    .unwrap();
                assert_eq!(bundle.get_ref().routes.len(), 1);
            }
        };
        row(
            "gateway bundle (TCP → UDS)",
            callers,
            measure(callers, length, bundle_call).await,
        );
    }

    if std::env::var_os("BENCH_RESOLVE_ONLY").is_some() {
        return;
    }
    println!(
        "\n## sandbox create through the gateway (SQLite file store) vs directly on the driver\n"
    );
    println!(
        "| path | callers | created | p50 | p99 | creates/s |\n|---|---:|---:|---:|---:|---:|"
    );
    creates(
        length,
        "mock driver",
        &compute_socket,
        &admin,
        &["sleep", "600"],
    )
    .await;
    gateway.stop().await;
    process_backend_creates(length).await;
    authentication(length).await;
}

/// One ResolveProviderCredential of the benchmark's provider, on `client` (the
/// gateway, or the bare proxy in its place).
async fn resolve(mut client: support::Client) {
    let request = pb::ResolveProviderCredentialRequest {
        provider: "bench".into(),
    };
    client.resolve_provider_credential(request).await.unwrap();
}

/// Creates at 1 and 16 callers made directly on the driver at `socket` (named `label`),
/// then through the gateway `admin` talks to, each sandbox running `command`.
async fn creates(
    length: Duration,
    label: &str,
    socket: &std::path::Path,
    admin: &support::Client,
    command: &'static [&'static str],
) {
    let counter = Arc::new(AtomicUsize::new(0));
    let mut driver = ComputeDriverClient::new(proto::lazy_channel(socket));
    let argv = || command.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // The driver's own create is measured on the request the gateway sends for the
    // same sandbox (built by the gateway's own function: in its owner's workspace,
    // with a sandbox token, the gateway's variables and labels), the workspace ensured
    // once beforehand as the gateway does.
    let workspace =
        gateway_shim::api::names::workspace(gateway_shim::store::DEFAULT_TENANT, "bench", "")
            .unwrap();
    driver
        .ensure_workspace(proto::pb::compute::v1::EnsureWorkspaceRequest {
            workspace: workspace.clone(),
        })
        .await
        .unwrap();
    let token = proto::Secret::new("a sandbox token as long as the gateway's: ".repeat(4));
    for callers in [1, 16] {
        let client = driver.clone();
        let counter_direct = Arc::clone(&counter);
        let (workspace, token) = (workspace.clone(), token.clone());
        let direct_create = move || {
            let mut client = client.clone();
            let n = counter_direct.fetch_add(1, Ordering::Relaxed);
            let sandbox = pb::Sandbox {
                id: format!("direct-{n}"),
                name: format!("direct-{n}"),
                owner: "bench".into(),
                spec: Some(pb::SandboxSpec {
                    command: argv(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let sandbox = gateway_shim::api::driver_spec::driver_sandbox(
                &sandbox,
                &workspace,
                &token,
                "http://127.0.0.1:1",
            );
            async move {
                client
                    .create_sandbox(proto::pb::compute::v1::CreateSandboxRequest {
                        sandbox: Some(sandbox),
                    })
                    .await
                    .unwrap();
            }
        };
        let (calls, p50, p99, rate) = measure(callers, length, direct_create).await;
        println!("| {label} (UDS) | {callers} | {calls} | {p50:.1?} | {p99:.1?} | {rate:.0} |");
        let client = admin.clone();
        let counter = Arc::clone(&counter);
        let create = move || {
            let mut client = client.clone();
            let n = counter.fetch_add(1, Ordering::Relaxed);
            async move {
                let mut request = support::create_request(&format!("s{n}"));
                request.spec.as_mut().unwrap().command = argv();
                client.create_sandbox(request).await.unwrap();
            }
        };
        let (calls, p50, p99, rate) = measure(callers, length, create).await;
        println!(
            "| gateway → {label} (TCP → UDS) | {callers} | {calls} | {p50:.1?} | {p99:.1?} | {rate:.0} |"
        );
    }
}

/// [`creates`] on the real compute-driver binary's process backend (release build),
/// each sandbox `true` (the create is the same whether the process lives on).
/// A gateway on a SQLite file in `dir` (a real disk flush per write), serving once
/// its drivers answer; the per-owner limit is lifted, since creates are measured for
/// seconds, far more than its default.
async fn start_for_creates(
    dir: &std::path::Path,
    compute: &std::path::Path,
    credentials: Option<&std::path::Path>,
) -> support::Gateway {
    let mut args = support::args(dir, compute, credentials);
    args.db_url = format!("sqlite:{}", dir.join("gateway.db").display());
    args.max_sandboxes_per_owner = usize::MAX;
    let gateway = support::Gateway::start(args).await;
    gateway
        .wait_health(proto::pb::health::health_check_response::ServingStatus::Serving)
        .await;
    gateway
}

async fn process_backend_creates(length: Duration) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "compute-driver",
            "--bin",
            "compute-driver",
        ])
        .status()
        .unwrap();
    assert!(built.success(), "building compute-driver failed");
    let binary =
        std::path::Path::new(env!("CARGO_BIN_EXE_gateway-shim")).with_file_name("compute-driver");
    let dir = proto::testing::short_dir();
    let state = dir.path().join("state");
    let driver = proto::testing::SpawnedDriver::spawn_in(
        &binary,
        dir.path(),
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--log-level",
            "warn",
        ],
    );
    let socket = driver.socket().to_owned();
    let gateway = start_for_creates(dir.path(), &socket, None).await;
    let admin = gateway.client().await;
    creates(length, "process backend", &socket, &admin, &["true"]).await;
    gateway.stop().await;
    drop(driver);
}

async fn authentication(length: Duration) {
    let peer = support::oidc::OidcPeer::start_with(support::oidc::peer_config()).await;
    let token = support::oidc::alice(&peer).await;
    let config = support::oidc::oidc_args(&peer).unwrap();
    let verifier = Arc::new(gateway_shim::auth::Oidc::discover(config).await.unwrap());
    println!("\n## authentication ({length:?} per level)\n");
    println!("| what | callers | calls | p50 | p99 | calls/s |\n|---|---:|---:|---:|---:|---:|");
    let verify = {
        let verifier = Arc::clone(&verifier);
        let token = token.clone();
        move || {
            let verifier = Arc::clone(&verifier);
            let token = token.clone();
            async move {
                verifier.verify(&token).await.unwrap();
            }
        }
    };
    row(
        "JWT verify (RS256, warm JWKS), in process",
        1,
        measure(1, length, verify).await,
    );

    let dir = proto::testing::short_dir();
    let compute_socket = dir.path().join("c.sock");
    let _compute =
        support::serve_mock_compute(&compute_socket, MockCompute::new(Faults::default())).await;
    let mut args = support::args(dir.path(), &compute_socket, None);
    args.oidc = support::oidc::oidc_args(&peer);
    let secret = dir.path().join("proxy-secret");
    std::fs::write(&secret, "bench-proxy-shared-secret").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let proxy_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    args.trusted_proxy = Some(gateway_shim::auth::TrustedProxyConfig {
        listen: proxy_addr,
        allowed_peers: vec!["127.0.0.1/32".parse().unwrap()],
        secret_file: Some(secret),
        secret_header: "x-trusted-proxy-secret".into(),
        client_ca: None,
        principal_header: "x-maas-user".into(),
        attributes_header: Some("x-maas-attributes".into()),
        attribute_headers: [("x-maas-group".to_owned(), "teams".to_owned())].into(),
        tenant_header: None,
        tenant_attribute: Some("tenant".into()),
        roles_attribute: "roles".into(),
        admin_role: "openshell-admin".into(),
        platform_admin_role: None,
    });
    let peer = conformance::control_plane_peer::ControlPlanePeer::start(
        "bench-control-plane-secret",
        &dir.path().join("cp.sock"),
    )
    .await
    .unwrap();
    let cp_secret = dir.path().join("cp-secret");
    std::fs::write(&cp_secret, "bench-control-plane-secret").unwrap();
    std::fs::set_permissions(
        &cp_secret,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    args.control_plane = Some(gateway_shim::control_plane::ControlPlaneConfig {
        address: gateway_shim::control_plane::Address::Unix(peer.socket.clone()),
        secret_file: cp_secret,
        timeout: Duration::from_secs(5),
        tenant_keys: Default::default(),
    });
    let record =
        |consumer: &str| conformance::control_plane_peer::KeyRecord::active(consumer, "acme");
    peer.put_key("gwk_bench-warm-key", record("warm")).await;
    let gateway = support::Gateway::start(args).await;
    gateway
        .wait_health(proto::pb::health::health_check_response::ServingStatus::Serving)
        .await;
    let local_key = gateway
        .client()
        .await
        .create_api_key(pb::CreateApiKeyRequest {
            consumer: "local".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key;
    for (label, client) in [
        (
            "ListProviders, local API key",
            gateway.client_with(&local_key).await,
        ),
        (
            "ListProviders, control-plane API key, warm cache",
            gateway.client_with("gwk_bench-warm-key").await,
        ),
        ("ListProviders, local token", gateway.client().await),
        (
            "ListProviders, OIDC token",
            gateway.client_with(&token).await,
        ),
        (
            "ListProviders, trusted-proxy headers",
            support::client_with_headers(
                proxy_addr,
                &[
                    ("x-trusted-proxy-secret", "bench-proxy-shared-secret"),
                    ("x-maas-user", "alice"),
                    ("x-maas-attributes", r#"{"tenant": "acme"}"#),
                    ("x-maas-group", "ml,infra"),
                ],
            )
            .await,
        ),
    ] {
        let call = move || {
            let mut client = client.clone();
            async move {
                client
                    .list_providers(pb::ListProvidersRequest {})
                    .await
                    .unwrap();
            }
        };
        row(label, 1, measure(1, length, call).await);
    }
    // Cold: a key the gateway has never seen on every call (one request each), on one
    // connection.
    let peer = Arc::new(peer);
    let fresh = Arc::new(AtomicUsize::new(0));
    let client = pb::gateway_client::GatewayClient::new(gateway.channel().await);
    let cold = move || {
        let (peer, fresh, mut client) = (Arc::clone(&peer), Arc::clone(&fresh), client.clone());
        async move {
            let key = format!("gwk_cold-{}", fresh.fetch_add(1, Ordering::Relaxed));
            peer.put_key(&key, record("cold")).await;
            let mut request = tonic::Request::new(pb::ListProvidersRequest {});
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
            client.list_providers(request).await.unwrap();
        }
    };
    row(
        "ListProviders, control-plane API key, cold (one control-plane request)",
        1,
        measure(1, length, cold).await,
    );
    gateway.stop().await;
}
