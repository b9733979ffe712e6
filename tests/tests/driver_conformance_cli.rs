//! The `driver-conformance` binary: listing, verdict by exit status, the summary line,
//! JUnit output.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::process::Command;

use clap::Parser;
use proto::testing::short_dir;

const BINARY: &str = env!("CARGO_BIN_EXE_driver-conformance");

#[test]
fn list_names_every_case() {
    let output = Command::new(BINARY).arg("--list").output().unwrap();
    assert!(output.status.success());
    let listed = String::from_utf8(output.stdout).unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l == "compute/watch_opens_with_a_snapshot_then_reports_changes")
    );
    assert!(
        listed
            .lines()
            .any(|l| l == "credentials/unknown_name_is_not_found")
    );
    assert!(
        listed
            .lines()
            .any(|l| l == "credential-store/an_unknown_handle_is_not_found")
    );
}

/// `--credential-store-socket` and `credential_store.token_handles` as a user writes
/// them: the suite runs (here: against nobody, so its connect fails by name).
#[test]
fn the_credential_store_suite_runs_from_its_flag_and_config() {
    let dir = short_dir();
    let socket = dir.path().join("no-store.sock");
    let inputs = dir.path().join("inputs.yaml");
    std::fs::write(
        &inputs,
        "credential_store:\n  token_handles: [\"config:github\"]\n",
    )
    .unwrap();
    let output = Command::new(BINARY)
        .args([
            "--credential-store-socket",
            socket.to_str().unwrap(),
            "--config",
            inputs.to_str().unwrap(),
            "--connect-timeout",
            "1s",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAIL credential-store/connect") && stdout.contains("no-store.sock"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_conformant_driver_exits_0_with_the_summary_line_and_junit() {
    let dir = short_dir();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("t"), "static-token").unwrap();
    let config = dir.path().join("creds.yaml");
    std::fs::write(
        &config,
        "credentials:\n  s:\n    kind: static\n    token_ref: t\n",
    )
    .unwrap();
    let socket = dir.path().join("k.sock");
    let args = credentials_driver::Args::try_parse_from([
        "credentials-driver",
        "--socket",
        socket.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--secrets-dir",
        secrets.to_str().unwrap(),
    ])
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(credentials_driver::run_until(args, async {
        let _ = stopped.await;
    }));

    let junit = dir.path().join("junit.xml");
    let output = tokio::process::Command::new(BINARY)
        .args([
            "--credentials-socket",
            socket.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(last.ends_with("0 failed, 2 skipped"), "{last}");
    assert!(
        !stdout.contains("static-token"),
        "secrets are never printed"
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuite name=\"driver-conformance\"")
    );

    let _ = stop.send(());
    driver.await.unwrap().unwrap();
}

#[test]
fn an_unreachable_driver_fails_naming_its_socket() {
    let dir = short_dir();
    let socket = dir.path().join("nobody-home.sock");
    let output = Command::new(BINARY)
        .args([
            "--compute-socket",
            socket.to_str().unwrap(),
            "--connect-timeout",
            "1s",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAIL compute/connect") && stdout.contains("nobody-home.sock"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed, 0 skipped"));
}

#[tokio::test]
async fn cleanup_only_removes_labelled_leftovers_and_nothing_else() {
    use conformance::mock::{Faults, MockCompute, serve_compute};
    use proto::pb::compute::v1 as pb;
    let dir = short_dir();
    let socket = dir.path().join("mc.sock");
    let config = proto::SocketConfig {
        path: socket.clone(),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_compute(&config, MockCompute::new(Faults::default()), async {
            let _ = stopped.await;
        })
        .await
    });
    let channel = proto::connect(&socket, &proto::ConnectConfig::default())
        .await
        .unwrap();
    let mut client = pb::compute_driver_client::ComputeDriverClient::new(channel);
    for (id, labelled) in [("leftover", true), ("keep-me", false)] {
        let labels = if labelled {
            [(
                conformance::compute::RUN_LABEL.to_owned(),
                "conformance-old".to_owned(),
            )]
            .into()
        } else {
            Default::default()
        };
        let sandbox = pb::DriverSandbox {
            id: id.into(),
            name: id.into(),
            spec: Some(pb::DriverSandboxSpec {
                template: Some(pb::DriverSandboxTemplate {
                    labels,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        client
            .create_sandbox(pb::CreateSandboxRequest {
                sandbox: Some(sandbox),
            })
            .await
            .unwrap();
    }
    let output = tokio::process::Command::new(BINARY)
        .args([
            "--cleanup-only",
            "--compute-socket",
            socket.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("removed 1 leftover"));
    let left: Vec<String> = client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sandboxes
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, ["keep-me"]);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn skip_and_exact_names_select_cases() {
    use conformance::mock::{Faults, MockCompute, serve_compute};
    let dir = short_dir();
    let socket = dir.path().join("mc.sock");
    let config = proto::SocketConfig {
        path: socket.clone(),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_compute(&config, MockCompute::new(Faults::default()), async {
            let _ = stopped.await;
        })
        .await
    });
    let output = tokio::process::Command::new(BINARY)
        .args([
            "--compute-socket",
            socket.to_str().unwrap(),
            "--skip",
            "capabilities_shape",
        ])
        .args([
            "compute/capabilities_shape",
            "compute/unknown_id_is_not_found",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("SKIP compute/capabilities_shape: skipped by --skip"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 0 failed, 1 skipped"),
        "{stdout}"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[test]
fn fail_fast_skips_the_rest_after_the_first_failure() {
    let mock = proto::testing::SpawnedDriver::spawn(
        env!("CARGO_BIN_EXE_mock-compute-driver").as_ref(),
        &["--fail", "GetSandbox=INTERNAL:1000"],
    );
    let output = Command::new(BINARY)
        .args([
            "--compute-socket",
            mock.socket().to_str().unwrap(),
            "--fail-fast",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first_fail = stdout
        .lines()
        .position(|l| l.starts_with("FAIL "))
        .expect("a failure");
    let after: Vec<&str> = stdout
        .lines()
        .skip(first_fail + 1)
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL ") || l.starts_with("SKIP "))
        .collect();
    assert!(!after.is_empty(), "{stdout}");
    assert!(
        after
            .iter()
            .all(|l| l.starts_with("SKIP ") && l.contains("--fail-fast")),
        "{stdout}"
    );
}
