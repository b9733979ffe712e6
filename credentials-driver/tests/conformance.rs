//! The driver-conformance harness against the real binary and the OIDC test peer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use proto::testing::short_dir;
use serde_json::json;
use support::{OidcPeer, driver};

#[tokio::test]
async fn the_credentials_driver_passes_the_credentials_suite() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (process, _client) = driver(dir.path(), &peer).await;
    let subject = peer
        .mint(json!({ "sub": "u", "aud": "credentials-driver", "azp": "gateway" }))
        .await;
    let config = conformance::Config {
        credentials_socket: Some(process.socket().to_path_buf()),
        credentials: conformance::credentials::CredentialsInputs {
            names: vec!["cc-basic".into(), "cc-post".into()],
            subject_token: Some(proto::Secret::new(subject)),
        },
        ..conformance::Config::default()
    };
    let report = conformance::run(&config).await;
    for result in &report.results {
        eprintln!("{} {:?}", result.name, result.outcome);
    }
    assert!(report.passed(), "{:#?}", report.failures());
    assert_eq!(report.counts(), (8, 0, 0), "{}", report.summary());
}
