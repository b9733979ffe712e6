//! Config and secrets reload without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::time::Duration;

use nix::sys::signal::Signal;
use proto::pb::credentials::v1::{
    ListCredentialsRequest, ResolveCredentialRequest,
    credentials_driver_client::CredentialsDriverClient,
};
use proto::testing::{SpawnedDriver, short_dir};
use tonic::transport::Channel;

const BINARY: &str = env!("CARGO_BIN_EXE_credentials-driver");

async fn names(client: &mut CredentialsDriverClient<Channel>) -> Vec<String> {
    let listed = client
        .list_credentials(ListCredentialsRequest {})
        .await
        .unwrap()
        .into_inner();
    listed.credentials.into_iter().map(|c| c.name).collect()
}

async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn config_changes_apply_and_an_invalid_config_keeps_the_old_one() {
    let dir = short_dir();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("a"), "token-a").unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "credentials:\n  a:\n    kind: static\n    token_ref: a\n",
    )
    .unwrap();
    let driver = SpawnedDriver::spawn_in(
        BINARY.as_ref(),
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--secrets-dir",
            secrets.to_str().unwrap(),
            "--reload-interval",
            "100ms",
        ],
    );
    let mut client = CredentialsDriverClient::new(driver.channel().await.unwrap());
    assert_eq!(names(&mut client).await, ["a"]);

    std::fs::write(secrets.join("b"), "token-b").unwrap();
    std::fs::write(
        &config,
        "credentials:\n  a:\n    kind: static\n    token_ref: a\n  b:\n    kind: static\n    token_ref: b\n",
    )
    .unwrap();
    assert!(
        eventually(|| {
            let mut c = client.clone();
            async move { names(&mut c).await == ["a", "b"] }
        })
        .await
    );

    std::fs::write(&config, "credentials:\n  a:\n    kind: nonsense\n").unwrap();
    assert!(eventually(|| async { driver.logs().contains("keeping the previous config") }).await);
    assert_eq!(
        names(&mut client).await,
        ["a", "b"],
        "the old config keeps serving"
    );
    let b = client
        .resolve_credential(ResolveCredentialRequest {
            name: "b".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.token, "token-b");

    // SIGHUP reloads at once (here: back to one credential).
    std::fs::write(
        &config,
        "credentials:\n  b:\n    kind: static\n    token_ref: b\n",
    )
    .unwrap();
    driver.signal(Signal::SIGHUP);
    assert!(
        eventually(|| {
            let mut c = client.clone();
            async move { names(&mut c).await == ["b"] }
        })
        .await
    );
}
