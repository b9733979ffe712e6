//! A user resolving a token-exchange provider through the gateway: the gateway passes
//! the user's own bearer token as the subject token, and the real credentials-driver
//! exchanges it at the OIDC test peer for a token that still names the user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use conformance::mock::{Faults, MockCompute};
use conformance::oidc_peer::claims;
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use serde_json::json;
use support::oidc::{self, AUDIENCE, OidcPeer};
use support::{Gateway, args};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_own_token_is_the_subject_of_the_exchange() {
    let mut config = oidc::peer_config();
    config["audiences"]["downstream-api"] = json!({ "scope": "api.read api.write", "ttl": 120 });
    config["clients"].as_array_mut().unwrap().push(json!({
        "client_id": "credentials-driver", "client_secret": "driver-secret",
        "grant_types": ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "scope": "api.read api.write", "default_audience": "downstream-api",
        "exchange_audiences": ["downstream-api"]
    }));
    let peer = OidcPeer::start_with(config).await;

    let dir = proto::testing::short_dir();
    let config = format!(
        "credentials:\n  downstream:\n    kind: token_exchange\n    issuer: {}\n    client_id: credentials-driver\n    client_secret_ref: driver-secret\n    audience: [downstream-api]\n",
        peer.issuer
    );
    let credentials_socket =
        support::credentials_driver(dir.path(), &config, &[("driver-secret", "driver-secret")]);
    let compute_socket = dir.path().join("c.sock");
    let mock = MockCompute::new(Faults::default());
    let _compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    let mut gateway_args = args(dir.path(), &compute_socket, Some(&credentials_socket));
    gateway_args.oidc = oidc::oidc_args(&peer);
    let gateway = Gateway::start(gateway_args).await;
    gateway.wait_health(ServingStatus::Serving).await;

    // Alice's login token is for the gateway, and names the driver as a holder so the
    // IdP lets the driver exchange it (Keycloak: the client must be in the audience).
    let token = peer
        .mint(json!({
            "sub": "alice", "aud": [AUDIENCE, "credentials-driver"], "azp": "openshell-cli",
            "scope": "openshell:all", "claims": { "realm_access": { "roles": ["openshell-user"] } }
        }))
        .await;
    let mut alice = gateway.client_with(&token).await;
    alice
        .create_provider(pb::Provider {
            name: "downstream".into(),
            r#type: "api".into(),
            credential: "downstream".into(),
            endpoint: "https://api.example".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let resolved = alice
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "downstream".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let exchanged = claims(&resolved.token);
    assert_eq!(exchanged["sub"], "alice", "{exchanged}");
    assert_eq!(exchanged["aud"], "downstream-api", "{exchanged}");
    assert_ne!(resolved.token, token);

    // Her sandbox holds no token of hers: a clear FAILED_PRECONDITION.
    let mut request = support::create_request("agent");
    request.providers = vec!["downstream".into()];
    let sandbox = alice.create_sandbox(request).await.unwrap().into_inner();
    let mut as_sandbox = gateway
        .client_with(&mock.token_of(&sandbox.id).await.unwrap())
        .await;
    let refused = as_sandbox
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "downstream".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    gateway.stop().await;
}
