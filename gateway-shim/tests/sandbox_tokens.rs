//! A sandbox's token works only while the sandbox does: refused once it is stopped,
//! accepted again after start, refused for good after delete (a new sandbox of the same
//! name does not revive it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use conformance::mock::{Faults, MockCompute};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use support::{Client, Gateway, args, by_name, create_request};
use tonic::Code;

async fn resolve(client: &mut Client) -> Result<String, tonic::Status> {
    client
        .resolve_provider_credential(pb::ResolveProviderCredentialRequest {
            provider: "shared".into(),
        })
        .await
        .map(|reply| reply.into_inner().token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_or_deleted_sandbox_s_token_is_refused() {
    let dir = proto::testing::short_dir();
    let compute_socket = dir.path().join("c.sock");
    let mock = MockCompute::new(Faults::default());
    let _compute = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    let credentials_socket = support::serve_mock_credentials(dir.path());
    let gateway =
        Gateway::start(args(dir.path(), &compute_socket, Some(&credentials_socket))).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut admin = gateway.client().await;
    admin
        .create_provider(pb::Provider {
            name: "shared".into(),
            r#type: "generic".into(),
            credential: "mock-static".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut request = create_request("box");
    request.providers = vec!["shared".into()];
    let sandbox = admin.create_sandbox(request).await.unwrap().into_inner();
    let token = mock.token_of(&sandbox.id).await.unwrap();
    let mut from_sandbox = gateway.client_with(&token).await;
    assert_eq!(
        resolve(&mut from_sandbox).await.unwrap(),
        "mock-static-token"
    );

    admin.stop_sandbox(by_name("box")).await.unwrap();
    for refused in [
        resolve(&mut from_sandbox).await.unwrap_err(),
        from_sandbox
            .get_inference_bundle(pb::GetInferenceBundleRequest {})
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert!(refused.message().contains("stopped"), "{refused:?}");
    }
    // Stopping twice is fine and keeps it refused.
    admin.stop_sandbox(by_name("box")).await.unwrap();
    assert_eq!(
        resolve(&mut from_sandbox).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    admin.start_sandbox(by_name("box")).await.unwrap();
    assert_eq!(
        resolve(&mut from_sandbox).await.unwrap(),
        "mock-static-token"
    );
    // The stop mark is the gateway's own: the sandbox's labels do not show it.
    let shown = admin
        .get_sandbox(by_name("box"))
        .await
        .unwrap()
        .into_inner();
    assert!(shown.labels.is_empty(), "{:?}", shown.labels);

    admin.delete_sandbox(by_name("box")).await.unwrap();
    let mut again = create_request("box");
    again.providers = vec!["shared".into()];
    admin.create_sandbox(again).await.unwrap();
    assert_eq!(
        resolve(&mut from_sandbox).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    gateway.stop().await;
}
