//! API keys resolved by an external control plane: the control-plane test peer (over
//! a Unix socket and over TCP) answers `GET /internal/keys/resolve?sha256=…` and counts
//! requests; the gateway (its flags parsed as an operator writes them) authenticates
//! `Bearer gwk_…` callers through its resolve cache. The cache's lifetimes are tested
//! on a paused clock in `control_plane::cache::tests`; here, what a caller sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use conformance::control_plane_peer::{ControlPlanePeer, KeyRecord};
use conformance::mock::{Faults, MockCompute, MockServer};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use support::oidc::{AUDIENCE, OidcPeer};
use support::{Gateway, args, create_request};
use tonic::Code;

const SECRET: &str = "control-plane-shared-secret";
const KEY: &str = "gwk_ci-bot-key-0123456789abcdef";

fn record(consumer: &str, tenant: &str) -> KeyRecord {
    KeyRecord::active(consumer, tenant)
}

struct World {
    gateway: Gateway,
    peer: ControlPlanePeer,
    _compute: MockServer,
    dir: tempfile::TempDir,
}

/// The flags an operator writes, parsed by the real parser.
fn serve_flags(extra: &[&str]) -> Result<gateway_shim::GatewayConfig, String> {
    let args = [
        "gateway-shim",
        "serve",
        "--compute-driver-socket",
        "/unused",
    ]
    .into_iter()
    .chain(extra.iter().copied());
    let parsed =
        <gateway_shim::Args as clap::Parser>::try_parse_from(args).map_err(|e| e.to_string())?;
    let gateway_shim::Command::Serve(serve) = parsed.command else {
        panic!("serve parses as serve");
    };
    serve.config()
}

fn secret_file(dir: &Path, secret: &str) -> String {
    support::secret_file(dir, "cp-secret", secret)
}

impl World {
    /// A gateway using the peer over its Unix socket (`over_unix`) or over TCP.
    async fn start(over_unix: bool, oidc: Option<&OidcPeer>) -> Self {
        let dir = proto::testing::short_dir();
        let peer = ControlPlanePeer::start(SECRET, &dir.path().join("cp.sock"))
            .await
            .unwrap();
        let compute_socket = dir.path().join("c.sock");
        let compute =
            support::serve_mock_compute(&compute_socket, MockCompute::new(Faults::default())).await;
        let secret = secret_file(dir.path(), SECRET);
        let url = if over_unix {
            format!("unix:{}", peer.socket.display())
        } else {
            peer.url()
        };
        let mut flags = vec![
            "--control-plane-url".to_owned(),
            url,
            "--control-plane-secret-file".to_owned(),
            secret,
            "--control-plane-timeout".to_owned(),
            "1s".to_owned(),
        ];
        if !over_unix {
            flags.push("--control-plane-insecure-http".to_owned());
        }
        if let Some(oidc) = oidc {
            flags.extend(
                [
                    "--oidc-issuer",
                    &oidc.issuer,
                    "--oidc-audience",
                    AUDIENCE,
                    "--oidc-tenant-claim",
                    "tenant",
                ]
                .map(str::to_owned),
            );
        }
        let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
        let parsed = serve_flags(&refs).unwrap();
        let mut config = args(dir.path(), &compute_socket, None);
        config.control_plane = parsed.control_plane;
        config.oidc = parsed.oidc;
        // A file, as users run it (callers giving up mid-query are part of the tests;
        // `sqlite::memory:` is for tests that never cancel).
        config.db_url = format!("sqlite:{}", dir.path().join("gateway.db").display());
        let gateway = Gateway::start(config).await;
        gateway.wait_health(ServingStatus::Serving).await;
        Self {
            gateway,
            peer,
            _compute: compute,
            dir,
        }
    }
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_a_caller_of_the_tenant_the_control_plane_names() {
    let oidc = OidcPeer::start_with(support::oidc::peer_config()).await;
    let world = World::start(true, Some(&oidc)).await;
    world.peer.put_key(KEY, record("ci-bot", "acme")).await;
    let mut bot = world.gateway.client_with(KEY).await;
    let made = bot
        .create_sandbox(create_request("built-by-ci"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.owner, "key.ci-bot");
    // Warm: calls make no further request (one for the create above, none after).
    for _ in 0..10 {
        bot.list_sandboxes(pb::ListSandboxesRequest {})
            .await
            .unwrap();
    }
    assert_eq!(world.peer.requests(), 1, "a hit makes no request");

    // Its tenant's admin sees the sandbox; another tenant's does not.
    let admin_of = |tenant: &'static str| {
        let oidc = &oidc;
        async move {
            oidc.mint(serde_json::json!({
                "sub": format!("admin-{tenant}"), "aud": AUDIENCE, "azp": "cli",
                "claims": { "realm_access": { "roles": ["openshell-admin"] }, "tenant": tenant }
            }))
            .await
        }
    };
    let mut acme = world.gateway.client_with(&admin_of("acme").await).await;
    let mut globex = world.gateway.client_with(&admin_of("globex").await).await;
    assert_eq!(support::sandbox_names(&mut acme).await, ["built-by-ci"]);
    assert!(support::sandbox_names(&mut globex).await.is_empty());

    // Unknown keys are refused, and the refusal is cached too.
    let mut stranger = world.gateway.client_with("gwk_nobody-knows-this-key").await;
    for _ in 0..5 {
        let refused = stranger
            .list_sandboxes(pb::ListSandboxesRequest {})
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        assert!(!refused.message().contains("gwk_"), "{}", refused.message());
    }
    assert_eq!(world.peer.requests(), 2);

    // 200 concurrent cold calls with a new key: one request.
    let fresh = "gwk_fresh-key-for-a-burst-of-callers";
    world.peer.put_key(fresh, record("burst", "acme")).await;
    world.peer.set_latency(Duration::from_millis(100));
    let client = world.gateway.client_with(fresh).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let mut client = client.clone();
        calls.spawn(async move { code(client.list_sandboxes(pb::ListSandboxesRequest {}).await) });
    }
    while let Some(result) = calls.join_next().await {
        assert_eq!(result.unwrap(), Code::Ok);
    }
    assert_eq!(
        world.peer.requests(),
        3,
        "200 cold resolves of one key, one request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_control_plane_is_unavailable_never_a_guess() {
    let mut world = World::start(false, None).await;
    world.peer.put_key(KEY, record("ci-bot", "acme")).await;
    let mut bot = world.gateway.client_with(KEY).await;

    // 5xx with nothing cached: UNAVAILABLE (and nothing cached from it).
    world.peer.fail_with(503);
    assert_eq!(
        code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Unavailable
    );
    world.peer.fail_with(0);
    // Too slow: the timeout (1 s) makes it unreachable too.
    world.peer.set_latency(Duration::from_millis(1500));
    assert_eq!(
        code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Unavailable
    );
    world.peer.set_latency(Duration::ZERO);
    assert_eq!(
        code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Ok
    );
    // Once known, the answer serves its lifetime even when the peer is gone.
    world.peer.stop();
    assert_eq!(
        code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Ok
    );
    let mut other = world.gateway.client_with("gwk_never-seen-before").await;
    assert_eq!(
        code(other.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Unavailable,
        "refused connections: unreachable"
    );
    drop(world.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_gets_no_key_through_and_bad_flags_name_the_fix() {
    let dir = proto::testing::short_dir();
    let peer = ControlPlanePeer::start(SECRET, &dir.path().join("cp.sock"))
        .await
        .unwrap();
    peer.put_key(KEY, record("ci-bot", "acme")).await;
    let compute_socket = dir.path().join("c.sock");
    let _compute =
        support::serve_mock_compute(&compute_socket, MockCompute::new(Faults::default())).await;
    let wrong = secret_file(dir.path(), "not-the-shared-secret-at-all");
    let url = peer.url();
    let parsed = serve_flags(&[
        "--control-plane-url",
        &url,
        "--control-plane-secret-file",
        &wrong,
        "--control-plane-insecure-http",
    ])
    .unwrap();
    let mut config = args(dir.path(), &compute_socket, None);
    config.control_plane = parsed.control_plane;
    let gateway = Gateway::start(config).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut bot = gateway.client_with(KEY).await;
    assert_eq!(
        code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Unauthenticated,
        "the peer refuses a wrong secret (403): no key resolves"
    );

    // Flags: both or neither, https or unix (http only when insecure is said).
    let missing = serve_flags(&["--control-plane-url", "https://cp.example"]).unwrap_err();
    assert!(missing.contains("--control-plane-secret-file"), "{missing}");
    let alone = serve_flags(&["--control-plane-secret-file", &wrong]).unwrap_err();
    assert!(alone.contains("--control-plane-url"), "{alone}");
    let plain = serve_flags(&[
        "--control-plane-url",
        &url,
        "--control-plane-secret-file",
        &wrong,
    ])
    .unwrap_err();
    assert!(plain.contains("--control-plane-insecure-http"), "{plain}");
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let readable = serve_flags(&[
        "--control-plane-url",
        "unix:/run/cp.sock",
        "--control-plane-secret-file",
        &wrong,
    ])
    .unwrap_err();
    assert!(
        readable.contains("--control-plane-secret-file"),
        "{readable}"
    );
    // The default limit of users (and keys naming none): a minute's worth of burst.
    let limited = serve_flags(&["--rate-limit-per-min", "120"]).unwrap();
    assert_eq!(
        limited.rate_limit,
        Some(gateway_shim::auth::rate_limit::Rate {
            per_min: 120,
            burst: 120
        })
    );
    assert_eq!(
        serve_flags(&[]).unwrap().rate_limit,
        None,
        "unlimited by default"
    );
    // Without a control plane, an unknown key is simply not valid (local keys only).
    let dir2 = proto::testing::short_dir();
    let compute2 = dir2.path().join("c.sock");
    let _compute2 =
        support::serve_mock_compute(&compute2, MockCompute::new(Faults::default())).await;
    let plain_gateway = Gateway::start(args(dir2.path(), &compute2, None)).await;
    plain_gateway.wait_health(ServingStatus::Serving).await;
    let refused = plain_gateway
        .client_with(KEY)
        .await
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(refused.message(), "API key not valid");
}

/// A token of the OIDC peer for `sub` in `tenant` with `roles`.
async fn oidc_token(peer: &OidcPeer, sub: &str, tenant: &str, roles: &[&str]) -> String {
    peer.mint(serde_json::json!({
        "sub": sub, "aud": AUDIENCE, "azp": "cli", "scope": "openshell:all",
        "claims": { "realm_access": { "roles": roles }, "tenant": tenant }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_keys_are_authoritative_and_the_kill_switch_beats_the_control_plane() {
    let oidc = OidcPeer::start_with(support::oidc::peer_config()).await;
    let world = World::start(true, Some(&oidc)).await;
    let acme_admin = oidc_token(&oidc, "ann", "acme", &["openshell-admin"]).await;
    let globex_admin = oidc_token(&oidc, "gus", "globex", &["openshell-admin"]).await;
    let url = format!("http://{}", world.gateway.addr);
    let cli = |token: &str, args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-shim"))
            .args(args)
            .args(["--gateway", &url, "--token", token, "-o", "json"])
            .env("OPENSHELL_CONFIG_DIR", world.dir.path().join("cfg"))
            .output()
            .unwrap();
        (
            output.status.success(),
            serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    // An admin of acme creates a key with the CLI: shown once, never listed.
    let (ok, created, stderr) = cli(&acme_admin, &["apikey", "create", "--consumer", "ci-bot"]);
    assert!(ok, "{stderr}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("gwk_") && created["tenant"] == "acme",
        "{created}"
    );
    let (ok, listed, _) = cli(&acme_admin, &["apikey", "list"]);
    assert!(ok);
    assert_eq!(listed["keys"][0]["id"], id.as_str());
    assert!(
        !listed.to_string().contains(&key),
        "a key is never shown again"
    );
    let (_, others, _) = cli(&globex_admin, &["apikey", "list"]);
    assert_eq!(
        others["keys"],
        serde_json::json!([]),
        "another tenant's keys do not exist"
    );
    let (ok, _, stderr) = cli(&globex_admin, &["apikey", "revoke", &id]);
    assert!(!ok && stderr.contains("not found"), "{stderr}");

    // The local key works and never reaches the control plane.
    let mut bot = world.gateway.client_with(&key).await;
    let made = bot
        .create_sandbox(create_request("by-local-key"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.owner, "key.ci-bot");
    assert_eq!(
        world.peer.requests(),
        0,
        "a local key never reaches the control plane"
    );

    // A key of the control plane, blocked locally: refused whatever it says.
    world.peer.put_key(KEY, record("cp-bot", "acme")).await;
    let mut cp_bot = world.gateway.client_with(KEY).await;
    assert_eq!(
        code(cp_bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Ok
    );
    let (ok, _, stderr) = cli(&acme_admin, &["apikey", "block", "--consumer", "cp-bot"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        code(cp_bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Ok
    );
    let (ok, _, _) = cli(
        &acme_admin,
        &["apikey", "block", "--consumer", "cp-bot", "--unblock"],
    );
    assert!(ok);
    assert_eq!(
        code(cp_bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Ok
    );

    // A whole tenant: only a platform admin (here the local token, which is one) may.
    let (ok, _, stderr) = cli(&acme_admin, &["apikey", "block"]);
    assert!(!ok && stderr.contains("platform admin"), "{stderr}");
    let local = std::fs::read_to_string(&world.gateway.token_file).unwrap();
    let (ok, _, stderr) = cli(local.trim(), &["apikey", "block", "--tenant", "acme"]);
    assert!(ok, "{stderr}");
    for client in [&mut bot, &mut cp_bot] {
        assert_eq!(
            code(client.list_sandboxes(pb::ListSandboxesRequest {}).await),
            Code::Unauthenticated
        );
    }
    let (ok, _, _) = cli(
        local.trim(),
        &["apikey", "block", "--tenant", "acme", "--unblock"],
    );
    assert!(ok);

    // Revoked: refused, and the control plane is not asked about it either.
    let asked = world.peer.requests();
    let (ok, revoked, stderr) = cli(&acme_admin, &["apikey", "revoke", &id]);
    assert!(ok && revoked["active"] == false, "{stderr}");
    assert_eq!(
        code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Unauthenticated
    );
    assert_eq!(world.peer.requests(), asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_burst_is_held_back_and_another_of_its_tenant_is_not() {
    let world = World::start(true, None).await;
    let limited = |consumer: &str| KeyRecord {
        rate_per_min: 60,
        burst: 3,
        ..record(consumer, "acme")
    };
    world.peer.put_key(KEY, limited("ci-bot")).await;
    let other = "gwk_another-bot-of-the-same-tenant";
    world.peer.put_key(other, limited("other-bot")).await;
    let mut bot = world.gateway.client_with(KEY).await;
    for _ in 0..3 {
        assert_eq!(
            code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
            Code::Ok
        );
    }
    let held = bot
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap_err();
    assert_eq!(held.code(), Code::ResourceExhausted, "{held:?}");
    let pushback: u64 = held
        .metadata()
        .get("grpc-retry-pushback-ms")
        .expect("a pushback")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=1000).contains(&pushback),
        "{pushback} ms (one token a second)"
    );
    // Another caller of the same tenant has its own bucket.
    let mut other = world.gateway.client_with(other).await;
    for _ in 0..3 {
        assert_eq!(
            code(other.list_sandboxes(pb::ListSandboxesRequest {}).await),
            Code::Ok
        );
    }
    // After the pushback, the first caller is admitted again.
    tokio::time::sleep(Duration::from_millis(pushback + 50)).await;
    assert_eq!(
        code(bot.list_sandboxes(pb::ListSandboxesRequest {}).await),
        Code::Ok
    );
}

/// Every API-key write racing its twin, and with the caller giving up at every step:
/// concurrent revokes of one key all answer it revoked; blocks and unblocks racing
/// settle on the last; concurrent creates make distinct keys; a revoke or create
/// abandoned at any point leaves either nothing or a whole record, and a revoke retried
/// afterwards finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_writes_racing_or_abandoned_leave_whole_records() {
    let oidc = OidcPeer::start_with(support::oidc::peer_config()).await;
    let world = World::start(true, Some(&oidc)).await;
    let admin_token = oidc_token(&oidc, "ann", "acme", &["openshell-admin"]).await;
    let admin = world.gateway.client_with(&admin_token).await;
    let create = |consumer: &str| pb::CreateApiKeyRequest {
        consumer: consumer.into(),
        ..Default::default()
    };

    // Twenty creates at once: twenty distinct, working keys.
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mut admin = admin.clone();
        let request = create(&format!("bot-{i}"));
        creates.spawn(async move { admin.create_api_key(request).await.unwrap().into_inner() });
    }
    let mut made = Vec::new();
    while let Some(created) = creates.join_next().await {
        made.push(created.unwrap());
    }
    let ids: std::collections::BTreeSet<_> = made
        .iter()
        .map(|k| k.info.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(ids.len(), 20);

    // Eight revokes of one key at once: all answer it revoked; it is refused at once.
    let victim = &made[0];
    let id = victim.info.as_ref().unwrap().id.clone();
    let mut with_victim = world.gateway.client_with(&victim.key).await;
    assert_eq!(
        code(
            with_victim
                .list_sandboxes(pb::ListSandboxesRequest {})
                .await
        ),
        Code::Ok
    );
    let mut revokes = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut admin = admin.clone();
        let id = id.clone();
        revokes.spawn(async move { admin.revoke_api_key(pb::ApiKeyRef { id }).await });
    }
    while let Some(revoked) = revokes.join_next().await {
        assert!(!revoked.unwrap().unwrap().into_inner().active);
    }
    assert_eq!(
        code(
            with_victim
                .list_sandboxes(pb::ListSandboxesRequest {})
                .await
        ),
        Code::Unauthenticated
    );

    // Blocks and unblocks of one consumer racing: every call succeeds, the last decides.
    let holder = &made[1];
    let consumer = holder.info.as_ref().unwrap().consumer.clone();
    let mut with_holder = world.gateway.client_with(&holder.key).await;
    let block = |blocked: bool| pb::SetCallerBlockedRequest {
        consumer: consumer.clone(),
        blocked,
        ..Default::default()
    };
    for last in [true, false] {
        let mut flips = tokio::task::JoinSet::new();
        for i in 0..10 {
            let mut admin = admin.clone();
            let request = block(i % 2 == 0);
            flips.spawn(async move { admin.set_caller_blocked(request).await.map(drop) });
        }
        while let Some(flipped) = flips.join_next().await {
            flipped.unwrap().unwrap();
        }
        admin.clone().set_caller_blocked(block(last)).await.unwrap();
        let expected = if last {
            Code::Unauthenticated
        } else {
            Code::Ok
        };
        assert_eq!(
            code(
                with_holder
                    .list_sandboxes(pb::ListSandboxesRequest {})
                    .await
            ),
            expected,
            "blocked: {last}"
        );
    }

    // Callers giving up at every step: whatever was done is whole (every key lists and
    // decodes), and a revoke retried afterwards revokes.
    let target = &made[2];
    let target_id = target.info.as_ref().unwrap().id.clone();
    for step in 0..30u64 {
        let mut admin = admin.clone();
        let _ = tokio::time::timeout(
            Duration::from_micros(step * 100),
            admin.revoke_api_key(pb::ApiKeyRef {
                id: target_id.clone(),
            }),
        )
        .await;
        let _ = tokio::time::timeout(
            Duration::from_micros(step * 100),
            admin.create_api_key(create(&format!("abandoned-{step}"))),
        )
        .await;
    }
    let listed = admin
        .clone()
        .list_api_keys(pb::ListApiKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(listed.len() >= 20, "{}", listed.len());
    assert!(
        listed
            .iter()
            .all(|k| !k.id.is_empty() && !k.consumer.is_empty())
    );
    let revoked = admin
        .clone()
        .revoke_api_key(pb::ApiKeyRef { id: target_id })
        .await
        .unwrap()
        .into_inner();
    assert!(!revoked.active);
    let mut with_target = world.gateway.client_with(&target.key).await;
    assert_eq!(
        code(
            with_target
                .list_sandboxes(pb::ListSandboxesRequest {})
                .await
        ),
        Code::Unauthenticated
    );
}
