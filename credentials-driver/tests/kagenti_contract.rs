//! The deployed (kagenti) credentials driver's own contract cases, re-expressed as our
//! tests against our binary, with its config format unchanged (no `kind`, no
//! `auth_method`): its mock Keycloak reads the client id from the form, as its driver
//! sends it, and names the token after it. Resolve, NOT_FOUND, INVALID_ARGUMENT for an
//! empty name, List sorted by name, and one token-endpoint call for two resolves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::testing::{SpawnedDriver, short_dir};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const BINARY: &str = env!("CARGO_BIN_EXE_credentials-driver");

/// kagenti's mock Keycloak: `grant_type=client_credentials` required, the token is
/// `mock-access-token-<client_id from the form>`. Returns its URL and a call counter.
async fn mock_keycloak() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Headers, then Content-Length bytes of form.
                let body = loop {
                    let n = stream.read(&mut buffer).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break text[end + 4..end + 4 + length].to_owned();
                        }
                    }
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let field = |name: &str| {
                    body.split('&')
                        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
                        .unwrap_or_default()
                        .to_owned()
                };
                let (status, json) = if field("grant_type") == "client_credentials" {
                    (
                        "200 OK",
                        format!(
                            r#"{{"access_token":"mock-access-token-{}","expires_in":300,"token_type":"Bearer"}}"#,
                            field("client_id")
                        ),
                    )
                } else {
                    (
                        "400 Bad Request",
                        r#"{"error":"unsupported_grant_type"}"#.to_owned(),
                    )
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, calls)
}

/// Our binary with kagenti's test config and secrets, unchanged.
async fn driver(
    dir: &std::path::Path,
    keycloak: &str,
) -> (
    SpawnedDriver,
    CredentialsDriverClient<tonic::transport::Channel>,
) {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("test-secret"), "test-secret-value").unwrap();
    std::fs::write(secrets.join("other-secret"), "other-secret-value").unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "
credentials:
  test-api:
    client_id: test-client
    client_secret_ref: test-secret
    token_endpoint: {keycloak}
    scopes: [\"read\", \"write\"]
  other-api:
    client_id: other-client
    client_secret_ref: other-secret
    token_endpoint: {keycloak}
"
        ),
    )
    .unwrap();
    let process = SpawnedDriver::spawn_in(
        BINARY.as_ref(),
        dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
    );
    let client = CredentialsDriverClient::new(process.channel().await.unwrap());
    (process, client)
}

fn resolve(name: &str) -> pb::ResolveCredentialRequest {
    pb::ResolveCredentialRequest {
        name: name.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_deployed_drivers_contract_cases_pass_with_its_config_unchanged() {
    let (keycloak, calls) = mock_keycloak().await;
    let dir = short_dir();
    let (_driver, mut client) = driver(dir.path(), &keycloak).await;

    let token = client
        .resolve_credential(resolve("test-api"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(token.token, "mock-access-token-test-client");
    assert_eq!(token.token_type, "Bearer");
    assert!(token.expires_at_ms > 0);

    let missing = client
        .resolve_credential(resolve("nonexistent"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let empty = client.resolve_credential(resolve("")).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    let listed = client
        .list_credentials(pb::ListCredentialsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["other-api", "test-api"]);

    // The first resolve fetched; a second is served from the cache.
    client
        .resolve_credential(resolve("test-api"))
        .await
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one token-endpoint call for two resolves"
    );
}
