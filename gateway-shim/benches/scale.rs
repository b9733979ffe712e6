//! The gateway with many owners' records: 10,000 sandboxes over 100 OIDC users (made
//! through the API, against the mock compute driver, SQLite file store), then
//! - ListSandboxes by one user (100 of the 10,000 are theirs) and by the admin (all);
//! - ListProviders by one user (their own and the shared ones, of 100 users' providers);
//! - a sandbox resolving a shared provider's credential (real credentials driver).
//!
//! Needs node (the OIDC test peer). Run:
//! `cargo bench -p gateway-shim --bench scale` (`BENCH_SECONDS`, default 3;
//! `SCALE_OWNERS` × `SCALE_PER_OWNER`, default 100 × 100).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "common/measure.rs"]
mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use conformance::mock::{Faults, MockCompute};
use measure::{measure, row, seconds};
use proto::pb::gateway::v1 as pb;
use tokio::time::Instant;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn provider(name: &str) -> pb::Provider {
    pb::Provider {
        name: name.into(),
        r#type: "generic".into(),
        credential: "bench".into(),
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let length = seconds();
    let (owners, per_owner) = (env_or("SCALE_OWNERS", 100), env_or("SCALE_PER_OWNER", 100));
    let peer = support::oidc::OidcPeer::start_with(support::oidc::peer_config()).await;
    let dir = proto::testing::short_dir();
    let compute_socket = dir.path().join("c.sock");
    let credentials_socket = support::credentials_driver(
        dir.path(),
        "credentials:\n  bench:\n    kind: static\n    token_ref: bench\n",
        &[("bench", "bench-token-value\n")],
    );
    let mock = MockCompute::new(Faults::default());
    let _compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    let mut args = support::args(dir.path(), &compute_socket, Some(&credentials_socket));
    args.db_url = format!("sqlite:{}", dir.path().join("gateway.db").display());
    args.oidc = support::oidc::oidc_args(&peer);
    let gateway = support::Gateway::start(args).await;
    gateway
        .wait_health(proto::pb::health::health_check_response::ServingStatus::Serving)
        .await;
    let mut admin = gateway.client().await;
    admin.create_provider(provider("shared")).await.unwrap();

    // Each user: one provider of their own, `per_owner` sandboxes; 16 users at a time.
    let started = Instant::now();
    let mut users = Vec::new();
    for u in 0..owners {
        users.push(
            support::oidc::user_token(
                &peer,
                &format!("user-{u}"),
                &["openshell-user"],
                "openshell:all",
            )
            .await,
        );
    }
    let mut first_sandbox = None;
    for chunk in users.chunks(16) {
        let mut tasks = tokio::task::JoinSet::new();
        for token in chunk {
            let client = gateway.client_with(token).await;
            tasks.spawn(async move {
                let mut client = client;
                // Stored under the user's owner key: no clash with the others'. (Refused
                // where a credential policy does not grant `bench`; the lists still run.)
                client.create_provider(provider("own")).await.ok();
                let mut first = None;
                for i in 0..per_owner {
                    let mut request = support::create_request(&format!("s{i}"));
                    request.providers = vec!["shared".into()];
                    let sandbox = client.create_sandbox(request).await.unwrap().into_inner();
                    first.get_or_insert(sandbox.id);
                }
                first
            });
        }
        while let Some(first) = tasks.join_next().await {
            if first_sandbox.is_none() {
                first_sandbox = first.unwrap();
            }
        }
    }
    println!(
        "setup: {} sandboxes over {owners} owners made through the API in {:.1?}",
        owners * per_owner,
        started.elapsed()
    );

    println!("\n| call | callers | calls | p50 | p99 | calls/s |");
    println!("|---|---|---|---|---|---|");
    let user = gateway.client_with(&users[0]).await;
    for callers in [1, 16] {
        let client = user.clone();
        let figures = measure(callers, length, move || {
            let mut client = client.clone();
            async move {
                let listed = client
                    .list_sandboxes(pb::ListSandboxesRequest {})
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(listed.sandboxes.len(), per_owner);
            }
        })
        .await;
        row(
            &format!(
                "ListSandboxes, one user ({per_owner} of {})",
                owners * per_owner
            ),
            callers,
            figures,
        );
    }
    let client = admin.clone();
    let total = owners * per_owner;
    let figures = measure(1, length, move || {
        let mut client = client.clone();
        async move {
            let listed = client
                .list_sandboxes(pb::ListSandboxesRequest {})
                .await
                .unwrap()
                .into_inner();
            assert_eq!(listed.sandboxes.len(), total);
        }
    })
    .await;
    row(&format!("ListSandboxes, admin (all {total})"), 1, figures);
    for callers in [1, 16] {
        let client = user.clone();
        let figures = measure(callers, length, move || {
            let mut client = client.clone();
            async move {
                client
                    .list_providers(pb::ListProvidersRequest {})
                    .await
                    .unwrap();
            }
        })
        .await;
        row(
            &format!("ListProviders, one user (of {owners} users' + shared)"),
            callers,
            figures,
        );
    }
    let token = mock.token_of(&first_sandbox.unwrap()).await.unwrap();
    let sandbox = gateway.client_with(&token).await;
    for callers in [1, 16] {
        let client = sandbox.clone();
        let figures = measure(callers, length, move || {
            let mut client = client.clone();
            async move {
                client
                    .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
                        provider: "shared".into(),
                    })
                    .await
                    .unwrap();
            }
        })
        .await;
        row("ResolveProviderCredential, by a sandbox", callers, figures);
    }
    gateway.stop().await;
}
