//! Upstream OpenShell's `CredentialDriver` (singular) contract, served by the real
//! binary on the same socket as the deployed `CredentialsDriver`: the harness's
//! credential-store suite, values kept across restarts in private files, configured
//! credentials resolved by handle to fresh tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::os::unix::fs::PermissionsExt as _;

use proto::pb::upstream::credentials::v1 as pb;
use proto::pb::upstream::credentials::v1::credential_driver_client::CredentialDriverClient;
use proto::pb::upstream::datamodel::v1::CredentialHandle;
use proto::testing::short_dir;
use support::{OidcPeer, driver};

#[tokio::test]
async fn the_credentials_driver_passes_the_credential_store_suite() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (process, _client) = driver(dir.path(), &peer).await;
    let config = conformance::Config {
        credential_store_socket: Some(process.socket().to_path_buf()),
        credential_store: conformance::credential_store::CredentialStoreInputs {
            token_handles: vec!["config:cc-basic".into(), "config:cc-post".into()],
        },
        ..conformance::Config::default()
    };
    let report = conformance::run(&config).await;
    for result in &report.results {
        eprintln!("{} {:?}", result.name, result.outcome);
    }
    assert!(report.passed(), "{:#?}", report.failures());
    assert_eq!(report.counts(), (9, 0, 0), "{}", report.summary());
    // The suite's values never reach the log.
    let logs = process.logs();
    assert!(!logs.contains("batch-1") && !logs.contains("listed-secret-value"));
}

#[tokio::test]
async fn stored_values_survive_a_restart_in_private_files() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (process, _client) = driver(dir.path(), &peer).await;
    let mut client = CredentialDriverClient::new(process.channel().await.unwrap());
    let stored = client
        .store_credential(pb::StoreCredentialRequest {
            provider_name: "openai".into(),
            credential_key: "OPENAI_API_KEY".into(),
            value: "sk-kept-across-restarts".into(),
            workspace: "team".into(),
            provider_id: "p-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .handle
        .unwrap();
    drop(client);
    drop(process);

    let store = dir.path().join("store");
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for entry in std::fs::read_dir(store.join("values")).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (process, _client) = driver(dir.path(), &peer).await;
    let mut client = CredentialDriverClient::new(process.channel().await.unwrap());
    let resolve = |workspace: &str, handle: &CredentialHandle| pb::ResolveCredentialsRequest {
        credentials: vec![pb::ResolveCredentialRequest {
            request_id: "r".into(),
            provider_name: "openai".into(),
            credential_key: "OPENAI_API_KEY".into(),
            handle: Some(handle.clone()),
            workspace: workspace.into(),
            provider_id: "p-1".into(),
        }],
    };
    let answer = client
        .resolve_credentials(resolve("team", &stored))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.credentials[0].value, "sk-kept-across-restarts");
    // Another workspace naming the same handle finds nothing.
    let other = client
        .resolve_credentials(resolve("other-team", &stored))
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::NotFound);
    assert!(!other.message().contains("sk-kept"));
    assert!(!process.logs().contains("sk-kept-across-restarts"));
}

#[tokio::test]
async fn a_batch_mixes_stored_values_and_configured_tokens_and_refuses_repeated_ids() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (process, _client) = driver(dir.path(), &peer).await;
    let mut client = CredentialDriverClient::new(process.channel().await.unwrap());
    let caps = client
        .get_capabilities(pb::GetCredentialDriverCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.driver_name, "credentials-driver");
    assert!(caps.supports_list && caps.supports_expires_at);

    let stored = client
        .store_credential(pb::StoreCredentialRequest {
            credential_key: "KEY".into(),
            value: "stored".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .handle
        .unwrap();
    let handle = |h: &str| {
        Some(CredentialHandle {
            handle: h.into(),
            ..Default::default()
        })
    };
    let request = |id: &str, h: &str| pb::ResolveCredentialRequest {
        request_id: id.into(),
        handle: handle(h),
        ..Default::default()
    };
    let answers = client
        .resolve_credentials(pb::ResolveCredentialsRequest {
            credentials: vec![
                request("a", &stored.handle),
                request("b", "config:cc-basic"),
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .credentials;
    let a = answers.iter().find(|c| c.request_id == "a").unwrap();
    let b = answers.iter().find(|c| c.request_id == "b").unwrap();
    assert_eq!((a.value.as_str(), a.expires_at_ms), ("stored", 0));
    assert!(!b.value.is_empty() && b.expires_at_ms > 0);
    // The same token as the deployed contract gives for that name (one cache).
    let mut deployed =
        proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient::new(
            process.channel().await.unwrap(),
        );
    let token = deployed
        .resolve_credential(proto::pb::credentials::v1::ResolveCredentialRequest {
            name: "cc-basic".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(token.token, b.value);

    let repeated = client
        .resolve_credentials(pb::ResolveCredentialsRequest {
            credentials: vec![
                request("same", &stored.handle),
                request("same", &stored.handle),
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(repeated.code(), tonic::Code::InvalidArgument);
    assert!(
        repeated.message().contains("request_id"),
        "{}",
        repeated.message()
    );
    let unknown = client
        .resolve_credentials(pb::ResolveCredentialsRequest {
            credentials: vec![request("c", "config:no-such-credential")],
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().starts_with("request c:"),
        "{}",
        unknown.message()
    );
}
