//! Usage metering and tenants' own provider keys, end to end: callers with API keys the
//! control-plane test peer knows (and OIDC users of the test peer) call the gateway,
//! whose flags are parsed as an operator writes them; the real credentials driver
//! resolves a static and a client_credentials credential (its token cache says cached
//! or fresh); the control plane reads usage back through the internal API on the
//! admin port and on its Unix socket. The internal API's gate and parameters are
//! checked on the real `serve` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conformance::control_plane_peer::{ControlPlanePeer, KeyRecord};
use conformance::mock::{Faults, MockCompute, MockServer};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use serde_json::{Value, json};
use support::oidc::{AUDIENCE, OidcPeer};
use support::{Gateway, args, create_request, free_port, secret_file};
use tonic::Code;

const SECRET: &str = "control-plane-shared-secret";
const BOT_KEY: &str = "gwk_acme-ci-bot-0123456789abcdef";
const OTHER_KEY: &str = "gwk_acme-other-bot-0123456789ab";
const PLATFORM_KEY: &str = "sk-platform-own-key";
const SEARCH_KEY: &str = "sk-platform-search-key";

fn key(consumer: &str, tenant: &str) -> KeyRecord {
    KeyRecord::active(consumer, tenant)
}

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

struct World {
    gateway: Gateway,
    peer: ControlPlanePeer,
    oidc: OidcPeer,
    mock: MockCompute,
    faults: Faults,
    _compute: MockServer,
    admin: SocketAddr,
    internal_socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    /// A gateway with the control plane over its Unix socket, the internal API on the
    /// admin port and on a socket, OIDC users with a tenant claim, the real
    /// credentials driver, and `extra` flags.
    async fn start(extra: &[&str]) -> Self {
        let oidc = OidcPeer::start_with(support::oidc::peer_config()).await;
        let dir = proto::testing::short_dir();
        let peer = ControlPlanePeer::start(SECRET, &dir.path().join("cp.sock"))
            .await
            .unwrap();
        let compute_socket = dir.path().join("c.sock");
        let faults = Faults::default();
        let mock = MockCompute::new(faults.clone());
        let compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
        let credentials = format!(
            "credentials:\n  platform-llm: {{kind: static, token_ref: platform-llm}}\n  platform-search: {{kind: static, token_ref: platform-search}}\n  cc:\n    kind: client_credentials\n    issuer: {}\n    client_id: ci\n    client_secret_ref: ci-secret\n",
            oidc.issuer
        );
        let credentials_socket = support::credentials_driver(
            dir.path(),
            &credentials,
            &[
                ("platform-llm", PLATFORM_KEY),
                ("platform-search", SEARCH_KEY),
                ("ci-secret", "ci-secret"),
            ],
        );
        let policy = support::credential_policy(
            dir.path(),
            "grants: [{credentials: [platform-llm, platform-search, cc]}]",
        );
        let secret = secret_file(dir.path(), "cp-secret", SECRET);
        let admin = free_port();
        let internal_socket = dir.path().join("i.sock");
        let control_plane = format!("unix:{}", peer.socket.display());
        let admin_flag = admin.to_string();
        let flags = [
            "gateway-shim",
            "serve",
            "--compute-driver-socket",
            "/unused",
            "--control-plane-url",
            &control_plane,
            "--control-plane-secret-file",
            &secret,
            "--internal-api-socket",
            internal_socket.to_str().unwrap(),
            "--metrics-addr",
            &admin_flag,
            "--credential-policy",
            policy.to_str().unwrap(),
            "--oidc-issuer",
            &oidc.issuer,
            "--oidc-audience",
            AUDIENCE,
            "--oidc-tenant-claim",
            "tenant",
            "--oidc-platform-admin-role",
            "openshell-platform-admin",
        ]
        .into_iter()
        .chain(extra.iter().copied());
        let parsed = <gateway_shim::Args as clap::Parser>::try_parse_from(flags).unwrap();
        let gateway_shim::Command::Serve(serve) = parsed.command else {
            panic!("serve parses as serve");
        };
        let parsed = serve.config().unwrap();
        let mut config = args(dir.path(), &compute_socket, Some(&credentials_socket));
        config.control_plane = parsed.control_plane;
        config.internal_api = parsed.internal_api;
        config.metrics_addr = parsed.metrics_addr;
        config.credential_policy = parsed.credential_policy;
        config.oidc = parsed.oidc;
        // A file, as users run it (one test abandons a call).
        config.db_url = format!("sqlite:{}", dir.path().join("gateway.db").display());
        let gateway = Gateway::start(config).await;
        gateway.wait_health(ServingStatus::Serving).await;
        Self {
            gateway,
            peer,
            oidc,
            mock,
            faults,
            _compute: compute,
            admin,
            internal_socket,
            _dir: dir,
        }
    }

    /// A user of `tenant` with `roles`, by an OIDC token.
    async fn user(&self, sub: &str, tenant: &str, roles: &[&str]) -> support::Client {
        let token = self
            .oidc
            .mint(json!({
                "sub": sub, "aud": AUDIENCE, "azp": "openshell-cli", "scope": "openshell:all",
                "claims": { "realm_access": { "roles": roles }, "tenant": tenant }
            }))
            .await;
        self.gateway.client_with(&token).await
    }

    /// Creates sandbox `name` (with `providers`) for `owner`; returns it and a client
    /// holding its token.
    async fn sandbox(
        &self,
        owner: &mut support::Client,
        name: &str,
        providers: &[&str],
    ) -> (pb::Sandbox, support::Client) {
        let mut request = create_request(name);
        request.providers = providers.iter().map(|p| (*p).to_owned()).collect();
        let sandbox = owner.create_sandbox(request).await.unwrap().into_inner();
        let token = self.mock.token_of(&sandbox.id).await.unwrap();
        (sandbox, self.gateway.client_with(&token).await)
    }

    /// `GET path` on the admin port with `secret`: the status and the JSON body.
    async fn admin_get(&self, path: &str, secret: Option<&str>) -> (u16, Value) {
        http_get(self.admin, path, secret).await
    }
}

async fn http_get(addr: SocketAddr, path: &str, secret: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(secret) = secret {
        request = request.header("x-internal-secret", secret);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

/// `GET path` over the Unix socket `socket` with `secret`.
async fn unix_get(socket: &Path, path: &str, secret: Option<&str>) -> (u16, Value) {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyperlocal::UnixConnector);
    let mut request = http::Request::get(hyperlocal::Uri::new(socket, path));
    if let Some(secret) = secret {
        request = request.header("x-internal-secret", secret);
    }
    let reply = client
        .request(
            request
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn resolve(provider: &str) -> pb::ResolveProviderCredentialRequest {
    pb::ResolveProviderCredentialRequest {
        provider: provider.into(),
    }
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

fn code_name(code: Code) -> String {
    proto::admin::code_name(code).to_owned()
}

/// What the test made: (method, outcome, credential source) → calls.
#[derive(Default)]
struct Made(BTreeMap<(String, String, Option<String>), u64>);

impl Made {
    fn add(&mut self, method: &str, outcome: Code, credential: Option<&str>) {
        *self
            .0
            .entry((
                method.to_owned(),
                code_name(outcome),
                credential.map(str::to_owned),
            ))
            .or_default() += 1;
    }

    fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// The counts of a usage answer, keyed like [`Made`].
fn counted(counts: &Value) -> BTreeMap<(String, String, Option<String>), u64> {
    let mut seen = BTreeMap::new();
    for count in counts.as_array().unwrap() {
        *seen
            .entry((
                count["method"].as_str().unwrap().to_owned(),
                count["outcome"].as_str().unwrap().to_owned(),
                count["credential"].as_str().map(str::to_owned),
            ))
            .or_default() += count["count"].as_u64().unwrap();
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_adds_up_exactly_to_the_calls_made() {
    let world = World::start(&[]).await;
    let started = now_secs();
    world.peer.put_key(BOT_KEY, key("ci-bot", "acme")).await;
    world
        .peer
        .put_key(OTHER_KEY, key("other-bot", "acme"))
        .await;
    let mut bot = world.gateway.client_with(BOT_KEY).await;
    let mut other = world.gateway.client_with(OTHER_KEY).await;
    let mut made = Made::default();
    let resolve_method = "ResolveProviderCredential";

    // Not metered: provider writes and reads.
    bot.create_provider(pb::Provider {
        name: "cc".into(),
        r#type: "api".into(),
        credential: "cc".into(),
        endpoint: "https://api.example".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    bot.list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap();

    // Resolves: the driver's first is fresh (a token request), the next from its cache.
    let first = bot
        .resolve_provider_credential(resolve("cc"))
        .await
        .unwrap();
    made.add(resolve_method, Code::Ok, Some("fresh"));
    for _ in 0..2 {
        let again = bot
            .resolve_provider_credential(resolve("cc"))
            .await
            .unwrap();
        assert_eq!(again.get_ref().token, first.get_ref().token);
        made.add(resolve_method, Code::Ok, Some("cached"));
    }
    let missing = code(bot.resolve_provider_credential(resolve("nope")).await);
    assert_eq!(missing, Code::NotFound);
    made.add(resolve_method, missing, None);

    // Sandbox lifecycle, refusals included.
    let (a, mut a_sandbox) = world.sandbox(&mut bot, "a", &["cc"]).await;
    made.add("CreateSandbox", Code::Ok, None);
    let (b, _) = world.sandbox(&mut bot, "b", &[]).await;
    made.add("CreateSandbox", Code::Ok, None);
    let taken = code(bot.create_sandbox(create_request("a")).await);
    assert_eq!(taken, Code::AlreadyExists);
    made.add("CreateSandbox", taken, None);
    for (method, outcome) in [
        (
            "StopSandbox",
            code(bot.stop_sandbox(support::by_name("a")).await),
        ),
        (
            "StartSandbox",
            code(bot.start_sandbox(support::by_name("a")).await),
        ),
        (
            "DeleteSandbox",
            code(bot.delete_sandbox(support::by_name("b")).await),
        ),
        (
            "StopSandbox",
            code(bot.stop_sandbox(support::by_name("ghost")).await),
        ),
    ] {
        made.add(method, outcome, None);
    }
    assert_eq!(made.0[&("StopSandbox".into(), "NOT_FOUND".into(), None)], 1);

    // The sandbox's own calls count for its owner.
    a_sandbox
        .resolve_provider_credential(resolve("cc"))
        .await
        .unwrap();
    made.add(resolve_method, Code::Ok, Some("cached"));
    a_sandbox
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap();
    made.add("GetInferenceBundle", Code::Ok, None);

    // A caller who gives up mid-call (the driver is slow) is metered as cancelled.
    world
        .faults
        .set_latency("CreateSandbox", Duration::from_secs(2))
        .await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        bot.create_sandbox(create_request("slow")),
    )
    .await;
    assert!(gave_up.is_err(), "the caller gave up first");
    made.add("CreateSandbox", Code::Cancelled, None);
    world
        .faults
        .set_latency("CreateSandbox", Duration::ZERO)
        .await;

    // Another caller of the same tenant: counted apart.
    world.sandbox(&mut other, "o", &[]).await;

    // Totals.
    let caller = "key.ci-bot";
    let (status, totals) = world
        .admin_get(&format!("/internal/usage?caller={caller}"), Some(SECRET))
        .await;
    assert_eq!(status, 200, "{totals}");
    assert_eq!(totals["total"], made.total(), "{totals}");
    assert_eq!(counted(&totals["counts"]), made.0, "{totals}");
    let (_, others) = world
        .admin_get("/internal/usage?caller=key.other-bot", Some(SECRET))
        .await;
    assert_eq!(others["total"], 1, "{others}");
    let (_, later) = world
        .admin_get(
            &format!(
                "/internal/usage?caller={caller}&since_ts={}",
                now_secs() + 60
            ),
            Some(SECRET),
        )
        .await;
    assert_eq!(later["total"], 0, "{later}");
    let (_, since) = world
        .admin_get(
            &format!("/internal/usage?caller={caller}&since_ts={}", started - 1),
            Some(SECRET),
        )
        .await;
    assert_eq!(since["total"], made.total());

    // Day buckets add up to the same (two if the test ran across midnight UTC).
    let (status, days) = world
        .admin_get(
            &format!("/internal/usage?caller={caller}&bucket=day"),
            Some(SECRET),
        )
        .await;
    assert_eq!(status, 200, "{days}");
    let buckets = days["days"].as_array().unwrap();
    assert!((1..=2).contains(&buckets.len()), "{days}");
    let mut merged = BTreeMap::new();
    for bucket in buckets {
        let start = bucket["start_ts"].as_i64().unwrap();
        assert_eq!(start % 86_400, 0, "{bucket}");
        assert!(
            (start..start + 86_400).contains(&now_secs()) || start <= started,
            "{bucket}"
        );
        let counts = counted(&bucket["counts"]);
        assert_eq!(
            bucket["total"].as_u64().unwrap(),
            counts.values().sum::<u64>()
        );
        for (k, v) in counts {
            *merged.entry(k).or_default() += v;
        }
    }
    assert_eq!(merged, made.0, "{days}");

    // Recent calls, newest first, bounded by `limit`; the sandbox's carry its id.
    let (status, all) = world
        .admin_get(
            &format!("/internal/usage/recent?caller={caller}&limit=1000"),
            Some(SECRET),
        )
        .await;
    assert_eq!(status, 200, "{all}");
    let calls = all["calls"].as_array().unwrap();
    assert_eq!(calls.len() as u64, made.total());
    assert!(
        calls
            .windows(2)
            .all(|w| w[0]["ts_ms"].as_i64() >= w[1]["ts_ms"].as_i64()),
        "{all}"
    );
    assert!(calls.iter().all(|c| c["tenant"] == "acme"));
    let by_sandbox: Vec<_> = calls
        .iter()
        .filter(|c| c["sandbox"] == a.id.as_str())
        .map(|c| c["method"].as_str().unwrap())
        .collect();
    // Its create, stop and start, and its own resolve and bundle.
    assert_eq!(by_sandbox.len(), 5, "{all}");
    let deleted: Vec<_> = calls
        .iter()
        .filter(|c| c["method"] == "DeleteSandbox")
        .map(|c| c["sandbox"].clone())
        .collect();
    assert_eq!(deleted, [json!("b")], "the sandbox as the caller named it");
    assert!(calls.iter().any(|c| c["sandbox"] == b.id.as_str()), "{all}");
    let (_, three) = world
        .admin_get(
            &format!("/internal/usage/recent?caller={caller}&limit=3"),
            Some(SECRET),
        )
        .await;
    assert_eq!(three["calls"].as_array().unwrap()[..], calls[..3]);

    // The same answers on the Unix socket, and the same gate.
    let (status, over_socket) = unix_get(
        &world.internal_socket,
        &format!("/internal/usage?caller={caller}"),
        Some(SECRET),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(over_socket["counts"], totals["counts"]);
    let (status, _) = unix_get(
        &world.internal_socket,
        &format!("/internal/usage?caller={caller}"),
        None,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_bring_their_own_keys_for_the_providers_the_platform_opened() {
    let mut world = World::start(&["--tenant-provider-key", "llm=OPENAI_API_KEY"]).await;
    for (consumer, tenant) in [
        ("acme-bot", "acme"),
        ("globex-bot", "globex"),
        ("initech-bot", "initech"),
    ] {
        world
            .peer
            .put_key(
                &format!("gwk_{consumer}-0123456789abcdef"),
                key(consumer, tenant),
            )
            .await;
    }
    world
        .peer
        .put_tenant_env(
            "acme",
            &[
                ("OPENAI_API_KEY", "sk-acme"),
                ("SEARCH_API_KEY", "sk-acme-search"),
            ],
        )
        .await;
    world
        .peer
        .put_tenant_env("globex", &[("OPENAI_API_KEY", "sk-globex")])
        .await;
    world
        .peer
        .put_tenant_env("hooli", &[("OPENAI_API_KEY", "sk-hooli")])
        .await;
    let mut root = world
        .user("root", "acme", &["openshell-platform-admin"])
        .await;
    for (name, credential) in [
        ("platform:llm", "platform-llm"),
        ("platform:search", "platform-search"),
    ] {
        root.create_provider(pb::Provider {
            name: name.into(),
            r#type: "openai".into(),
            credential: credential.into(),
            endpoint: "https://llm.example".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    root.set_inference_route(pb::SetInferenceRouteRequest {
        provider: "platform:llm".into(),
        model: "m".into(),
        platform: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = |consumer: &str| {
        let key = format!("gwk_{consumer}-0123456789abcdef");
        let gateway = &world.gateway;
        async move { gateway.client_with(&key).await }
    };
    let acme = client("acme-bot").await;
    let globex = client("globex-bot").await;
    let mut initech = client("initech-bot").await;

    // Two tenants resolving the same provider at once: each gets its own key, every time.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (mut caller, expected) = if i % 2 == 0 {
            (acme.clone(), "sk-acme")
        } else {
            (globex.clone(), "sk-globex")
        };
        calls.spawn(async move {
            let token = caller
                .resolve_provider_credential(resolve("platform:llm"))
                .await
                .unwrap()
                .into_inner()
                .token;
            assert_eq!(token, expected);
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
    assert_eq!(
        world.peer.env_requests(),
        2,
        "one provider-env request per tenant, shared by its concurrent callers"
    );
    // A tenant without a key gets the platform's.
    let token =
        |reply: tonic::Response<pb::ResolveProviderCredentialResponse>| reply.into_inner().token;
    assert_eq!(
        token(
            initech
                .resolve_provider_credential(resolve("platform:llm"))
                .await
                .unwrap()
        ),
        PLATFORM_KEY
    );
    // A provider not opened to tenant keys never takes one, even a tenant's that exists.
    let mut acme_caller = acme.clone();
    assert_eq!(
        token(
            acme_caller
                .resolve_provider_credential(resolve("platform:search"))
                .await
                .unwrap()
        ),
        SEARCH_KEY
    );
    // A sandbox of the tenant: its resolves and its bundle carry the tenant's key.
    let (_, mut sandbox) = world
        .sandbox(&mut acme_caller, "agent", &["platform:llm"])
        .await;
    assert_eq!(
        token(
            sandbox
                .resolve_provider_credential(resolve("platform:llm"))
                .await
                .unwrap()
        ),
        "sk-acme"
    );
    let bundle = sandbox
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.routes[0].api_key, "sk-acme");
    let (_, mut initech_sandbox) = world.sandbox(&mut initech, "agent", &[]).await;
    let bundle = initech_sandbox
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.routes[0].api_key, PLATFORM_KEY);

    // The control plane down: a tenant never looked up gets the platform's key (and
    // callers are not held up), a tenant looked up moments ago keeps its own.
    world.peer.stop();
    let mut hooli = world.user("hal", "hooli", &["openshell-user"]).await;
    for _ in 0..3 {
        assert_eq!(
            token(
                hooli
                    .resolve_provider_credential(resolve("platform:llm"))
                    .await
                    .unwrap()
            ),
            PLATFORM_KEY
        );
    }
    assert_eq!(
        token(
            acme_caller
                .resolve_provider_credential(resolve("platform:llm"))
                .await
                .unwrap()
        ),
        "sk-acme"
    );

    // Metered by source: the tenant's key against the platform's file.
    let (_, usage) = http_get(
        world.admin,
        "/internal/usage?caller=key.acme-bot",
        Some(SECRET),
    )
    .await;
    let counts = counted(&usage["counts"]);
    let resolves = |source: &str| {
        counts
            .get(&(
                "ResolveProviderCredential".into(),
                "OK".into(),
                Some(source.into()),
            ))
            .copied()
            .unwrap_or_default()
    };
    // 20 at once, its sandbox's and one during the outage; `platform:search` once.
    assert_eq!(
        (resolves("tenant-key"), resolves("file")),
        (22, 1),
        "{usage}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_api_exists_only_with_a_secret_and_names_bad_parameters() {
    // Without a secret: the routes do not exist.
    let dir = proto::testing::short_dir();
    let (_compute, mut plain, _) = support::serve::with_compute(dir.path(), &[]).await;
    let admin = plain.admin_addr().unwrap();
    for path in [
        "/internal/usage?caller=key.x",
        "/internal/usage/recent?caller=key.x",
    ] {
        assert_eq!(http_get(admin, path, Some(SECRET)).await.0, 404, "{path}");
    }
    assert_eq!(http_get(admin, "/healthz", None).await.0, 200);

    // With one (the binary as the chart starts it): 403 without it or with another.
    let dir = proto::testing::short_dir();
    let secret = secret_file(dir.path(), "internal-secret", SECRET);
    let socket = dir.path().join("i.sock");
    let (_compute, mut gated, _) = support::serve::with_compute(
        dir.path(),
        &[
            "--internal-api-secret-file",
            &secret,
            "--internal-api-socket",
            socket.to_str().unwrap(),
        ],
    )
    .await;
    let admin = gated.admin_addr().unwrap();
    for path in [
        "/internal/usage?caller=key.x",
        "/internal/usage/recent?caller=key.x",
    ] {
        assert_eq!(http_get(admin, path, None).await.0, 403, "{path}");
        assert_eq!(
            http_get(admin, path, Some("control-plane-shared-secreT"))
                .await
                .0,
            403,
            "{path}"
        );
        let (status, body) = http_get(admin, path, Some(SECRET)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(unix_get(&socket, path, None).await.0, 403);
        assert_eq!(unix_get(&socket, path, Some(SECRET)).await.0, 200);
    }
    let (_, empty) = http_get(admin, "/internal/usage?caller=key.x", Some(SECRET)).await;
    assert_eq!(
        empty,
        json!({ "caller": "key.x", "since_ts": 0, "total": 0, "counts": [] })
    );

    // Bad parameters: 400 naming the parameter.
    for (path, names) in [
        ("/internal/usage", "caller"),
        ("/internal/usage?caller=", "caller"),
        (
            "/internal/usage?caller=key.x&since_ts=yesterday",
            "since_ts",
        ),
        ("/internal/usage?caller=key.x&since_ts=-5", "since_ts"),
        ("/internal/usage?caller=key.x&bucket=week", "bucket"),
        ("/internal/usage?caller=key.x&caller=key.y", "caller"),
        ("/internal/usage?caller=key.x&tenant=acme", "tenant"),
        ("/internal/usage/recent?caller=key.x&limit=0", "limit"),
        ("/internal/usage/recent?caller=key.x&limit=1001", "limit"),
        ("/internal/usage/recent?caller=key.x&limit=ten", "limit"),
        ("/internal/usage/recent", "caller"),
    ] {
        let (status, body) = http_get(admin, path, Some(SECRET)).await;
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with(&format!("{names}:")), "{path}: {error}");
    }
    // The secret is checked before anything else is said.
    assert_eq!(http_get(admin, "/internal/usage", None).await.0, 403);
    drop(gated);

    // Flags: a socket with no secret to check is refused at start, naming the fix.
    let refused = std::process::Command::new(support::serve::GATEWAY)
        .args([
            "serve",
            "--compute-driver-socket",
            "/unused",
            "--internal-api-socket",
            socket.to_str().unwrap(),
            "--check-config",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--internal-api-secret-file"), "{stderr}");
}
