//! Both drivers (the real binaries) as a default grpcio client sees them:
//! `tests/grpcio/default_client.py` with `grpc.insecure_channel("unix:…")` and no
//! options, which sends the socket path percent-encoded as the :authority; the sockets
//! sit in a directory whose name needs that encoding (a space, a '%').
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use proto::testing::SpawnedDriver;

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");

#[tokio::test]
async fn a_default_grpcio_client_passes_health_lifecycle_and_resolve() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let binaries = support::ensure_driver_binaries(GATEWAY);
    let dir = proto::testing::short_dir();
    let odd = dir.path().join("a b%");
    for sub in ["c", "k"] {
        std::fs::create_dir_all(odd.join(sub)).unwrap();
    }
    let state = dir.path().join("state");
    let compute = SpawnedDriver::spawn_in(
        &binaries.join("compute-driver"),
        &odd.join("c"),
        &["--state-dir", state.to_str().unwrap()],
    );
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("gh"), "grpcio-token-value\n").unwrap();
    let config = dir.path().join("credentials.yaml");
    std::fs::write(
        &config,
        "credentials:\n  gh:\n    kind: static\n    token_ref: gh\n",
    )
    .unwrap();
    let credentials = SpawnedDriver::spawn_in(
        &binaries.join("credentials-driver"),
        &odd.join("k"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
    );
    compute.channel().await.unwrap();
    credentials.channel().await.unwrap();
    let (ok, text) = support::run_python(
        &repo.join("tests/grpcio/requirements.txt"),
        "import grpc, grpc_tools, grpc_health",
        &repo.join("tests/grpcio/default_client.py"),
        &[
            "--compute-socket".as_ref(),
            compute.socket().as_os_str(),
            "--credentials-socket".as_ref(),
            credentials.socket().as_os_str(),
            "--credential".as_ref(),
            "gh".as_ref(),
            "--expect-token".as_ref(),
            "grpcio-token-value".as_ref(),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("ok: credentials ListCredentials"), "{text}");
    assert!(
        text.contains("ok: compute Stop, Delete, then NOT_FOUND"),
        "{text}"
    );
}
