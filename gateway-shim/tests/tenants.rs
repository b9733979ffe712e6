//! Tenants through the public API with real identities: OIDC users whose tenant comes
//! from a claim of the test peer's signed tokens, and users a trusted authenticating
//! proxy vouches for on its own listener. Two tenants, users and an admin in each, and
//! a platform admin: nothing of one tenant is visible or usable from the other
//! (NOT_FOUND, on every method naming an object), each tenant's shared provider and
//! global route serve only it, the platform layer serves both, and bundles carry the
//! owner's tenant as the fairness key whatever a client sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use conformance::mock::{Faults, MockCompute, MockServer};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use serde_json::json;
use support::oidc::{self, AUDIENCE, OidcPeer};
use support::{Client, Gateway, args, by_name, create_request, free_port};
use tonic::Code;

const PROXY_SECRET: &str = "the-proxy-and-the-gateway-share-this";
const FAIRNESS: &str = "x-gateway-inference-fairness-id";

fn provider(name: &str, endpoint: &str) -> pb::Provider {
    pb::Provider {
        name: name.into(),
        r#type: "openai".into(),
        credential: "mock-static".into(),
        endpoint: endpoint.into(),
        ..Default::default()
    }
}

fn get(name: &str) -> pb::ProviderRef {
    pb::ProviderRef { name: name.into() }
}

fn route(provider: &str, model: &str, platform: bool) -> pb::SetInferenceRouteRequest {
    pb::SetInferenceRouteRequest {
        provider: provider.into(),
        model: model.into(),
        platform,
        ..Default::default()
    }
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

/// A token of the peer for `sub` in `tenant` with `roles` (and `groups`).
async fn token(
    peer: &OidcPeer,
    sub: &str,
    tenant: &str,
    roles: &[&str],
    groups: &[&str],
) -> String {
    peer.mint(json!({
        "sub": sub, "aud": AUDIENCE, "azp": "openshell-cli", "scope": "openshell:all",
        "claims": { "realm_access": { "roles": roles }, "tenant": tenant, "groups": groups }
    }))
    .await
}

struct Suite {
    gateway: Gateway,
    proxy_addr: SocketAddr,
    mock: MockCompute,
    _compute: MockServer,
    _dir: tempfile::TempDir,
}

impl Suite {
    async fn start(peer: &OidcPeer) -> Self {
        Self::start_with_rules(peer, None).await
    }

    /// With the attribute rules `rules` (YAML) in the file `--access-rules` names.
    async fn start_with_rules(peer: &OidcPeer, rules: Option<&str>) -> Self {
        let dir = proto::testing::short_dir();
        let compute_socket = dir.path().join("c.sock");
        let mock = MockCompute::new(Faults::default());
        let compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
        let credentials_socket = support::serve_mock_credentials(dir.path());
        let secret = dir.path().join("proxy-secret");
        std::fs::write(&secret, PROXY_SECRET).unwrap();
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let proxy_addr = free_port();
        let rules_file = dir.path().join("access-rules.yaml");
        std::fs::write(&rules_file, rules.unwrap_or("rules: []")).unwrap();
        let mut args = args(dir.path(), &compute_socket, Some(&credentials_socket));
        // The flags as an operator writes them, parsed by the real flag parser.
        let flags = <gateway_shim::Args as clap::Parser>::try_parse_from([
            "gateway-shim",
            "serve",
            "--compute-driver-socket",
            "/unused",
            "--oidc-issuer",
            &peer.issuer,
            "--oidc-audience",
            AUDIENCE,
            "--oidc-scopes-claim",
            "scope",
            "--oidc-tenant-claim",
            "tenant",
            "--oidc-platform-admin-role",
            "openshell-platform-admin",
            "--oidc-attribute-claim",
            "teams=groups",
            "--trusted-proxy-listen",
            &proxy_addr.to_string(),
            "--trusted-proxy-peer",
            "127.0.0.1/32",
            "--trusted-proxy-secret-file",
            secret.to_str().unwrap(),
            "--trusted-proxy-principal-header",
            "X-MaaS-User",
            "--trusted-proxy-attributes-header",
            "X-MaaS-Attributes",
            "--trusted-proxy-attribute-header",
            "X-MaaS-Group=teams",
            "--trusted-proxy-tenant-attribute",
            "tenant",
            "--access-rules",
            rules_file.to_str().unwrap(),
        ])
        .unwrap();
        let gateway_shim::Command::Serve(serve) = flags.command else {
            panic!("serve parses as serve");
        };
        let parsed = serve.config().unwrap();
        args.oidc = parsed.oidc;
        args.trusted_proxy = parsed.trusted_proxy;
        args.access_rules = parsed.access_rules;
        args.credential_policy = Some(support::credential_policy(
            dir.path(),
            "grants: [{credentials: [mock-static]}]",
        ));
        let gateway = Gateway::start(args).await;
        gateway.wait_health(ServingStatus::Serving).await;
        Self {
            gateway,
            proxy_addr,
            mock,
            _compute: compute,
            _dir: dir,
        }
    }

    /// A caller through the trusted proxy: `user` of `tenant` in `teams`.
    async fn via_proxy(&self, user: &str, tenant: &str, teams: &str, roles: &[&str]) -> Client {
        let attributes = json!({ "tenant": tenant, "roles": roles }).to_string();
        support::client_with_headers(
            self.proxy_addr,
            &[
                ("x-trusted-proxy-secret", PROXY_SECRET),
                ("x-maas-user", user),
                ("x-maas-attributes", &attributes),
                ("x-maas-group", teams),
            ],
        )
        .await
    }

    /// Creates sandbox `name` for `owner` and returns it with a client holding its token.
    async fn sandbox(&self, owner: &mut Client, name: &str) -> (pb::Sandbox, Client) {
        let sandbox = owner
            .create_sandbox(create_request(name))
            .await
            .unwrap()
            .into_inner();
        let token = self.mock.token_of(&sandbox.id).await.unwrap();
        (sandbox, self.gateway.client_with(&token).await)
    }
}

async fn bundle(client: &mut Client) -> pb::ResolvedRoute {
    let mut bundle = client
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.routes.len(), 1, "one route");
    bundle.routes.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_see_and_use_nothing_of_each_other_and_share_the_platform_layer() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start(&peer).await;
    let gw = &suite.gateway;
    let mut alice = gw
        .client_with(&token(&peer, "alice", "acme", &["openshell-user"], &[]).await)
        .await;
    let mut acme_admin = gw
        .client_with(&token(&peer, "ann", "acme", &["openshell-admin"], &[]).await)
        .await;
    let mut bob = gw
        .client_with(&token(&peer, "bob", "globex", &["openshell-user"], &[]).await)
        .await;
    let mut globex_admin = gw
        .client_with(&token(&peer, "gus", "globex", &["openshell-admin"], &[]).await)
        .await;
    let mut root = gw
        .client_with(&token(&peer, "root", "acme", &["openshell-platform-admin"], &[]).await)
        .await;
    // Through the proxy: carol in acme, frank in globex.
    let mut carol = suite.via_proxy("carol", "acme", "ml", &[]).await;
    let mut frank = suite.via_proxy("frank", "globex", "ml", &[]).await;

    // Each tenant's admin shares an `openai` and sets the tenant's route; the platform
    // admin sets the platform layer's.
    acme_admin
        .create_provider(provider("openai", "https://acme.example"))
        .await
        .unwrap();
    globex_admin
        .create_provider(provider("openai", "https://globex.example"))
        .await
        .unwrap();
    acme_admin
        .set_inference_route(route("openai", "acme-model", false))
        .await
        .unwrap();
    globex_admin
        .set_inference_route(route("openai", "globex-model", false))
        .await
        .unwrap();
    assert_eq!(
        code(
            acme_admin
                .create_provider(provider("platform:llm", "https://x"))
                .await
        ),
        Code::PermissionDenied,
        "a tenant admin is no platform admin"
    );
    root.create_provider(provider("platform:llm", "https://platform.example"))
        .await
        .unwrap();
    assert_eq!(
        code(root.set_inference_route(route("openai", "m", true)).await),
        Code::InvalidArgument,
        "the platform route needs a platform provider"
    );
    root.set_inference_route(route("platform:llm", "platform-model", true))
        .await
        .unwrap();

    // Each tenant's shared provider serves only that tenant, to OIDC and proxy users.
    for (client, endpoint) in [
        (&mut alice, "https://acme.example"),
        (&mut carol, "https://acme.example"),
        (&mut bob, "https://globex.example"),
        (&mut frank, "https://globex.example"),
    ] {
        let got = client
            .get_provider(get("openai"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.endpoint, endpoint);
        let resolved = client
            .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
                provider: "openai".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resolved.endpoint, endpoint);
        let platform = client
            .get_provider(get("platform:llm"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(platform.endpoint, "https://platform.example");
        let mut names = support::provider_names(client).await;
        names.sort();
        assert_eq!(names, ["openai", "platform:llm"]);
    }
    // The platform's provider is used, never changed, by tenants.
    for client in [&mut alice, &mut acme_admin, &mut globex_admin] {
        let changed = client
            .update_provider(provider("platform:llm", "https://mine.example"))
            .await;
        assert_eq!(code(changed), Code::PermissionDenied);
    }

    // Sandboxes: the owner's tenant decides the route and the fairness key.
    let (alice_box, mut alice_sandbox) = suite.sandbox(&mut alice, "work").await;
    let (carol_box, mut carol_sandbox) = suite.sandbox(&mut carol, "work").await;
    let (bob_box, mut bob_sandbox) = suite.sandbox(&mut bob, "work").await;
    for (client, model, tenant) in [
        (&mut alice_sandbox, "acme-model", "acme"),
        (&mut carol_sandbox, "acme-model", "acme"),
        (&mut bob_sandbox, "globex-model", "globex"),
    ] {
        let route = bundle(client).await;
        assert_eq!(route.model, model);
        assert_eq!(
            route.headers.get(FAIRNESS).map(String::as_str),
            Some(tenant)
        );
    }
    // A client-sent fairness header never reaches a bundle, on either listener.
    let token = suite.mock.token_of(&bob_box.id).await.unwrap();
    let mut forging = support::client_with_headers(
        gw.addr,
        &[
            ("authorization", &format!("Bearer {token}")),
            (FAIRNESS, "acme"),
            ("x-gateway-inference-objective", "premium"),
        ],
    )
    .await;
    let forged = bundle(&mut forging).await;
    assert_eq!(
        forged.headers.get(FAIRNESS).map(String::as_str),
        Some("globex")
    );
    assert!(!forged.headers.contains_key("x-gateway-inference-objective"));

    // Without the tenant's route, both tenants fall back to the platform's.
    acme_admin
        .delete_inference_route(pb::DeleteInferenceRouteRequest::default())
        .await
        .unwrap();
    assert_eq!(bundle(&mut alice_sandbox).await.model, "platform-model");
    assert_eq!(bundle(&mut bob_sandbox).await.model, "globex-model");
    globex_admin
        .delete_inference_route(pb::DeleteInferenceRouteRequest::default())
        .await
        .unwrap();
    let platform = bundle(&mut bob_sandbox).await;
    assert_eq!(
        (platform.model.as_str(), platform.endpoint.as_str()),
        ("platform-model", "https://platform.example")
    );
    assert_eq!(
        platform.headers.get(FAIRNESS).map(String::as_str),
        Some("globex")
    );

    // Acme's admin sees carol's (proxy) and alice's (OIDC) sandboxes: one tenant.
    let mut acme_sandboxes: Vec<String> = acme_admin
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes
        .into_iter()
        .map(|s| s.id)
        .collect();
    acme_sandboxes.sort();
    let mut expected = vec![alice_box.id.clone(), carol_box.id.clone()];
    expected.sort();
    assert_eq!(acme_sandboxes, expected);

    // Watching: globex's admin sees globex's sandboxes only, in the snapshot and after.
    let mut watch = globex_admin
        .watch_sandboxes(pb::WatchSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut watched = Vec::new();
    loop {
        let event = watch.message().await.unwrap().unwrap();
        match event.payload.unwrap() {
            pb::sandbox_event::Payload::Sandbox(sandbox) => watched.push(sandbox.id),
            pb::sandbox_event::Payload::SnapshotDone(_) => break,
            pb::sandbox_event::Payload::DeletedId(_) => {}
        }
    }
    assert_eq!(watched, std::slice::from_ref(&bob_box.id));
    alice
        .create_sandbox(create_request("acme-later"))
        .await
        .unwrap();
    let globex_later = bob
        .create_sandbox(create_request("globex-later"))
        .await
        .unwrap()
        .into_inner();
    loop {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
            .await
            .expect("globex's own change arrives")
            .unwrap()
            .unwrap();
        if let Some(pb::sandbox_event::Payload::Sandbox(sandbox)) = event.payload {
            assert_ne!(
                sandbox.name, "acme-later",
                "acme's sandbox reached globex's watch"
            );
            if sandbox.id == globex_later.id {
                break;
            }
        }
    }

    // Every method naming acme's objects answers NOT_FOUND to globex, admin included.
    alice
        .create_provider(provider("own", "https://alice-own.example"))
        .await
        .unwrap();
    let alice_own_key = format!("{}/own", oidc::owner(&peer, "alice"));
    for client in [&mut bob, &mut globex_admin, &mut frank] {
        let by_id = pb::SandboxRef {
            id: alice_box.id.clone(),
            ..Default::default()
        };
        let codes = [
            code(client.get_sandbox(by_id.clone()).await),
            code(client.stop_sandbox(by_id.clone()).await),
            code(client.start_sandbox(by_id.clone()).await),
            code(client.delete_sandbox(by_id.clone()).await),
            code(
                client
                    .read_sandbox_logs(pb::ReadSandboxLogsRequest {
                        sandbox: Some(by_id.clone()),
                        ..Default::default()
                    })
                    .await,
            ),
            code(
                client
                    .attach_provider(pb::AttachmentRequest {
                        sandbox: Some(by_id.clone()),
                        provider: "openai".into(),
                    })
                    .await,
            ),
            code(
                client
                    .detach_provider(pb::AttachmentRequest {
                        sandbox: Some(by_id.clone()),
                        provider: "openai".into(),
                    })
                    .await,
            ),
            code(
                client
                    .get_sandbox_settings(pb::GetSandboxSettingsRequest {
                        sandbox: Some(by_id.clone()),
                    })
                    .await,
            ),
            code(
                client
                    .update_sandbox_settings(pb::UpdateSandboxSettingsRequest {
                        sandbox: Some(by_id.clone()),
                        ..Default::default()
                    })
                    .await,
            ),
            code(client.get_provider(get(&alice_own_key)).await),
            code(
                client
                    .update_provider(provider(&alice_own_key, "https://stolen.example"))
                    .await,
            ),
            code(client.delete_provider(get(&alice_own_key)).await),
            code(
                client
                    .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
                        provider: alice_own_key.clone(),
                    })
                    .await,
            ),
        ];
        assert!(
            codes.iter().all(|c| *c == Code::NotFound),
            "globex sees acme's objects: {codes:?}"
        );
        let listed = client
            .list_sandboxes(pb::ListSandboxesRequest {})
            .await
            .unwrap()
            .into_inner()
            .sandboxes;
        assert!(
            listed
                .iter()
                .all(|s| s.id != alice_box.id && s.id != carol_box.id)
        );
    }
    // The sandbox by name in the other tenant is another sandbox (or none).
    let globex_work = bob.get_sandbox(by_name("work")).await.unwrap().into_inner();
    assert_ne!(globex_work.id, alice_box.id);
    // Acme's objects are untouched.
    let still = alice
        .get_sandbox(pb::SandboxRef {
            id: alice_box.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.name, "work");
    assert_eq!(
        alice
            .get_provider(get("own"))
            .await
            .unwrap()
            .into_inner()
            .endpoint,
        "https://alice-own.example"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_headers_count_only_on_the_proxy_listener_and_only_from_the_proxy() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start(&peer).await;
    let gw = &suite.gateway;
    let mut carol = suite.via_proxy("carol", "acme", "ml", &[]).await;
    carol
        .create_sandbox(create_request("carols"))
        .await
        .unwrap();

    // The same headers on the normal listener: no identity without a token...
    let attributes = json!({ "tenant": "acme" }).to_string();
    let identity = [
        ("x-trusted-proxy-secret", PROXY_SECRET),
        ("x-maas-user", "carol"),
        ("x-maas-attributes", attributes.as_str()),
    ];
    let mut spoofer = support::client_with_headers(gw.addr, &identity).await;
    assert_eq!(
        code(spoofer.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Unauthenticated
    );
    // ...and with bob's token, bob of globex.
    let bob_token = token(&peer, "bob", "globex", &["openshell-user"], &[]).await;
    let bearer = format!("Bearer {bob_token}");
    let mut with_token: Vec<(&str, &str)> = identity.to_vec();
    with_token.push(("authorization", &bearer));
    let mut bob_spoofing = support::client_with_headers(gw.addr, &with_token).await;
    let seen = bob_spoofing
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes;
    assert!(seen.is_empty(), "bob sees none of carol's: {seen:?}");

    // A proxy that fails the listener's check is refused: wrong secret, no secret.
    for secret in ["wrong-secret-of-the-right-length!!!", ""] {
        let mut headers = vec![
            ("x-maas-user", "carol"),
            ("x-maas-attributes", attributes.as_str()),
        ];
        if !secret.is_empty() {
            headers.push(("x-trusted-proxy-secret", secret));
        }
        let mut stranger = support::client_with_headers(suite.proxy_addr, &headers).await;
        let refused = stranger
            .list_sandboxes(pb::ListSandboxesRequest {})
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        assert!(
            !refused.message().contains("secret"),
            "{}",
            refused.message()
        );
    }
    // Missing principal or malformed values: UNAUTHENTICATED, no detail in the reply.
    let mut anonymous = support::client_with_headers(
        suite.proxy_addr,
        &[
            ("x-trusted-proxy-secret", PROXY_SECRET),
            ("x-maas-attributes", &attributes),
        ],
    )
    .await;
    assert_eq!(
        code(anonymous.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Unauthenticated
    );
    let mut malformed = support::client_with_headers(
        suite.proxy_addr,
        &[
            ("x-trusted-proxy-secret", PROXY_SECRET),
            ("x-maas-user", "carol"),
            ("x-maas-attributes", "{\"tenant\": "),
        ],
    )
    .await;
    let refused = malformed
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(!refused.message().contains("JSON"), "{}", refused.message());
    // The proxy's own call still works: carol sees hers.
    assert_eq!(support::sandbox_names(&mut carol).await, ["carols"]);
}

const RULES: &str = "
rules:
  - effect: forbid
    actions: [use]
    caller: {teams: [contractors]}
  - effect: permit
    actions: [read, use]
    shared_in: teams
";

fn resolve_request(name: &str) -> pb::ResolveProviderCredentialRequest {
    pb::ResolveProviderCredentialRequest {
        provider: name.into(),
    }
}

fn shared_with(teams: &[&str]) -> Vec<pb::AccessAttribute> {
    vec![pb::AccessAttribute {
        category: "teams".into(),
        values: teams.iter().map(|t| (*t).to_owned()).collect(),
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_shared_with_a_team_serves_teammates_only_and_a_forbid_first_wins() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start_with_rules(&peer, Some(RULES)).await;
    let gw = &suite.gateway;
    let user = |sub: &'static str, tenant: &'static str, groups: &'static [&'static str]| {
        let peer = &peer;
        async move {
            gw.client_with(&token(peer, sub, tenant, &["openshell-user"], groups).await)
                .await
        }
    };
    let mut alice = user("alice", "acme", &["ml"]).await;
    let mut dave = user("dave", "acme", &["ml", "infra"]).await;
    let mut erin = user("erin", "acme", &["ops"]).await;
    let mut carl = user("carl", "acme", &["ml", "contractors"]).await;
    let mut bob = user("bob", "globex", &["ml"]).await;
    // Through the proxy too: a teammate and a stranger.
    let mut pia = suite.via_proxy("pia", "acme", "ml", &[]).await;
    let mut oscar = suite.via_proxy("oscar", "acme", "ops", &[]).await;

    let mut gpu = provider("gpu", "https://gpu.alice.example");
    gpu.access = shared_with(&["ml"]);
    let created = alice
        .create_provider(gpu.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.access, shared_with(&["ml"]));
    let key = format!("{}/gpu", oidc::owner(&peer, "alice"));

    // Teammates list, read and use it by its key.
    for teammate in [&mut dave, &mut pia] {
        let listed = support::provider_names(teammate).await;
        assert_eq!(listed, std::slice::from_ref(&key));
        let got = teammate.get_provider(get(&key)).await.unwrap().into_inner();
        assert_eq!(got.endpoint, "https://gpu.alice.example");
        let resolved = teammate
            .resolve_provider_credential(resolve_request(&key))
            .await;
        assert_eq!(
            resolved.unwrap().into_inner().endpoint,
            "https://gpu.alice.example"
        );
        // Never change it.
        assert_eq!(
            code(teammate.update_provider(provider(&key, "https://x")).await),
            Code::NotFound
        );
        assert_eq!(
            code(teammate.delete_provider(get(&key)).await),
            Code::NotFound
        );
    }
    // Others do not see it: another team, another tenant with the same team name.
    for stranger in [&mut erin, &mut oscar, &mut bob] {
        assert_eq!(code(stranger.get_provider(get(&key)).await), Code::NotFound);
        assert_eq!(
            code(
                stranger
                    .resolve_provider_credential(resolve_request(&key))
                    .await
            ),
            Code::NotFound
        );
        let listed = stranger
            .list_providers(pb::ListProvidersRequest {})
            .await
            .unwrap()
            .into_inner()
            .providers;
        assert!(listed.is_empty(), "{listed:?}");
    }
    // The forbid comes first: a contractor on the team reads it but cannot use it.
    assert_eq!(code(carl.get_provider(get(&key)).await), Code::Ok);
    assert_eq!(
        code(
            carl.resolve_provider_credential(resolve_request(&key))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            carl.create_sandbox(pb::CreateSandboxRequest {
                providers: vec![key.clone()],
                ..create_request("contracted")
            })
            .await
        ),
        Code::NotFound
    );

    // Dave's sandbox uses it while it stays shared with his team.
    let sandbox = dave
        .create_sandbox(pb::CreateSandboxRequest {
            providers: vec![key.clone()],
            ..create_request("training")
        })
        .await
        .unwrap()
        .into_inner();
    let mut in_sandbox = gw
        .client_with(&suite.mock.token_of(&sandbox.id).await.unwrap())
        .await;
    let resolved = in_sandbox
        .resolve_provider_credential(resolve_request(&key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.endpoint, "https://gpu.alice.example");
    // Alice stops sharing it: the sandbox loses it at once.
    gpu.access = shared_with(&["research"]);
    alice.update_provider(gpu).await.unwrap();
    assert_eq!(
        code(
            in_sandbox
                .resolve_provider_credential(resolve_request(&key))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(code(dave.get_provider(get(&key)).await), Code::NotFound);
    // Malformed access attributes name the field.
    let mut bad = provider("bad", "https://x");
    bad.access = shared_with(&["a/b"]);
    let refused = alice.create_provider(bad).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("access:"),
        "{}",
        refused.message()
    );
}

/// The CLI as users run it: a platform admin sets the platform layer (`platform:`
/// provider, `inference set --platform` with a static header), a user shares a
/// provider with a team (`--access`), and a sandbox's `inference bundle` shows the
/// headers its client must send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_the_platform_layer_shares_with_a_team_and_shows_bundle_headers() {
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let suite = Suite::start_with_rules(&peer, Some(RULES)).await;
    let url = format!("http://{}", suite.gateway.addr);
    let config_dir = tempfile::tempdir().unwrap();
    let cli = |token: &str, args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-shim"))
            .args(args)
            .args(["--gateway", &url, "--token", token, "-o", "json"])
            .env("OPENSHELL_CONFIG_DIR", config_dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let root = token(&peer, "root", "acme", &["openshell-platform-admin"], &[]).await;
    let alice = token(&peer, "alice", "acme", &["openshell-user"], &["ml"]).await;
    let dave = token(&peer, "dave", "acme", &["openshell-user"], &["ml"]).await;
    let create = [
        "provider",
        "create",
        "--type",
        "openai",
        "--credential",
        "mock-static",
        "--endpoint",
        "https://llm.example",
    ];
    cli(&root, &[&create[..], &["platform:llm"]].concat());
    let route = cli(
        &root,
        &[
            "inference",
            "set",
            "--platform",
            "--provider",
            "platform:llm",
            "--model",
            "m1",
            "--header",
            "x-team-budget=gold",
        ],
    );
    assert_eq!(route["headers"]["x-team-budget"], "gold", "{route}");
    let shown = cli(&alice, &["inference", "get", "--platform"]);
    assert_eq!(shown["provider"], "platform:llm", "{shown}");
    let shared = cli(
        &alice,
        &[&create[..], &["gpu", "--access", "teams=ml,infra"]].concat(),
    );
    assert_eq!(
        shared["access"]["teams"],
        json!(["infra", "ml"]),
        "{shared}"
    );
    let key = format!("{}/gpu", oidc::owner(&peer, "alice"));
    let seen = cli(&dave, &["provider", "get", &key]);
    assert_eq!(seen["endpoint"], "https://llm.example", "{seen}");
    let unshared = cli(&alice, &["provider", "update", "gpu", "--unshare"]);
    assert_eq!(unshared["access"], json!({}), "{unshared}");

    // A sandbox's bundle: the platform route, its static header and the fairness key.
    let mut client = suite.gateway.client_with(&dave).await;
    let sandbox = client
        .create_sandbox(create_request("cli"))
        .await
        .unwrap()
        .into_inner();
    let sandbox_token = suite.mock.token_of(&sandbox.id).await.unwrap();
    let bundle = cli(&sandbox_token, &["inference", "bundle"]);
    let headers = &bundle["routes"][0]["headers"];
    assert_eq!(headers["x-team-budget"], "gold", "{bundle}");
    assert_eq!(headers[FAIRNESS], "acme", "{bundle}");
    // A route may not declare the gateway's own headers.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-shim"))
        .args([
            "inference",
            "set",
            "--platform",
            "--provider",
            "platform:llm",
            "--model",
            "m1",
            "--header",
            "X-Gateway-Inference-Fairness-Id=acme",
        ])
        .args(["--gateway", &url, "--token", &root])
        .env("OPENSHELL_CONFIG_DIR", config_dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set by the gateway"), "{stderr}");
}
