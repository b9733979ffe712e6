//! Sandbox settings through the public API, with real OIDC tokens and the sandboxes'
//! own tokens: the owner reads and writes `policy` and `values` (compare-and-set), a
//! sandbox reads only its own and writes only its policy status for the current
//! policy version, another user gets NOT_FOUND, concurrent writes all land, and a
//! sandbox's delete takes its settings with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;

use conformance::mock::{Faults, MockCompute};
use proto::pb::gateway::v1 as pb;
use proto::pb::health::health_check_response::ServingStatus;
use support::oidc::{self, OidcPeer};
use support::{Gateway, args, by_name, create_request};
use tonic::Code;

fn policy(allow: &str) -> prost_types::Struct {
    let value = prost_types::Value {
        kind: Some(prost_types::value::Kind::StringValue(allow.into())),
    };
    prost_types::Struct {
        fields: [("allow".to_owned(), value)].into_iter().collect(),
    }
}

fn update(
    name: &str,
    allow: &str,
    values: &[(&str, &str)],
    version: u64,
) -> pb::UpdateSandboxSettingsRequest {
    pb::UpdateSandboxSettingsRequest {
        sandbox: Some(by_name(name)),
        policy: Some(policy(allow)),
        values: values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
        resource_version: version,
    }
}

fn get(name: &str) -> pb::GetSandboxSettingsRequest {
    pb::GetSandboxSettingsRequest {
        sandbox: Some(by_name(name)),
    }
}

fn report(state: &str, policy_version: u64) -> pb::ReportPolicyStatusRequest {
    pb::ReportPolicyStatusRequest {
        state: state.into(),
        message: format!("{state} by the test"),
        policy_version,
    }
}

/// The settings once no write is landing any more. A caller's deadline ends its wait,
/// not the gateway's work: the gateway counts the deadline from when the request
/// reached it, and a commit already handed to the database completes. So a write
/// whose caller gave up may land just after the caller's next call; gRPC reports
/// such a call's outcome as unknown (DEADLINE_EXCEEDED). Two reads 200 ms apart
/// that agree on the version mean the late writes, if any, have landed.
async fn settle(client: &mut support::Client, name: &str) -> pb::SandboxSettings {
    let mut last = client
        .get_sandbox_settings(get(name))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = client
            .get_sandbox_settings(get(name))
            .await
            .unwrap()
            .into_inner();
        if now.resource_version == last.resource_version {
            return now;
        }
        last = now;
    }
    panic!("writes kept landing 10 s after their callers gave up: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_write_settings_sandboxes_read_their_own_and_report_only_their_status() {
    let dir = proto::testing::short_dir();
    let peer = OidcPeer::start_with(oidc::peer_config()).await;
    let compute_socket = dir.path().join("c.sock");
    let mock = MockCompute::new(Faults::default());
    let _server = support::serve_mock_compute(&compute_socket, mock.clone()).await;
    let mut args = args(dir.path(), &compute_socket, None);
    args.oidc = oidc::oidc_args(&peer);
    // A file, as users run it: `sqlite::memory:` loses its database when a cancelled
    // query makes the pool drop its only connection (see the stop note).
    args.db_url = format!("sqlite:{}", dir.path().join("gateway.db").display());
    let gateway = Gateway::start(args).await;
    gateway.wait_health(ServingStatus::Serving).await;
    let mut alice = gateway.client_with(&oidc::alice(&peer).await).await;
    let mut bob = gateway.client_with(&oidc::bob(&peer).await).await;

    let one = alice
        .create_sandbox(create_request("one"))
        .await
        .unwrap()
        .into_inner();
    let two = alice
        .create_sandbox(create_request("two"))
        .await
        .unwrap()
        .into_inner();
    let mut sandbox_one = gateway
        .client_with(&mock.token_of(&one.id).await.unwrap())
        .await;
    let mut sandbox_two = gateway
        .client_with(&mock.token_of(&two.id).await.unwrap())
        .await;

    // Never written: empty, version 0.
    let empty = alice
        .get_sandbox_settings(get("one"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (empty.sandbox_id.as_str(), empty.resource_version),
        (one.id.as_str(), 0)
    );
    assert_eq!(empty.policy, None);

    // The owner writes; the policy gets version 1, pending.
    let written = alice
        .update_sandbox_settings(update("one", "github.com", &[("mode", "strict")], 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.policy_version, 1);
    assert_eq!(written.policy_status.as_ref().unwrap().state, "pending");
    let stale = alice
        .update_sandbox_settings(update("one", "x", &[], written.resource_version + 7))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // Each sandbox reads its own, and only its own.
    let own = sandbox_one
        .get_own_sandbox_settings(pb::GetOwnSandboxSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.policy, Some(policy("github.com")));
    assert_eq!(own.values["mode"], "strict");
    let other = sandbox_two
        .get_own_sandbox_settings(pb::GetOwnSandboxSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (other.sandbox_id.as_str(), other.policy.as_ref()),
        (two.id.as_str(), None)
    );
    for refused in [
        sandbox_two
            .get_sandbox_settings(get("one"))
            .await
            .unwrap_err(),
        sandbox_one
            .update_sandbox_settings(update("one", "everything", &[], 0))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.code(), Code::PermissionDenied);
    }

    // The sandbox reports on the version it applied; a stale version is refused.
    let reported = sandbox_one
        .report_policy_status(report("applied", 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reported.policy_status.as_ref().unwrap().state, "applied");
    assert_eq!(
        reported.policy,
        Some(policy("github.com")),
        "its fields untouched"
    );
    let bad_state = sandbox_one
        .report_policy_status(report("done", 1))
        .await
        .unwrap_err();
    assert_eq!(bad_state.code(), Code::InvalidArgument);
    assert!(bad_state.message().contains("state"), "{bad_state:?}");

    // Values alone keep the policy version and its status; a new policy resets it.
    let values_only = alice
        .update_sandbox_settings(update("one", "github.com", &[("mode", "open")], 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(values_only.policy_version, 1);
    assert_eq!(values_only.policy_status.as_ref().unwrap().state, "applied");
    let new_policy = alice
        .update_sandbox_settings(update(
            "one",
            "gitlab.com",
            &[],
            values_only.resource_version,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(new_policy.policy_version, 2);
    assert_eq!(new_policy.policy_status.as_ref().unwrap().state, "pending");
    let late = sandbox_one
        .report_policy_status(report("applied", 1))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::Aborted);

    // Another user: NOT_FOUND, reading or writing.
    for refused in [
        bob.get_sandbox_settings(get("one")).await.unwrap_err(),
        bob.update_sandbox_settings(pb::UpdateSandboxSettingsRequest {
            sandbox: Some(pb::SandboxRef {
                id: one.id.clone(),
                name: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err(),
    ] {
        assert_eq!(refused.code(), Code::NotFound);
    }

    // Concurrent owner writes without a version all land, one after another.
    let before = alice
        .get_sandbox_settings(get("two"))
        .await
        .unwrap()
        .into_inner();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let mut client = alice.clone();
            tokio::spawn(async move {
                let value = i.to_string();
                client
                    .update_sandbox_settings(update("two", "p", &[("writer", &value)], 0))
                    .await
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let after = alice
        .get_sandbox_settings(get("two"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.resource_version, before.resource_version + 8);
    assert_eq!(after.policy_version, 1, "the policy changed once");

    // Callers giving up at every point of a write: each write lands whole or not at all
    // (one store transaction), and the document stays readable and writable.
    for step in 0..40u64 {
        let value = step.to_string();
        let mut ask = tonic::Request::new(update("two", "p", &[("step", &value)], 0));
        ask.set_timeout(std::time::Duration::from_micros(50 * step));
        let _ = alice.clone().update_sandbox_settings(ask).await;
    }
    let settled = settle(&mut alice, "two").await;
    assert_eq!(settled.policy, Some(policy("p")));
    assert_eq!(settled.values.len(), 1, "{:?}", settled.values);
    let landed: u64 = settled
        .values
        .get("step")
        .map_or(u64::MAX, |v| v.parse().unwrap());
    assert!(
        landed < 40 || settled.values.contains_key("writer"),
        "{settled:?}"
    );
    alice
        .update_sandbox_settings(update(
            "two",
            "p",
            &[("writer", "after")],
            settled.resource_version,
        ))
        .await
        .unwrap();

    // The CLI, as the owner: set a policy from a JSON file and a value, read it back.
    let policy_file = dir.path().join("policy.json");
    std::fs::write(&policy_file, r#"{"allow": ["pypi.org"], "strict": true}"#).unwrap();
    let token = oidc::alice(&peer).await;
    let url = format!("http://{}", gateway.addr);
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gateway-shim"))
            .args(args)
            .args(["--gateway", &url, "--token", &token])
            .env("OPENSHELL_CONFIG_DIR", dir.path().join("cfg"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    cli(&[
        "sandbox",
        "settings",
        "set",
        "two",
        "--policy-file",
        policy_file.to_str().unwrap(),
        "--value",
        "team=ml",
        "--unset",
        "writer",
        "-o",
        "json",
    ]);
    let shown = cli(&["sandbox", "settings", "get", "two", "-o", "json"]);
    assert_eq!(
        shown["policy"],
        serde_json::json!({"allow": ["pypi.org"], "strict": true})
    );
    assert_eq!(shown["values"], serde_json::json!({"team": "ml"}));
    assert_eq!(shown["policy_version"], 2);
    assert_eq!(shown["policy_status"]["state"], "pending");

    // Deleting the sandbox deletes its settings: a new one by the same name starts empty.
    alice.delete_sandbox(by_name("one")).await.unwrap();
    let gone = alice.get_sandbox_settings(get("one")).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let again = alice
        .create_sandbox(create_request("one"))
        .await
        .unwrap()
        .into_inner();
    let fresh = alice
        .get_sandbox_settings(get("one"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((fresh.sandbox_id, fresh.resource_version), (again.id, 0));
    gateway.stop().await;
}
