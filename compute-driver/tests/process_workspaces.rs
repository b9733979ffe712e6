//! Workspaces: a directory per workspace, shared by its sandboxes and invisible to
//! other workspaces' sandboxes, as are other sandboxes' token files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::os::unix::fs::PermissionsExt;

use proto::pb::compute::v1 as pb;
use proto::phase::Phase;
use proto::testing::short_dir;
use support::{BINARY, Driver, sandbox, wait_for_file, wait_phase};

fn in_workspace(id: &str, workspace: &str, script: &str) -> pb::DriverSandbox {
    let mut s = sandbox(id, &["sh", "-c", script]);
    s.workspace = workspace.into();
    s.spec.as_mut().unwrap().sandbox_token = format!("token-of-{id}");
    s
}

/// What a sandbox in `team-b` tries to read from `team-a` and from `a1`'s directory.
fn snooping_script(state: &str) -> String {
    format!(
        "sleep 0.3; \
         ls {state}/workspaces; \
         cat {state}/workspaces/team-a/a.txt 2>&1 || echo NO-WORKSPACE-A; \
         cat {state}/sandboxes/a1/token 2>&1 || echo NO-TOKEN-A; \
         cat \"$OPENSHELL_SANDBOX_TOKEN_FILE\"; echo; echo done; sleep 30"
    )
}

async fn ensure(driver: &mut Driver, name: &str) {
    driver
        .client
        .ensure_workspace(pb::EnsureWorkspaceRequest {
            workspace: name.into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn workspaces_share_files_inside_and_hide_them_across() {
    let dir = short_dir();
    let state = dir.path().join("state");
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;
    ensure(&mut driver, "team-a").await;
    ensure(&mut driver, "team-a").await; // idempotent
    ensure(&mut driver, "team-b").await;
    let mode = std::fs::metadata(state.join("workspaces/team-a"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    driver
        .create(in_workspace(
            "a1",
            "team-a",
            "echo secret-a > a.txt; sleep 30",
        ))
        .await
        .unwrap();
    wait_phase(&mut events, "a1", Phase::Ready).await;
    wait_for_file(&state.join("workspaces/team-a/a.txt"), "secret-a").await;

    driver
        .create(in_workspace(
            "a2",
            "team-a",
            "sleep 0.3; cat a.txt; sleep 30",
        ))
        .await
        .unwrap();
    driver
        .create(in_workspace(
            "b1",
            "team-b",
            &snooping_script(state.to_str().unwrap()),
        ))
        .await
        .unwrap();

    let same_workspace = wait_for_file(&driver.stdout_of("a2"), "secret-a").await;
    assert!(same_workspace.contains("secret-a"));
    let other = wait_for_file(&driver.stdout_of("b1"), "done").await;
    assert!(other.contains("NO-WORKSPACE-A"), "{other}");
    assert!(other.contains("NO-TOKEN-A"), "{other}");
    assert!(
        !other.contains("secret-a") && !other.contains("token-of-a1"),
        "{other}"
    );
    assert!(
        other.contains("token-of-b1"),
        "its own token stays readable: {other}"
    );
    assert_eq!(
        other.lines().next(),
        Some("team-b"),
        "other workspaces are not even listed: {other}"
    );

    let status = driver
        .client
        .delete_workspace(pb::DeleteWorkspaceRequest {
            workspace: "team-a".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("a1"), "{}", status.message());

    for id in ["a1", "a2", "b1"] {
        assert!(driver.delete(id).await);
    }
    driver
        .client
        .delete_workspace(pb::DeleteWorkspaceRequest {
            workspace: "team-a".into(),
        })
        .await
        .unwrap();
    assert!(!state.join("workspaces/team-a").exists());
    driver
        .client
        .delete_workspace(pb::DeleteWorkspaceRequest {
            workspace: "team-a".into(),
        })
        .await
        .expect("deleting a missing workspace succeeds");
}

/// The same isolation when the driver is not root (user + mount namespaces). Needs
/// root to drop to another user for the test; skipped otherwise.
#[tokio::test]
async fn isolation_also_holds_for_a_driver_that_is_not_root() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root to start the driver as another user");
        return;
    }
    let dir = short_dir();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    // The other user may not reach the build's binary (a checkout under a 0700
    // directory such as /root): give it a copy it can run.
    let binary_copy = dir.path().join("compute-driver");
    std::fs::copy(BINARY, &binary_copy).unwrap();
    std::fs::set_permissions(
        &binary_copy,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let binary = std::path::Path::new("/usr/bin/setpriv");
    let socket = dir.path().join("nobody.sock");
    let _driver = KillOnDrop(
        std::process::Command::new(binary)
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(&binary_copy)
            .args([
                "--socket",
                socket.to_str().unwrap(),
                "--state-dir",
                state_arg,
                "--allowed-uids",
                "0",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let channel = proto::connect(&socket, &proto::ConnectConfig::default())
        .await
        .unwrap();
    let mut client = pb::compute_driver_client::ComputeDriverClient::new(channel);
    let mut events = client
        .watch_sandboxes(pb::WatchSandboxesRequest {})
        .await
        .unwrap()
        .into_inner();
    for (id, workspace, script) in [
        ("a1", "team-a", "echo secret-a > a.txt; sleep 30".to_owned()),
        ("b1", "team-b", snooping_script(state_arg)),
    ] {
        client
            .create_sandbox(pb::CreateSandboxRequest {
                sandbox: Some(in_workspace(id, workspace, &script)),
            })
            .await
            .unwrap();
        if id == "a1" {
            wait_phase(&mut events, "a1", Phase::Ready).await;
            wait_for_file(&state.join("workspaces/team-a/a.txt"), "secret-a").await;
        }
    }
    let other = wait_for_file(&state.join("sandboxes/b1/stdout.log"), "done").await;
    assert!(
        other.contains("NO-WORKSPACE-A") && other.contains("NO-TOKEN-A"),
        "{other}"
    );
    assert!(other.contains("token-of-b1"), "{other}");
    for id in ["a1", "b1"] {
        client
            .delete_sandbox(pb::DeleteSandboxRequest {
                sandbox_id: id.into(),
                sandbox_name: String::new(),
            })
            .await
            .unwrap();
    }
}

/// Kills the driver even when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
