//! Authorize what a provider points at: users back providers only with credentials the
//! operator's credential policy grants them, checked at create and update and again at
//! every resolve (through the public API, with real OIDC tokens and the real
//! credentials driver serving static secrets).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use conformance::mock::{Faults, MockCompute};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use support::oidc::{self, OidcPeer};
use support::{Client, Gateway, args, create_request};
use tonic::Code;

const DRIVER_CONFIG: &str = "credentials:
  alice-cred: {kind: static, token_ref: alice-cred}
  team-shared: {kind: static, token_ref: team-shared}
";
fn policy(alice: &str) -> String {
    format!(
        "grants:
  - credentials: [\"team-*\"]
  - credentials: [alice-cred]
    owners: [{alice}]
"
    )
}

fn provider(name: &str, credential: &str) -> pb::Provider {
    pb::Provider {
        name: name.into(),
        r#type: "generic".into(),
        credential: credential.into(),
        endpoint: "https://llm.example/v1".into(),
        ..Default::default()
    }
}

async fn resolve(client: &mut Client, name: &str) -> Result<String, tonic::Status> {
    client
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: name.into(),
        })
        .await
        .map(|reply| reply.into_inner().token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_authorized_at_create_and_at_every_resolve() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let dir = proto::testing::short_dir();
    let credentials_socket = support::credentials_driver(
        dir.path(),
        DRIVER_CONFIG,
        &[
            ("alice-cred", "alice-secret"),
            ("team-shared", "team-secret"),
        ],
    );
    let compute_socket = dir.path().join("c.sock");
    let mock = MockCompute::new(Faults::default());
    let _compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    let policy = support::credential_policy(dir.path(), &policy(&oidc::owner(&peer, "alice")));
    let mut gateway_args = args(dir.path(), &compute_socket, Some(&credentials_socket));
    gateway_args.oidc = oidc::oidc_args(&peer);
    gateway_args.credential_policy = Some(policy.clone());
    let gateway = Gateway::start(gateway_args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut alice = gateway.client_with(&oidc::alice(&peer).await).await;
    let mut bob = gateway.client_with(&oidc::bob(&peer).await).await;
    let mut admin = gateway.client_with(&oidc::admin(&peer).await).await;

    // Bob naming alice's credential: refused at create, and nothing stored.
    let refused = bob
        .create_provider(provider("stolen", "alice-cred"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().starts_with("credential:"), "{refused:?}");
    assert_eq!(
        bob.get_provider(pb::ProviderRef {
            name: "stolen".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    // Nor by updating one of his own to point at it.
    bob.create_provider(provider("mine", "team-shared"))
        .await
        .unwrap();
    let refused = bob
        .update_provider(provider("mine", "alice-cred"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(resolve(&mut bob, "mine").await.unwrap(), "team-secret");

    // A credential the driver does not serve: refused, listing only what bob may use.
    let unknown = bob
        .create_provider(provider("typo", "team-shard"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument, "{unknown:?}");
    assert!(unknown.message().contains("team-shared"), "{unknown:?}");
    assert!(
        !unknown.message().contains("alice-cred"),
        "another user's credential name is not revealed: {unknown:?}"
    );

    // Alice may use hers, as a user and from her sandbox.
    alice
        .create_provider(provider("mine", "alice-cred"))
        .await
        .unwrap();
    assert_eq!(resolve(&mut alice, "mine").await.unwrap(), "alice-secret");
    let mut request = create_request("box");
    request.providers = vec!["mine".into()];
    let sandbox = alice.create_sandbox(request).await.unwrap().into_inner();
    let mut from_sandbox = gateway
        .client_with(&mock.token_of(&sandbox.id).await.unwrap())
        .await;
    assert_eq!(
        resolve(&mut from_sandbox, "mine").await.unwrap(),
        "alice-secret"
    );
    alice
        .set_inference_route(pb::SetInferenceRouteRequest {
            provider: "mine".into(),
            model: "m".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let bundle = from_sandbox
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.routes[0].api_key, "alice-secret");

    // The operator revokes alice's grant: her existing provider stops resolving at
    // once, for her, her sandbox and her inference bundle.
    std::fs::write(&policy, "grants: [{credentials: [\"team-*\"]}]\n").unwrap();
    for denied in [
        resolve(&mut alice, "mine").await.unwrap_err(),
        resolve(&mut from_sandbox, "mine").await.unwrap_err(),
        from_sandbox
            .get_inference_bundle(pb::GetInferenceBundleRequest {})
            .await
            .unwrap_err(),
    ] {
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
        assert!(!denied.message().contains("alice-secret"), "{denied:?}");
    }
    assert_eq!(resolve(&mut bob, "mine").await.unwrap(), "team-secret");

    // Admins may reference any credential; their shared providers serve everyone.
    admin
        .create_provider(provider("shared", "alice-cred"))
        .await
        .unwrap();
    assert_eq!(resolve(&mut bob, "shared").await.unwrap(), "alice-secret");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_policy_users_get_nothing_but_token_exchanges() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let dir = proto::testing::short_dir();
    let config = format!(
        "{DRIVER_CONFIG}  downstream:
    kind: token_exchange
    issuer: {}
    client_id: credentials-driver
    client_secret_ref: alice-cred
    audience: [downstream-api]
",
        peer.issuer
    );
    let credentials_socket = support::credentials_driver(
        dir.path(),
        &config,
        &[
            ("alice-cred", "alice-secret"),
            ("team-shared", "team-secret"),
        ],
    );
    let compute_socket = dir.path().join("c.sock");
    let _compute =
        support::serve_mock_compute(&compute_socket, MockCompute::new(Faults::default())).await;
    let mut gateway_args = args(dir.path(), &compute_socket, Some(&credentials_socket));
    gateway_args.oidc = oidc::oidc_args(&peer);
    let gateway = Gateway::start(gateway_args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut bob = gateway.client_with(&oidc::bob(&peer).await).await;
    for credential in ["alice-cred", "team-shared"] {
        let refused = bob
            .create_provider(provider("p", credential))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{credential}");
    }
    bob.create_provider(provider("p", "downstream"))
        .await
        .unwrap();
    gateway.stop().await;
}
