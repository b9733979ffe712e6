//! The real driver against a real OAuth2 server on loopback (the OIDC test peer).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::time::Duration;

use proto::pb::credentials::v1::ResolveCredentialRequest;
use proto::testing::short_dir;
use serde_json::json;
use support::{DRIVER_SECRET, GATEWAY_SECRET, OidcPeer, claims, driver};
use tonic::Code;

fn by_name(name: &str) -> ResolveCredentialRequest {
    ResolveCredentialRequest {
        name: name.into(),
        ..Default::default()
    }
}

fn exchange(name: &str, subject: &str) -> ResolveCredentialRequest {
    ResolveCredentialRequest {
        name: name.into(),
        subject_token: subject.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn client_credentials_by_basic_and_post_are_cached() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (process, mut client) = driver(dir.path(), &peer).await;

    let basic = client
        .resolve_credential(by_name("cc-basic"))
        .await
        .unwrap()
        .into_inner();
    let post = client
        .resolve_credential(by_name("cc-post"))
        .await
        .unwrap()
        .into_inner();
    for token in [&basic, &post] {
        let claims = claims(&token.token);
        assert_eq!(claims["azp"], "gateway");
        assert_eq!(claims["aud"], "credentials-driver");
        assert_eq!(token.token_type, "Bearer");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(token.expires_at_ms > now_ms + 200_000, "about 300 s ahead");
    }
    assert_eq!(post.granted_scopes, ["credentials:resolve"]);
    assert_eq!(peer.token_requests().await, 2);

    let again = client
        .resolve_credential(by_name("cc-basic"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.token, basic.token, "served from the cache");
    assert_eq!(peer.token_requests().await, 2);
    // The reply says so (gateways meter cached against fresh tokens).
    assert_eq!(basic.served_from, "identity-provider");
    assert_eq!(again.served_from, "cache");

    let logs = process.logs();
    for secret in [GATEWAY_SECRET, DRIVER_SECRET, &basic.token, &post.token] {
        assert!(!logs.contains(secret), "a secret or token is in the logs");
    }
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_failed_precondition_asked_once() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (process, mut client) = driver(dir.path(), &peer).await;
    for _ in 0..5 {
        let status = client
            .resolve_credential(by_name("cc-wrong"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(
            status.message().contains("cc-wrong"),
            "{}",
            status.message()
        );
        assert!(!status.message().contains("not-the-secret"));
    }
    assert_eq!(
        peer.token_requests().await,
        1,
        "negative cache: one request, not five"
    );
    assert!(!process.logs().contains("not-the-secret"));
}

#[tokio::test]
async fn token_exchange_issues_a_token_for_the_user_and_the_audience() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (process, mut client) = driver(dir.path(), &peer).await;
    let subject = peer
        .mint(json!({ "sub": "user-42", "aud": "credentials-driver", "azp": "gateway", "claims": { "tenant": "acme" } }))
        .await;

    let issued = client
        .resolve_credential(exchange("exchange", &subject))
        .await
        .unwrap()
        .into_inner();
    let claims = claims(&issued.token);
    assert_eq!(claims["sub"], "user-42");
    assert_eq!(claims["aud"], "downstream-api");
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(
        issued.issued_token_type,
        "urn:ietf:params:oauth:token-type:access_token"
    );

    let again = client
        .resolve_credential(exchange("exchange", &subject))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.token, issued.token, "cached per subject");
    let other_user = peer
        .mint(json!({ "sub": "user-7", "aud": "credentials-driver", "azp": "gateway" }))
        .await;
    let other = client
        .resolve_credential(exchange("exchange", &other_user))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(other.token, issued.token);
    assert_eq!(support::claims(&other.token)["sub"], "user-7");

    let logs = process.logs();
    assert!(!logs.contains(&subject) && !logs.contains(&issued.token));
}

#[tokio::test]
async fn exchange_failures_get_the_callers_codes() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (_process, mut client) = driver(dir.path(), &peer).await;
    let subject = peer
        .mint(json!({ "sub": "u", "aud": "credentials-driver", "azp": "gateway" }))
        .await;

    let status = client
        .resolve_credential(by_name("exchange"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("subject_token:"));

    let status = client
        .resolve_credential(exchange("exchange-unknown-audience", &subject))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    let expired = peer
        .mint(json!({ "sub": "u", "aud": "credentials-driver", "azp": "gateway", "iat": 1_000_000, "ttl": 60 }))
        .await;
    let before = peer.token_requests().await;
    let status = client
        .resolve_credential(exchange("exchange", &expired))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        peer.token_requests().await,
        before,
        "an expired subject never reaches the IdP"
    );

    let not_for_us = peer
        .mint(json!({ "sub": "u", "aud": "someone-else", "azp": "someone-else" }))
        .await;
    let status = client
        .resolve_credential(exchange("exchange", &not_for_us))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let garbage = client
        .resolve_credential(exchange("exchange", "not-a-jwt"))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated, "{garbage:?}");
}

#[tokio::test]
async fn an_idp_503_is_unavailable_and_the_driver_recovers() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (_process, mut client) = driver(dir.path(), &peer).await;
    peer.fail_next(1, 503).await;
    let status = client
        .resolve_credential(by_name("cc-basic"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let mut recovered = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(reply) = client.resolve_credential(by_name("cc-basic")).await {
            recovered = Some(reply.into_inner());
            break;
        }
    }
    assert!(recovered.is_some(), "recovered after the backoff");
    assert!(peer.token_requests().await <= 3);
}

#[tokio::test]
async fn two_hundred_concurrent_cold_resolves_make_one_token_request() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (_process, client) = driver(dir.path(), &peer).await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .resolve_credential(by_name("cc-cold"))
                    .await
                    .unwrap()
                    .into_inner()
                    .token
            })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap());
    }
    assert_eq!(tokens.len(), 1, "all 200 got the same token");
    assert_eq!(peer.token_requests().await, 1);
}

#[tokio::test]
async fn a_fixed_client_secret_is_used_by_the_next_fetch_without_a_restart() {
    let peer = OidcPeer::start().await;
    let dir = short_dir();
    let (_process, mut client) = driver(dir.path(), &peer).await;
    let status = client
        .resolve_credential(by_name("cc-wrong"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    std::fs::write(dir.path().join("secrets/wrong-secret"), GATEWAY_SECRET).unwrap();
    let mut fixed = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(reply) = client.resolve_credential(by_name("cc-wrong")).await {
            fixed = Some(reply.into_inner());
            break;
        }
    }
    let fixed = fixed.expect("the new secret was picked up within the reload interval");
    assert_eq!(claims(&fixed.token)["azp"], "gateway");
}

#[tokio::test]
async fn during_an_outage_the_valid_token_is_served_then_callers_fail_fast_without_a_stampede() {
    let peer = OidcPeer::start_with(json!({ "accessTokenTTL": 4 })).await;
    let dir = short_dir();
    let (_process, mut client) = driver(dir.path(), &peer).await;
    let first = client
        .resolve_credential(by_name("cc-basic"))
        .await
        .unwrap()
        .into_inner();
    let received = tokio::time::Instant::now();
    peer.fail_next(10_000, 503).await;
    let before = peer.token_requests().await;

    let mut calls = 0;
    let mut unavailable_fast = 0;
    while received.elapsed() < Duration::from_secs(7) {
        let started = tokio::time::Instant::now();
        let result = client.resolve_credential(by_name("cc-basic")).await;
        calls += 1;
        if received.elapsed() < Duration::from_millis(3800) {
            assert_eq!(
                result.unwrap().into_inner().token,
                first.token,
                "the valid token is served"
            );
        } else if received.elapsed() > Duration::from_millis(4200) {
            let status = result.expect_err("an expired token is never served");
            assert_eq!(status.code(), Code::Unavailable);
            if started.elapsed() < Duration::from_millis(100) {
                unavailable_fast += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let during = peer.token_requests().await - before;
    assert!(calls > 150, "{calls} calls");
    assert!(
        unavailable_fast > 50,
        "callers got UNAVAILABLE quickly ({unavailable_fast})"
    );
    // Refresh due at 2 s; then one request per backoff step (0.5, 1, 2, 4 s ...).
    assert!(during <= 6, "{during} token requests for {calls} calls");
}
