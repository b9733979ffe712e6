//! The real binary with a config file: static credentials, listing, status codes,
//! secret confinement, and no token in the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::path::Path;

use proto::pb::credentials::v1::{
    ListCredentialsRequest, ResolveCredentialRequest,
    credentials_driver_client::CredentialsDriverClient,
};
use proto::testing::{SpawnedDriver, short_dir};
use tonic::Code;
use tonic::transport::Channel;

const BINARY: &str = env!("CARGO_BIN_EXE_credentials-driver");
const GITHUB_TOKEN: &str = "ghp_static-token-1234567890";

const CONFIG: &str = "
credentials:
  github:
    kind: static
    token_ref: github-token
    scopes: [repo, read:org]
  openai:
    kind: static
    token_ref: openai-key
    expires_at: 2099-01-01T00:00:00Z
  escaping:
    kind: static
    token_ref: outside-link
  legacy-cc:
    token_endpoint: http://127.0.0.1:9/realms/t/protocol/openid-connect/token
    client_id: gateway
    client_secret_ref: gateway-secret
  exchange:
    kind: token_exchange
    issuer: http://127.0.0.1:9/realms/t
    client_id: credentials-driver
    client_secret_ref: driver-secret
";

async fn start(dir: &Path) -> (SpawnedDriver, CredentialsDriverClient<Channel>) {
    let secrets = dir.join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("github-token"), format!("{GITHUB_TOKEN}\n")).unwrap();
    std::fs::write(secrets.join("openai-key"), "sk-openai").unwrap();
    std::fs::write(dir.join("outside"), "not-for-you").unwrap();
    std::os::unix::fs::symlink(dir.join("outside"), secrets.join("outside-link")).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let driver = SpawnedDriver::spawn_in(
        BINARY.as_ref(),
        dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--secrets-dir",
            secrets.to_str().unwrap(),
            "--log-level",
            "debug",
        ],
    );
    let client = CredentialsDriverClient::new(driver.channel().await.unwrap());
    (driver, client)
}

fn by_name(name: &str) -> ResolveCredentialRequest {
    ResolveCredentialRequest {
        name: name.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn static_credentials_resolve_with_only_a_name() {
    let dir = short_dir();
    let (driver, mut client) = start(dir.path()).await;

    let github = client
        .resolve_credential(by_name("github"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(github.token, GITHUB_TOKEN, "trailing newline dropped");
    assert_eq!(github.token_type, "Bearer");
    assert_eq!(github.expires_at_ms, 0);
    assert_eq!(github.served_from, "file");
    let openai = client
        .resolve_credential(by_name("openai"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(openai.expires_at_ms, 4_070_908_800_000);

    // A rotated secret file is used by the next resolve, without a restart.
    std::fs::write(dir.path().join("secrets/github-token"), "ghp_rotated").unwrap();
    let rotated = client
        .resolve_credential(by_name("github"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.token, "ghp_rotated");

    let listed = client
        .list_credentials(ListCredentialsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["escaping", "exchange", "github", "legacy-cc", "openai"]
    );
    let github = &listed.credentials[2];
    assert_eq!(github.scopes, ["repo", "read:org"]);
    assert_eq!(github.kind, "static");
    assert!(listed.credentials[1].requires_subject_token);

    let logs = driver.logs();
    assert!(logs.contains("config loaded"));
    assert!(
        !logs.contains(GITHUB_TOKEN)
            && !logs.contains("ghp_rotated")
            && !logs.contains("sk-openai")
    );
}

#[tokio::test]
async fn every_failure_has_its_code_and_names_the_credential() {
    let dir = short_dir();
    let (driver, mut client) = start(dir.path()).await;
    let code_and_message = |r: Result<tonic::Response<_>, tonic::Status>| {
        let status = r.unwrap_err();
        (status.code(), status.message().to_owned())
    };

    let (code, message) = code_and_message(client.resolve_credential(by_name("nope")).await);
    assert_eq!(code, Code::NotFound);
    assert!(message.contains("\"nope\""));

    let (code, message) = code_and_message(client.resolve_credential(by_name("")).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("name:"), "{message}");

    let (code, message) = code_and_message(client.resolve_credential(by_name("exchange")).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("subject_token:"), "{message}");

    let (code, message) = code_and_message(client.resolve_credential(by_name("escaping")).await);
    assert_eq!(code, Code::FailedPrecondition);
    assert!(
        message.contains("escaping") && message.contains("escapes"),
        "{message}"
    );
    assert!(!message.contains("not-for-you"));

    let (code, message) = code_and_message(client.resolve_credential(by_name("legacy-cc")).await);
    // Its client secret file is missing: an operator must fix that, retrying cannot.
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(
        message.contains("legacy-cc") && message.contains("client secret"),
        "{message}"
    );

    assert!(!driver.logs().contains("not-for-you"));
}

#[tokio::test]
async fn an_invalid_config_stops_start_up_naming_the_file_and_key() {
    let dir = short_dir();
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "credentials:\n  a:\n    kind: static\n").unwrap();
    let output = std::process::Command::new(BINARY)
        .args(["--socket", dir.path().join("c.sock").to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.yaml: credentials.a.token_ref: required"),
        "{stderr}"
    );
}
