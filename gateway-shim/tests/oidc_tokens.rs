//! OIDC authentication with real tokens from the OIDC test peer: the exact code for
//! each good and bad token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use conformance::mock::{Faults, MockCompute, MockServer};
use hmac::{Hmac, Mac};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use serde_json::{Value, json};
use sha2::Sha256;
use support::oidc::{self, AUDIENCE, OidcPeer};
use support::{Gateway, args};
use tonic::Code;

async fn gateway_trusting(peer: &OidcPeer, dir: &std::path::Path) -> (Gateway, MockServer) {
    let compute_socket = dir.join("c.sock");
    let mock =
        support::serve_mock_compute(&compute_socket, MockCompute::new(Faults::default())).await;
    let mut args = args(dir, &compute_socket, None);
    args.oidc = oidc::oidc_args(peer);
    let gateway = Gateway::start(args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    (gateway, mock)
}

async fn code_for(gateway: &Gateway, token: &str) -> Code {
    let mut client = gateway.client_with(token).await;
    match client.list_sandboxes(pb::ListSandboxesRequest {}).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn part(token: &str, index: usize) -> Value {
    let raw = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_gets_its_exact_code() {
    let dir = proto::testing::short_dir();
    let keys = dir.path().join("keys.json");
    let peer = OidcPeer::start_with(json!({ "keysFile": keys, "audiences": oidc::peer_config()["audiences"], "clients": oidc::peer_config()["clients"] })).await;
    let (gateway, _mock) = gateway_trusting(&peer, dir.path()).await;

    for (who, token) in [
        ("alice", oidc::alice(&peer).await),
        ("bob", oidc::bob(&peer).await),
        ("an admin", oidc::admin(&peer).await),
        ("the CI client", oidc::ci_client(&peer).await),
    ] {
        assert_eq!(code_for(&gateway, &token).await, Code::Ok, "{who}");
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = peer
        .mint(
            json!({ "sub": "alice", "aud": AUDIENCE, "iat": now - 3600, "ttl": 60,
                      "claims": { "realm_access": { "roles": ["openshell-user"] } } }),
        )
        .await;
    assert_eq!(
        code_for(&gateway, &expired).await,
        Code::Unauthenticated,
        "expired"
    );

    let wrong_audience = peer
        .mint(json!({ "sub": "alice", "aud": "another-api" }))
        .await;
    assert_eq!(
        code_for(&gateway, &wrong_audience).await,
        Code::Unauthenticated,
        "wrong audience"
    );

    // Another issuer signing with the very same keys: only `iss` differs.
    let impostor = OidcPeer::start_with(json!({ "keysFile": keys, "realm": "other" })).await;
    let wrong_issuer = oidc::alice(&impostor).await;
    assert_ne!(
        part(&wrong_issuer, 1)["iss"],
        part(&oidc::alice(&peer).await, 1)["iss"]
    );
    assert_eq!(
        code_for(&gateway, &wrong_issuer).await,
        Code::Unauthenticated,
        "wrong issuer"
    );

    let good = oidc::alice(&peer).await;
    let mut claims = part(&good, 1);
    claims["sub"] = json!("root-admin");
    claims["realm_access"] = json!({ "roles": ["openshell-admin"] });
    let segments: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", segments[0], encode(&claims), segments[2]);
    assert_eq!(
        code_for(&gateway, &tampered).await,
        Code::Unauthenticated,
        "tampered"
    );

    let mut header = part(&good, 0);
    header["alg"] = json!("none");
    let alg_none = format!("{}.{}.", encode(&header), segments[1]);
    assert_eq!(
        code_for(&gateway, &alg_none).await,
        Code::Unauthenticated,
        "alg none"
    );

    // HS256 "signed" with the public key, the classic confusion attack.
    let jwks: Value = reqwest::get(format!("{}/protocol/openid-connect/certs", peer.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_key = serde_json::to_vec(&jwks["keys"][0]).unwrap();
    let mut header = part(&good, 0);
    header["alg"] = json!("HS256");
    let signed = format!("{}.{}", encode(&header), segments[1]);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&public_key).unwrap();
    mac.update(signed.as_bytes());
    let hs256 = format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(
        code_for(&gateway, &hs256).await,
        Code::Unauthenticated,
        "HS256 with the public key"
    );

    assert_eq!(
        code_for(&gateway, "not-a-jwt").await,
        Code::Unauthenticated,
        "garbage"
    );
    let mut anonymous = pb::gateway_client::GatewayClient::new(gateway.channel().await);
    let none = anonymous
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated, "no token");

    // After a key rotation, a token naming the new key id makes the gateway refresh
    // its JWKS once and accept it.
    let new_kid = peer.rotate(true).await;
    let rotated = oidc::alice(&peer).await;
    assert_eq!(part(&rotated, 0)["kid"], json!(new_kid));
    assert_eq!(
        code_for(&gateway, &rotated).await,
        Code::Ok,
        "signed with the rotated key"
    );
    assert_eq!(
        code_for(&gateway, &good).await,
        Code::Unauthenticated,
        "the retired key is gone"
    );
    // A key id nobody published: refused (the refresh it triggers finds nothing, and
    // further unknown ids within the cooldown do not reach the IdP).
    let mut header = part(&good, 0);
    header["kid"] = json!("no-such-key");
    let unknown_kid = format!("{}.{}.{}", encode(&header), segments[1], segments[2]);
    assert_eq!(
        code_for(&gateway, &unknown_kid).await,
        Code::Unauthenticated,
        "unknown kid"
    );

    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_from_clients_are_ignored() {
    let dir = proto::testing::short_dir();
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let (gateway, _mock) = gateway_trusting(&peer, dir.path()).await;
    let mut anonymous = pb::gateway_client::GatewayClient::new(gateway.channel().await);
    let mut request = tonic::Request::new(pb::ListSandboxesRequest {});
    for (name, value) in [
        ("x-forwarded-user", "root-admin"),
        ("x-openshell-principal", "admin"),
        ("x-remote-user", "root"),
    ] {
        request.metadata_mut().insert(name, value.parse().unwrap());
    }
    let refused = anonymous.list_sandboxes(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Alice claiming to be someone else through headers is still alice.
    let mut alice = gateway.client_with(&oidc::alice(&peer).await).await;
    let mut request = tonic::Request::new(support::create_request("mine"));
    request
        .metadata_mut()
        .insert("x-forwarded-user", "root-admin".parse().unwrap());
    let created = alice.create_sandbox(request).await.unwrap().into_inner();
    assert_eq!(created.owner, oidc::owner(&peer, "alice"));
    assert_eq!(created.name, "mine");
    gateway.stop().await;
}

#[tokio::test]
async fn role_flags_must_be_both_set_or_both_empty() {
    let half = gateway_shim::OidcArgs {
        oidc_issuer: Some("http://127.0.0.1:1/realms/x".into()),
        oidc_audience: Some(AUDIENCE.into()),
        oidc_user_role: String::new(),
        ..Default::default()
    };
    let error = half.config().unwrap_err();
    assert!(
        error.contains("--oidc-admin-role") && error.contains("--oidc-user-role"),
        "{error}"
    );
    let no_audience = gateway_shim::OidcArgs {
        oidc_issuer: Some("http://x".into()),
        ..Default::default()
    };
    assert!(
        no_audience
            .config()
            .unwrap_err()
            .contains("--oidc-audience")
    );
    let neither = gateway_shim::OidcArgs {
        oidc_issuer: Some("http://x".into()),
        oidc_audience: Some("a".into()),
        oidc_admin_role: String::new(),
        oidc_user_role: String::new(),
        ..Default::default()
    };
    assert!(
        neither.config().unwrap().unwrap().roles.is_none(),
        "authentication only"
    );
}

#[tokio::test]
async fn a_discovered_issuer_must_match_the_configured_one() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    // Same server, another spelling: the IdP reports 127.0.0.1, we were told localhost.
    let spelled_differently = peer.issuer.replace("127.0.0.1", "localhost");
    let args = gateway_shim::OidcArgs {
        oidc_issuer: Some(spelled_differently),
        oidc_audience: Some(AUDIENCE.into()),
        ..Default::default()
    };
    let error = gateway_shim::auth::Oidc::discover(args.config().unwrap().unwrap())
        .await
        .unwrap_err();
    assert!(error.contains("does not match"), "{error}");
    assert!(
        error.contains(&peer.issuer),
        "names the issuer to use: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_only_mode_admits_tokens_without_roles_and_still_enforces_scopes() {
    let dir = proto::testing::short_dir();
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let compute_socket = dir.path().join("c.sock");
    let _mock =
        support::serve_mock_compute(&compute_socket, MockCompute::new(Faults::default())).await;
    let mut args = args(dir.path(), &compute_socket, None);
    args.oidc = gateway_shim::OidcArgs {
        oidc_admin_role: String::new(),
        oidc_user_role: String::new(),
        ..oidc::oidc_flags(&peer)
    }
    .config()
    .unwrap();
    assert!(args.oidc.as_ref().unwrap().roles.is_none());
    let gateway = Gateway::start(args).await;
    gateway.wait_health(ServingStatus::Serving).await;

    // No roles at all: a user, limited by the scopes the token carries.
    let reader = oidc::user_token(&peer, "carol", &[], "sandbox:read").await;
    assert_eq!(code_for(&gateway, &reader).await, Code::Ok);
    let mut carol = gateway.client_with(&reader).await;
    let refused = carol
        .create_sandbox(support::create_request("nope"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("sandbox:write"), "{refused:?}");
    let writer = oidc::user_token(&peer, "carol", &[], "sandbox:read sandbox:write").await;
    let mut carol = gateway.client_with(&writer).await;
    let created = carol
        .create_sandbox(support::create_request("mine"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.owner, oidc::owner(&peer, "carol"));

    // A role claim means nothing here: "openshell-admin" is just another user, who
    // sees only their own sandboxes.
    let claimed = oidc::user_token(&peer, "mallory", &["openshell-admin"], "openshell:all").await;
    let mut mallory = gateway.client_with(&claimed).await;
    assert!(support::sandbox_names(&mut mallory).await.is_empty());
    let hidden = mallory
        .get_sandbox(support::by_name("mine"))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    gateway.stop().await;

    // The same roleless token under RBAC (the default) lacks the user role.
    let dir = proto::testing::short_dir();
    let (rbac, _mock) = gateway_trusting(&peer, dir.path()).await;
    assert_eq!(code_for(&rbac, &reader).await, Code::PermissionDenied);
    rbac.stop().await;
}
