//! Owner keys cannot collide: a subject spelled like another principal's owner key sees
//! nothing of theirs; and a store written before keys were namespaced is migrated once,
//! with sandbox tokens minted before it still working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conformance::mock::{Faults, MockCompute, MockServer};
use gateway_shim::auth::{Claims, SigningKey};
use gateway_shim::store::{Kind, Record, Store};
use prost::Message as _;
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use sha2::{Digest, Sha256};
use support::oidc::{self, OidcPeer};
use support::{Gateway, args, by_name, create_request, sandbox_names};
use tonic::Code;

struct Suite {
    mock: MockCompute,
    _compute: MockServer,
    credentials: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Suite {
    async fn start() -> Self {
        let dir = proto::testing::short_dir();
        let compute_socket = dir.path().join("c.sock");
        let mock = MockCompute::new(Faults::default());
        let compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
        let credentials = support::serve_mock_credentials(dir.path());
        Self {
            mock,
            _compute: compute,
            credentials,
            dir,
        }
    }

    fn args(&self, peer: &OidcPeer) -> gateway_shim::GatewayConfig {
        let dir = self.dir.path();
        let mut args = args(dir, &dir.join("c.sock"), Some(&self.credentials));
        args.oidc = oidc::oidc_args(peer);
        args.credential_policy = Some(support::credential_policy(
            dir,
            "grants: [{credentials: [mock-static]}]",
        ));
        args
    }
}

fn provider(name: &str) -> pb::Provider {
    pb::Provider {
        name: name.into(),
        r#type: "generic".into(),
        credential: "mock-static".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_spelled_like_other_owners_see_nothing_of_theirs() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start().await;
    let gateway = Gateway::start(suite.args(&peer)).await;
    gateway.wait_health(ServingStatus::Serving).await;

    // Victims: the local admin, and a user whose subject is hashed into her key.
    let mut local = gateway.client().await;
    local
        .create_sandbox(create_request("victim"))
        .await
        .unwrap();
    let victim_subject = "alice@example.com";
    let victim_token =
        oidc::user_token(&peer, victim_subject, &["openshell-user"], "openshell:all").await;
    let mut victim = gateway.client_with(&victim_token).await;
    victim
        .create_sandbox(create_request("victim"))
        .await
        .unwrap();
    victim.create_provider(provider("mine")).await.unwrap();
    victim
        .set_inference_route(pb::SetInferenceRouteRequest {
            provider: "mine".into(),
            model: "secret-model".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Attackers whose subjects spell the victims' keys, old and new forms.
    let digest: String = Sha256::digest(victim_subject.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let victim_key = oidc::owner(&peer, victim_subject);
    for subject in [
        "local".to_owned(),
        format!("u-{digest}"),
        format!("h--{digest}"),
        victim_key.clone(),
        victim_key.rsplit('.').next().unwrap().to_owned(),
    ] {
        let token = oidc::user_token(&peer, &subject, &["openshell-user"], "openshell:all").await;
        let mut attacker = gateway.client_with(&token).await;
        assert_eq!(
            sandbox_names(&mut attacker).await,
            Vec::<String>::new(),
            "{subject}"
        );
        for refused in [
            attacker.get_sandbox(by_name("victim")).await.unwrap_err(),
            attacker
                .delete_sandbox(by_name("victim"))
                .await
                .unwrap_err(),
            attacker
                .get_provider(pb::ProviderRef {
                    name: "mine".into(),
                })
                .await
                .unwrap_err(),
            attacker
                .get_inference_route(pb::GetInferenceRouteRequest::default())
                .await
                .unwrap_err(),
        ] {
            assert_eq!(refused.code(), Code::NotFound, "{subject}: {refused:?}");
        }
        let providers = attacker
            .list_providers(pb::ListProvidersRequest {})
            .await
            .unwrap()
            .into_inner()
            .providers;
        assert!(providers.is_empty(), "{subject}: {providers:?}");
    }
    // The victims still have theirs.
    assert_eq!(
        sandbox_names(&mut local).await.len(),
        2,
        "the admin sees all"
    );
    assert_eq!(sandbox_names(&mut victim).await, ["victim"]);
    gateway.stop().await;
}

/// Records as a gateway before owner namespaces wrote them: alice's provider, route and
/// sandbox under her bare subject.
async fn legacy_store(url: &str) {
    let store = Store::open(url).await.unwrap();
    let provider = pb::Provider {
        name: "alice/openai".into(),
        r#type: "generic".into(),
        credential: "mock-static".into(),
        endpoint: "https://alice.example".into(),
        owner: "alice".into(),
        ..Default::default()
    };
    let mut record = Record::new(Kind::Provider, "alice/openai", "alice/openai", "alice");
    record.body = provider.encode_to_vec();
    store.create(&record).await.unwrap();
    let route = pb::InferenceRoute {
        name: "inference.local".into(),
        provider: "alice/openai".into(),
        model: "alice-model".into(),
        owner: "alice".into(),
        ..Default::default()
    };
    let key = "inference.local/alice";
    let mut record = Record::new(Kind::InferenceRoute, key, key, "alice");
    record.body = route.encode_to_vec();
    store.create(&record).await.unwrap();
    let sandbox = pb::Sandbox {
        id: "sb-0000000000000001".into(),
        name: "box".into(),
        owner: "alice".into(),
        providers: vec!["alice/openai".into()],
        ..Default::default()
    };
    let mut record = Record::new(Kind::Sandbox, &sandbox.id, "box", "alice");
    record.body = sandbox.encode_to_vec();
    store.create(&record).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_owner_namespaces_is_migrated_once() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start().await;
    let url = format!("sqlite:{}", suite.dir.path().join("gw.db").display());
    legacy_store(&url).await;
    let key_file = suite.dir.path().join("signing.key");
    std::fs::write(&key_file, [7u8; 32]).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let legacy_token = SigningKey::from_bytes(vec![7u8; 32])
        .unwrap()
        .mint(&Claims {
            sid: "sb-0000000000000001".into(),
            own: "alice".into(),
            exp: (SystemTime::now() + Duration::from_secs(600))
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            // Minted before tenants: no tenant claim.
            tnt: None,
        });
    let alice_key = format!("{}/openai", oidc::owner(&peer, "alice"));

    // Twice: the migration runs on the first start and is a no-op on the second.
    for start in 0..2 {
        let mut args = suite.args(&peer);
        args.db_url = url.clone();
        args.sandbox_token_key_file = Some(key_file.clone());
        let gateway = Gateway::start(args).await;
        gateway.wait_health(ServingStatus::Serving).await;
        let mut alice = gateway.client_with(&oidc::alice(&peer).await).await;
        let sandbox = alice
            .get_sandbox(by_name("box"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(sandbox.owner, oidc::owner(&peer, "alice"), "start {start}");
        assert_eq!(sandbox.providers, ["openai"], "start {start}");
        let route = alice
            .get_inference_route(pb::GetInferenceRouteRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(route.model, "alice-model");
        let mut admin = gateway.client_with(&oidc::admin(&peer).await).await;
        let keys = support::provider_names(&mut admin).await;
        assert_eq!(keys, std::slice::from_ref(&alice_key), "start {start}");

        // A sandbox token minted before the migration still resolves its provider.
        let mut from_sandbox = gateway.client_with(legacy_token.expose()).await;
        let resolved = from_sandbox
            .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
                provider: "openai".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resolved.endpoint, "https://alice.example");
        // Bob, whose subject was never alice's, sees none of it.
        let mut bob = gateway.client_with(&oidc::bob(&peer).await).await;
        assert!(sandbox_names(&mut bob).await.is_empty());
        gateway.stop().await;
    }
    drop(suite.mock);
}
