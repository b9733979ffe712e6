//! Every public method's declared mode, role and scope is enforced: for each method of
//! the generated table, no token, a token without a role, a token missing the scope, and
//! the wrong kind of caller are refused with the exact code, and the right caller gets
//! through (whatever the handler then answers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use conformance::mock::{Faults, MockCompute};
use proto::pb::gateway::v1::{AuthMode, METHOD_AUTH, MethodAuthEntry, Role};
use proto::pb::health::health_check_response::ServingStatus;
use support::oidc::{self, OidcPeer};
use support::{Gateway, args, create_request};
use tonic::Code;
use tonic::transport::Channel;

/// Calls `entry`'s method with an empty message; the code it ends with.
async fn call(channel: &Channel, entry: &MethodAuthEntry, token: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request.set_timeout(Duration::from_secs(2));
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = http::uri::PathAndQuery::from_static(entry.path);
    // Streams (WatchSandboxes) end at the request's deadline; bound the call anyway.
    match tokio::time::timeout(Duration::from_secs(5), grpc.unary(request, path, codec)).await {
        Ok(Ok(_)) => Code::Ok,
        Ok(Err(status)) => status.code(),
        Err(_) => Code::DeadlineExceeded,
    }
}

fn authorized(code: Code) -> bool {
    !matches!(code, Code::Unauthenticated | Code::PermissionDenied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_enforces_its_declaration() {
    let dir = proto::testing::short_dir();
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let compute_socket = dir.path().join("c.sock");
    let mock = MockCompute::new(Faults::default());
    let _server = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    let mut args = args(dir.path(), &compute_socket, None);
    args.oidc = oidc::oidc_args(&peer);
    let gateway = Gateway::start(args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let channel = gateway.channel().await;

    let alice = oidc::alice(&peer).await;
    let mut as_alice = gateway.client_with(&alice).await;
    let sandbox = as_alice
        .create_sandbox(create_request("s"))
        .await
        .unwrap()
        .into_inner();
    let sandbox_token = mock.token_of(&sandbox.id).await.unwrap();
    let no_role = oidc::user_token(&peer, "carol", &["something-else"], "openshell:all").await;
    let wrong_scope = oidc::user_token(&peer, "carol", &["openshell-user"], "unrelated:read").await;
    let admin = oidc::admin(&peer).await;

    assert!(METHOD_AUTH.len() >= 23);
    for entry in METHOD_AUTH {
        let mode = AuthMode::try_from(entry.mode).unwrap();
        let method = entry.path;
        assert_eq!(
            call(&channel, entry, None).await,
            Code::Unauthenticated,
            "{method}: no token"
        );
        let users_allowed = matches!(mode, AuthMode::User | AuthMode::Either);
        let sandboxes_allowed = matches!(mode, AuthMode::Sandbox | AuthMode::Either);
        if users_allowed {
            assert_eq!(
                call(&channel, entry, Some(&no_role)).await,
                Code::PermissionDenied,
                "{method}: no role"
            );
            assert_eq!(
                call(&channel, entry, Some(&wrong_scope)).await,
                Code::PermissionDenied,
                "{method}: scope"
            );
            // The declared role (admin methods: the admin role) with exactly the scope.
            let admin_only = entry.role == Role::Admin as i32;
            let role = if admin_only {
                "openshell-admin"
            } else {
                "openshell-user"
            };
            if admin_only {
                let user = oidc::user_token(&peer, "carol", &["openshell-user"], entry.scope).await;
                assert_eq!(
                    call(&channel, entry, Some(&user)).await,
                    Code::PermissionDenied,
                    "{method}: the user role does not satisfy admin"
                );
            }
            let exact_scope = oidc::user_token(&peer, "carol", &[role], entry.scope).await;
            let code = call(&channel, entry, Some(&exact_scope)).await;
            assert!(
                authorized(code),
                "{method}: the declared scope ({}) suffices, got {code:?}",
                entry.scope
            );
            let code = call(&channel, entry, Some(&admin)).await;
            assert!(
                authorized(code),
                "{method}: the admin role satisfies user, got {code:?}"
            );
        } else {
            let code = call(&channel, entry, Some(&alice)).await;
            assert_eq!(
                code,
                Code::PermissionDenied,
                "{method}: a user token on a sandbox method"
            );
        }
        let code = call(&channel, entry, Some(&sandbox_token)).await;
        if sandboxes_allowed {
            assert!(
                authorized(code),
                "{method}: the sandbox token is accepted, got {code:?}"
            );
        } else {
            assert_eq!(
                code,
                Code::PermissionDenied,
                "{method}: a sandbox token on a user method"
            );
        }
    }
    gateway.stop().await;
}
