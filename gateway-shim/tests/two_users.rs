//! Two users and an admin through the public API: both name a provider `openai`, each
//! sees and uses only their own, both fall back to what the admin shares, and
//! another user's things answer NOT_FOUND.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use conformance::mock::{Faults, MockCompute, MockCredentials, MockServer, serve_credentials};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use support::oidc::{self, OidcPeer};
use support::{Client, Gateway, args, by_name, create_request};
use tonic::Code;

fn provider(name: &str, credential: &str, endpoint: &str) -> pb::Provider {
    pb::Provider {
        name: name.into(),
        r#type: "openai".into(),
        credential: credential.into(),
        endpoint: endpoint.into(),
        ..Default::default()
    }
}

fn get(name: &str) -> pb::ProviderRef {
    pb::ProviderRef { name: name.into() }
}

fn attach(sandbox: &str, provider: &str) -> pb::AttachmentRequest {
    pb::AttachmentRequest {
        sandbox: Some(by_name(sandbox)),
        provider: provider.into(),
    }
}

fn route(provider: &str, model: &str) -> pb::SetInferenceRouteRequest {
    pb::SetInferenceRouteRequest {
        provider: provider.into(),
        model: model.into(),
        ..Default::default()
    }
}

async fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn names(client: &mut Client) -> Vec<(String, String)> {
    let mut listed: Vec<_> = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner()
        .providers
        .into_iter()
        .map(|p| (p.name, p.owner))
        .collect();
    listed.sort();
    listed
}

struct Suite {
    gateway: Gateway,
    mock: MockCompute,
    _compute: MockServer,
    _dir: tempfile::TempDir,
}

impl Suite {
    async fn start(peer: &OidcPeer) -> Self {
        let dir = proto::testing::short_dir();
        let compute_socket = dir.path().join("c.sock");
        let credentials_socket = dir.path().join("k.sock");
        let mock = MockCompute::new(Faults::default());
        let compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
        let config = proto::SocketConfig {
            path: credentials_socket.clone(),
            ..Default::default()
        };
        let credentials = MockCredentials::with_defaults(Faults::default());
        tokio::spawn(async move {
            serve_credentials(&config, credentials, std::future::pending()).await
        });
        let mut args = args(dir.path(), &compute_socket, Some(&credentials_socket));
        args.oidc = oidc::oidc_args(peer);
        // The operator lets every user back providers with the mock's static credential.
        args.credential_policy = Some(support::credential_policy(
            dir.path(),
            "grants: [{credentials: [mock-static]}]",
        ));
        let gateway = Gateway::start(args).await;
        gateway.wait_health(ServingStatus::Serving).await;
        Self {
            gateway,
            mock,
            _compute: compute,
            _dir: dir,
        }
    }

    async fn sandbox_client(&self, owner: &mut Client, name: &str, providers: &[&str]) -> Client {
        let mut request = create_request(name);
        request.providers = providers.iter().map(|p| (*p).to_owned()).collect();
        let sandbox = owner.create_sandbox(request).await.unwrap().into_inner();
        self.gateway
            .client_with(&self.mock.token_of(&sandbox.id).await.unwrap())
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_and_bob_each_see_only_their_own_and_share_the_admins() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start(&peer).await;
    let mut alice = suite.gateway.client_with(&oidc::alice(&peer).await).await;
    let mut bob = suite.gateway.client_with(&oidc::bob(&peer).await).await;
    let mut admin = suite.gateway.client_with(&oidc::admin(&peer).await).await;

    // The admin's provider and route are shared; each user makes their own `openai`.
    admin
        .create_provider(provider("openai", "mock-static", "https://shared.example"))
        .await
        .unwrap();
    admin
        .set_inference_route(route("openai", "global-model"))
        .await
        .unwrap();
    let own = alice
        .create_provider(provider("openai", "mock-static", "https://alice.example"))
        .await
        .unwrap();
    let (alice_owner, bob_owner) = (oidc::owner(&peer, "alice"), oidc::owner(&peer, "bob"));
    let (alice_key, bob_key) = (
        format!("{alice_owner}/openai"),
        format!("{bob_owner}/openai"),
    );
    assert_eq!(
        (own.get_ref().name.as_str(), own.get_ref().owner.as_str()),
        ("openai", alice_owner.as_str())
    );
    bob.create_provider(provider("openai", "mock-static", "https://bob.example"))
        .await
        .unwrap();

    // Each resolves their own.
    let mine = alice
        .get_provider(get("openai"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.endpoint, "https://alice.example");
    let his = bob.get_provider(get("openai")).await.unwrap().into_inner();
    assert_eq!(his.endpoint, "https://bob.example");
    let resolved = alice
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "openai".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.endpoint, "https://alice.example");

    // Listing: own plus shared, never the other's. The admin sees both scoped keys.
    let shared_owner = oidc::owner(&peer, "root-admin");
    assert_eq!(
        names(&mut alice).await,
        [
            ("openai".to_owned(), alice_owner.clone()),
            ("openai".to_owned(), shared_owner.clone())
        ]
    );
    assert_eq!(
        names(&mut admin).await,
        [
            (alice_key.clone(), alice_owner.clone()),
            (bob_key.clone(), bob_owner.clone()),
            ("openai".to_owned(), shared_owner.clone()),
        ]
    );
    assert_eq!(
        admin
            .get_provider(get(&alice_key))
            .await
            .unwrap()
            .into_inner()
            .owner,
        alice_owner
    );

    // Bob cannot get, update, delete, attach or route to alice's: NOT_FOUND.
    assert_eq!(
        code(bob.get_provider(get(&alice_key)).await).await,
        Code::NotFound
    );
    assert_eq!(
        code(
            bob.update_provider(provider(&alice_key, "mock-static", "https://x"))
                .await
        )
        .await,
        Code::NotFound
    );
    assert_eq!(
        code(bob.delete_provider(get(&alice_key)).await).await,
        Code::NotFound
    );
    assert_eq!(
        code(bob.set_inference_route(route(&alice_key, "m")).await).await,
        Code::NotFound
    );
    bob.create_sandbox(create_request("bobs")).await.unwrap();
    assert_eq!(
        code(bob.attach_provider(attach("bobs", &alice_key)).await).await,
        Code::NotFound
    );
    // Nor can he touch her sandbox.
    let alices = alice
        .create_sandbox(create_request("alices"))
        .await
        .unwrap()
        .into_inner();
    let by_id = pb::SandboxRef {
        id: alices.id.clone(),
        name: String::new(),
    };
    assert_eq!(
        code(bob.get_sandbox(by_id.clone()).await).await,
        Code::NotFound
    );
    assert_eq!(
        code(bob.delete_sandbox(by_id.clone()).await).await,
        Code::NotFound
    );
    assert_eq!(
        code(bob.get_sandbox(by_name("alices")).await).await,
        Code::NotFound
    );
    let bobs_list = bob
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bobs_list
            .sandboxes
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["bobs"]
    );
    let all = admin
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.sandboxes.len(), 2, "admins see every sandbox");
    // Shared providers are the admin's to change.
    assert_eq!(
        code(
            alice
                .update_provider(provider("openai", "mock-static", "https://mine"))
                .await
        )
        .await,
        Code::Ok,
        "alice updates her own openai, not the shared one"
    );
    assert_eq!(
        admin
            .get_provider(get("openai"))
            .await
            .unwrap()
            .into_inner()
            .endpoint,
        "https://shared.example"
    );

    // Bob drops his own and falls back to the shared provider; routes likewise.
    bob.delete_provider(get("openai")).await.unwrap();
    assert_eq!(
        bob.get_provider(get("openai"))
            .await
            .unwrap()
            .into_inner()
            .endpoint,
        "https://shared.example"
    );
    assert_eq!(
        bob.get_inference_route(pb::GetInferenceRouteRequest::default())
            .await
            .unwrap()
            .into_inner()
            .model,
        "global-model"
    );

    // Bob's own route serves his sandboxes; alice's sandboxes use the global route.
    bob.create_provider(provider("openai", "mock-static", "https://bob.example"))
        .await
        .unwrap();
    let bobs_route = bob
        .set_inference_route(route("openai", "bob-model"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (bobs_route.name.as_str(), bobs_route.provider.as_str()),
        ("inference.local", "openai")
    );
    let mut bobs_sandbox = suite.sandbox_client(&mut bob, "bob-agent", &[]).await;
    let bundle = bobs_sandbox
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.routes.len(), 1);
    assert_eq!(
        (
            bundle.routes[0].name.as_str(),
            bundle.routes[0].model.as_str(),
            bundle.routes[0].endpoint.as_str()
        ),
        ("inference.local", "bob-model", "https://bob.example")
    );
    let mut alices_sandbox = suite
        .sandbox_client(&mut alice, "alice-agent", &["openai"])
        .await;
    let bundle = alices_sandbox
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.routes[0].model, "global-model");
    assert_eq!(
        alice
            .get_inference_route(pb::GetInferenceRouteRequest::default())
            .await
            .unwrap()
            .into_inner()
            .owner,
        shared_owner
    );

    // A sandbox resolves the provider it was given (alice's own), not bob's.
    let resolved = alices_sandbox
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "openai".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.endpoint, "https://mine");

    // Still attached: alice cannot delete her provider.
    let refused = alice.delete_provider(get("openai")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("alice-agent"), "{refused:?}");
    suite.gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_finds_the_entry_actually_attached() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start(&peer).await;
    let mut admin = suite.gateway.client_with(&oidc::admin(&peer).await).await;
    let mut carol = suite
        .gateway
        .client_with(&oidc::user_token(&peer, "carol", &["openshell-user"], "openshell:all").await)
        .await;
    admin
        .create_provider(provider("openai", "mock-static", "https://shared.example"))
        .await
        .unwrap();
    let mut request = create_request("work");
    request.providers = vec!["openai".into()];
    carol.create_sandbox(request).await.unwrap();
    // Now carol makes her own `openai`; the sandbox still has the shared one.
    carol
        .create_provider(provider("openai", "mock-static", "https://carol.example"))
        .await
        .unwrap();
    let detached = carol
        .detach_provider(attach("work", "openai"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        detached.providers.is_empty(),
        "the shared entry was detached: {:?}",
        detached.providers
    );
    let again = carol
        .detach_provider(attach("work", "openai"))
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Code::NotFound,
        "never silently detaching nothing"
    );
    suite.gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_cannot_resolve_a_token_exchange_without_a_subject() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start(&peer).await;
    let mut alice = suite.gateway.client_with(&oidc::alice(&peer).await).await;
    alice
        .create_provider(provider(
            "downstream",
            "mock-exchange",
            "https://api.example",
        ))
        .await
        .unwrap();
    let mut sandbox = suite
        .sandbox_client(&mut alice, "agent", &["downstream"])
        .await;
    let refused = sandbox
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "downstream".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("token exchange"), "{refused:?}");
    suite.gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_route_writers_conflict_instead_of_overwriting() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start(&peer).await;
    let mut alice = suite.gateway.client_with(&oidc::alice(&peer).await).await;
    alice
        .create_provider(provider("openai", "mock-static", "https://a"))
        .await
        .unwrap();
    let first = alice
        .set_inference_route(route("openai", "m1"))
        .await
        .unwrap()
        .into_inner();
    let mut stale = route("openai", "m2");
    stale.resource_version = first.resource_version;
    alice.set_inference_route(stale.clone()).await.unwrap();
    stale.model = "m3".into();
    let lost = alice.set_inference_route(stale).await.unwrap_err();
    assert_eq!(lost.code(), Code::Aborted);
    assert_eq!(
        alice
            .get_inference_route(pb::GetInferenceRouteRequest::default())
            .await
            .unwrap()
            .into_inner()
            .model,
        "m2"
    );
    suite.gateway.stop().await;
}
