//! Deleting a provider races the writes that refer to it (attach, a sandbox created
//! with it, an inference route set to it): exactly one side wins every time, and no
//! sandbox or route is ever left naming a deleted provider. Run on SQLite (a file) and
//! on PostgreSQL, 50 rounds of each race.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use conformance::mock::{Faults, MockCompute};
use conformance::postgres::PostgresPeer;
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use support::{Client, Gateway, args, by_name, create_request};
use tonic::Code;

const ROUNDS: usize = 50;

fn provider(name: &str) -> pb::Provider {
    pb::Provider {
        name: name.into(),
        r#type: "generic".into(),
        credential: "mock-static".into(),
        ..Default::default()
    }
}

/// Every provider a sandbox or the route names exists.
async fn assert_no_dangling(client: &mut Client, round: usize) {
    let providers = support::provider_names(client).await;
    for sandbox in client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes
    {
        for named in &sandbox.providers {
            assert!(
                providers.contains(named),
                "round {round}: sandbox {} names deleted provider {named}",
                sandbox.name
            );
        }
    }
    if let Ok(route) = client
        .get_inference_route(pb::GetInferenceRouteRequest::default())
        .await
    {
        let named = route.into_inner().provider;
        assert!(
            providers.contains(&named),
            "round {round}: the route names deleted provider {named}"
        );
    }
}

/// Exactly one of the delete and the referring write succeeded, each failing as it
/// should.
fn one_winner<T: std::fmt::Debug>(
    race: &str,
    round: usize,
    delete: &Result<tonic::Response<pb::DeleteProviderResponse>, tonic::Status>,
    write: &Result<tonic::Response<T>, tonic::Status>,
) -> bool {
    match (delete, write) {
        (Ok(_), Err(status)) => {
            assert_eq!(status.code(), Code::NotFound, "{race} {round}: {status:?}");
            true
        }
        (Err(status), Ok(_)) => {
            assert_eq!(
                status.code(),
                Code::FailedPrecondition,
                "{race} {round}: {status:?}"
            );
            false
        }
        other => panic!("{race} round {round}: not exactly one winner: {other:?}"),
    }
}

async fn races(db_url: String) {
    let dir = proto::testing::short_dir();
    let compute_socket = dir.path().join("c.sock");
    let _compute =
        support::serve_mock_compute(&compute_socket, MockCompute::new(Faults::default())).await;
    let credentials_socket = support::serve_mock_credentials(dir.path());
    let mut gateway_args = args(dir.path(), &compute_socket, Some(&credentials_socket));
    gateway_args.db_url = db_url;
    let gateway = Gateway::start(gateway_args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut deleter = gateway.client().await;
    let mut writer = gateway.client().await;
    let mut checker = gateway.client().await;
    checker
        .create_sandbox(create_request("holder"))
        .await
        .unwrap();
    let mut wins = [0usize; 2];

    for round in 0..ROUNDS {
        let name = format!("attach-{round}");
        checker.create_provider(provider(&name)).await.unwrap();
        let (delete, write) = tokio::join!(
            deleter.delete_provider(pb::ProviderRef { name: name.clone() }),
            writer.attach_provider(pb::AttachmentRequest {
                sandbox: Some(by_name("holder")),
                provider: name.clone(),
            })
        );
        wins[usize::from(one_winner("attach", round, &delete, &write))] += 1;
        assert_no_dangling(&mut checker, round).await;
        if write.is_ok() {
            checker
                .detach_provider(pb::AttachmentRequest {
                    sandbox: Some(by_name("holder")),
                    provider: name.clone(),
                })
                .await
                .unwrap();
        }

        let name = format!("create-{round}");
        checker.create_provider(provider(&name)).await.unwrap();
        let mut request = create_request(&format!("box-{round}"));
        request.providers = vec![name.clone()];
        let (delete, write) = tokio::join!(
            deleter.delete_provider(pb::ProviderRef { name: name.clone() }),
            writer.create_sandbox(request)
        );
        wins[usize::from(one_winner("create", round, &delete, &write))] += 1;
        assert_no_dangling(&mut checker, round).await;
        if write.is_err() {
            // The refused create left no record behind: the name is free.
            checker
                .create_sandbox(create_request(&format!("box-{round}")))
                .await
                .unwrap();
        }

        let name = format!("route-{round}");
        checker.create_provider(provider(&name)).await.unwrap();
        let (delete, write) = tokio::join!(
            deleter.delete_provider(pb::ProviderRef { name: name.clone() }),
            writer.set_inference_route(pb::SetInferenceRouteRequest {
                provider: name.clone(),
                model: "m".into(),
                ..Default::default()
            })
        );
        wins[usize::from(one_winner("route", round, &delete, &write))] += 1;
        assert_no_dangling(&mut checker, round).await;
        if write.is_ok() {
            checker
                .delete_inference_route(pb::DeleteInferenceRouteRequest::default())
                .await
                .unwrap();
        }
    }
    eprintln!("writes won {} races, deletes {}", wins[0], wins[1]);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletes_racing_references_on_sqlite_leave_nothing_dangling() {
    let dir = tempfile::tempdir().unwrap();
    races(format!("sqlite:{}", dir.path().join("gw.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletes_racing_references_on_postgresql_leave_nothing_dangling() {
    let peer = PostgresPeer::start().unwrap();
    races(peer.fresh_database("races").unwrap()).await;
}
