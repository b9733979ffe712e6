//! The hot records a sandbox's resolve and bundle read from memory stay within their
//! documented staleness: two gateways on one PostgreSQL database (the real
//! credentials driver behind both), a write through one replica shows on that replica
//! at once and on the other within `--store-cache-ttl`, never later, and a sandbox
//! stopped through one replica loses its token's use on the other within the bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tokio::time::Instant;

use conformance::mock::{Faults, MockCompute};
use conformance::postgres::PostgresPeer;
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use support::{Client, Gateway, args, create_request};
use tonic::Code;

/// The bound under test, and how late past it a change may show (polling, scheduling).
const TTL: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_millis(500);

const DRIVER_CONFIG: &str = "credentials:
  one: {kind: static, token_ref: one}
  two: {kind: static, token_ref: two}
";

fn provider(credential: &str, version: u64) -> pb::Provider {
    pb::Provider {
        name: "p".into(),
        r#type: "generic".into(),
        credential: credential.into(),
        resource_version: version,
        ..Default::default()
    }
}

async fn resolve(client: &mut Client) -> Result<String, tonic::Status> {
    client
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "p".into(),
        })
        .await
        .map(|reply| reply.into_inner().token)
}

/// Polls `probe` until `done` holds of its answer; returns how long that took. Fails
/// past the bound.
async fn shows_within<T, F, Fut>(what: &str, mut probe: F, done: impl Fn(&T) -> bool) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let start = Instant::now();
    loop {
        if done(&probe().await) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() <= TTL + SLACK,
            "{what}: not visible on the other replica after {:?} (bound {TTL:?})",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_reaches_the_others_resolves_within_the_cache_bound() {
    let peer = PostgresPeer::start().unwrap();
    let url = peer.fresh_database("cache").unwrap();
    let dir = proto::testing::short_dir();
    let credentials = support::credentials_driver(
        dir.path(),
        DRIVER_CONFIG,
        &[("one", "token-one"), ("two", "token-two")],
    );
    let compute_socket = dir.path().join("c.sock");
    let mock = MockCompute::new(Faults::default());
    let _compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    let mut gateways = Vec::new();
    for replica in ["a", "b"] {
        let own = dir.path().join(replica);
        std::fs::create_dir(&own).unwrap();
        let gateway = Gateway::start(gateway_shim::GatewayConfig {
            db_url: url.clone(),
            store_cache_ttl: TTL,
            ..args(&own, &compute_socket, Some(&credentials))
        })
        .await;
        gateway.wait_health(ServingStatus::Serving).await;
        gateways.push(gateway);
    }
    let mut admin = gateways[0].client().await;
    let created = admin
        .create_provider(provider("one", 0))
        .await
        .unwrap()
        .into_inner();
    let mut request = create_request("cached");
    request.providers = vec!["p".into()];
    let sandbox = admin.create_sandbox(request).await.unwrap().into_inner();
    let token = mock.token_of(&sandbox.id).await.unwrap();
    let mut on_a = gateways[0].client_with(&token).await;
    let mut on_b = gateways[1].client_with(&token).await;
    // Both replicas have the records in memory now.
    assert_eq!(resolve(&mut on_a).await.unwrap(), "token-one");
    assert_eq!(resolve(&mut on_b).await.unwrap(), "token-one");
    let bundle = on_b
        .get_inference_bundle(pb::GetInferenceBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(bundle.routes.is_empty(), "no route yet: {bundle:?}");

    // The provider now points at another credential (written through replica a).
    admin
        .update_provider(provider("two", created.resource_version))
        .await
        .unwrap();
    assert_eq!(
        resolve(&mut on_a).await.unwrap(),
        "token-two",
        "the writer sees it at once"
    );
    let took = shows_within(
        "the provider's new credential",
        || {
            let mut client = on_b.clone();
            async move { resolve(&mut client).await.unwrap() }
        },
        |token| token == "token-two",
    )
    .await;
    println!("provider update visible on the other replica after {took:?}");
    for _ in 0..5 {
        assert_eq!(
            resolve(&mut on_b).await.unwrap(),
            "token-two",
            "and stays so"
        );
    }

    // A route appears (replica b remembered that there was none).
    admin
        .set_inference_route(pb::SetInferenceRouteRequest {
            provider: "p".into(),
            model: "m".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    shows_within(
        "the new inference route",
        || {
            let mut client = on_b.clone();
            async move {
                client
                    .get_inference_bundle(pb::GetInferenceBundleRequest {})
                    .await
                    .unwrap()
                    .into_inner()
            }
        },
        |bundle| {
            bundle
                .routes
                .first()
                .is_some_and(|route| route.api_key == "token-two")
        },
    )
    .await;

    // The sandbox is stopped through replica a: its token stops working there at once
    // and on replica b within the bound.
    admin
        .stop_sandbox(support::by_name("cached"))
        .await
        .unwrap();
    assert_eq!(
        resolve(&mut on_a).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    shows_within(
        "the stop",
        || {
            let mut client = on_b.clone();
            async move { resolve(&mut client).await }
        },
        |answer| matches!(answer, Err(status) if status.code() == Code::Unauthenticated),
    )
    .await;
    for gateway in gateways {
        gateway.stop().await;
    }
}
