//! The OIDC test peer (tests/oidc-peer, npm `oidc-provider`) and the real driver.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[allow(unused_imports)]
pub use conformance::oidc_peer::{OidcPeer, claims};
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::testing::SpawnedDriver;
use tonic::transport::Channel;

pub const BINARY: &str = env!("CARGO_BIN_EXE_credentials-driver");

pub const GATEWAY_SECRET: &str = "gateway-secret";
pub const DRIVER_SECRET: &str = "driver-secret";

/// Starts the driver with credentials pointing at `peer`.
pub async fn driver(
    dir: &Path,
    peer: &OidcPeer,
) -> (SpawnedDriver, CredentialsDriverClient<Channel>) {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("gateway-secret"), GATEWAY_SECRET).unwrap();
    std::fs::write(secrets.join("driver-secret"), DRIVER_SECRET).unwrap();
    std::fs::write(secrets.join("wrong-secret"), "not-the-secret").unwrap();
    let endpoint = peer.token_endpoint();
    let issuer = &peer.issuer;
    let config = format!(
        "
credentials:
  cc-basic:
    token_endpoint: {endpoint}
    client_id: gateway
    client_secret_ref: gateway-secret
    auth_method: basic
  cc-post:
    kind: client_credentials
    issuer: {issuer}
    client_id: gateway
    client_secret_ref: gateway-secret
    auth_method: post
    scopes: [credentials:resolve]
  cc-cold:
    token_endpoint: {endpoint}
    client_id: gateway
    client_secret_ref: gateway-secret
  cc-wrong:
    token_endpoint: {endpoint}
    client_id: gateway
    client_secret_ref: wrong-secret
  exchange:
    kind: token_exchange
    issuer: {issuer}
    client_id: credentials-driver
    client_secret_ref: driver-secret
    audience: [downstream-api]
  exchange-unknown-audience:
    kind: token_exchange
    issuer: {issuer}
    client_id: credentials-driver
    client_secret_ref: driver-secret
    audience: [no-such-api]
"
    );
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, config).unwrap();
    let store = dir.join("store");
    let process = SpawnedDriver::spawn_in(
        BINARY.as_ref(),
        dir,
        &[
            "--config",
            config_path.to_str().unwrap(),
            "--secrets-dir",
            secrets.to_str().unwrap(),
            "--store-dir",
            store.to_str().unwrap(),
            "--log-level",
            "debug",
        ],
    );
    let client = CredentialsDriverClient::new(process.channel().await.unwrap());
    (process, client)
}
