//! The real binary with the process backend: the whole sandbox lifecycle over gRPC.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use proto::phase::Phase;
use proto::testing::short_dir;
use support::{Driver, condition, sandbox, wait_deleted, wait_for_file, wait_phase};

#[tokio::test]
async fn create_watch_ready_stop_start_delete() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;

    driver
        .create(sandbox("life", &["sh", "-c", "echo hello; sleep 30"]))
        .await
        .unwrap();
    let ready = wait_phase(&mut events, "life", Phase::Ready).await;
    assert!(!ready.status.unwrap().instance_id.is_empty());
    wait_for_file(&driver.stdout_of("life"), "hello\n").await;

    driver.stop("life").await;
    let stopped = wait_phase(&mut events, "life", Phase::Stopped).await;
    assert_eq!(condition(&stopped, "Suspended").unwrap().status, "True");
    assert_eq!(
        support::condition(&driver.get("life").await.unwrap(), "Suspended")
            .unwrap()
            .status,
        "True"
    );
    driver.stop("life").await; // idempotent

    driver.start_sandbox("life").await;
    wait_phase(&mut events, "life", Phase::Ready).await;
    driver.start_sandbox("life").await; // idempotent
    wait_for_file(&driver.stdout_of("life"), "hello\nhello\n").await;

    assert!(driver.delete("life").await, "first delete removes it");
    wait_deleted(&mut events, "life").await;
    assert!(!driver.list_ids().await.contains(&"life".to_owned()));
    assert!(!driver.delete("life").await, "second delete finds nothing");
    assert_eq!(
        driver.get("life").await.unwrap_err().code(),
        tonic::Code::NotFound
    );
}

/// A `#!` script runs as its interpreter (its argv after exec is not the requested
/// one): it is Ready once the launcher's exec succeeded, as a binary is, and the driver
/// never waits out its launch timeout for it.
#[tokio::test]
async fn a_shebang_script_is_ready_once_exec_succeeds() {
    let dir = short_dir();
    let script = dir.path().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho script-ran\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The script lives under /tmp, which sandboxes do not share by default.
    let state = dir.path().join("state");
    let mut driver = Driver::start_with(
        dir.path(),
        &["--state-dir", state.to_str().unwrap(), "--shared-tmp"],
    )
    .await;
    let mut events = driver.watch().await;
    driver
        .create(sandbox("script", &[script.to_str().unwrap()]))
        .await
        .unwrap();
    wait_phase(&mut events, "script", Phase::Ready).await;
    wait_for_file(&driver.stdout_of("script"), "script-ran").await;
    let logs = driver.process.logs();
    assert!(!logs.contains("did not exec within"), "{logs}");
}

#[tokio::test]
async fn a_process_that_exits_3_reports_a_terminal_condition_with_the_status() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;
    driver
        .create(sandbox("three", &["sh", "-c", "exit 3"]))
        .await
        .unwrap();
    let ended = wait_phase(&mut events, "three", Phase::Error).await;
    let terminated = condition(&ended, "Terminated").expect("a Terminated condition");
    assert_eq!(terminated.status, "True");
    assert!(terminated.message.contains("status 3"), "{terminated:?}");
}

#[tokio::test]
async fn a_missing_program_fails_with_status_127_and_says_why() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;
    driver
        .create(sandbox("nope", &["/no/such/program"]))
        .await
        .unwrap();
    let ended = wait_phase(&mut events, "nope", Phase::Error).await;
    assert!(
        condition(&ended, "Terminated")
            .unwrap()
            .message
            .contains("127")
    );
    let stderr = wait_for_file(
        &dir.path().join("state/sandboxes/nope/stderr.log"),
        "cannot run",
    )
    .await;
    assert!(stderr.contains("/no/such/program"), "{stderr}");
}

#[tokio::test]
async fn the_watch_opens_with_a_snapshot_of_existing_sandboxes() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    driver
        .create(sandbox("early", &["sleep", "30"]))
        .await
        .unwrap();
    let mut events = driver.watch().await;
    wait_phase(&mut events, "early", Phase::Ready).await;
    driver.delete("early").await;
}

#[tokio::test]
async fn argv_is_passed_exactly_without_a_shell() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    driver
        .create(sandbox("argv", &["printf", "%s|", "a b", "$HOME", "*"]))
        .await
        .unwrap();
    let out = wait_for_file(&driver.stdout_of("argv"), "|").await;
    assert_eq!(out, "a b|$HOME|*|");
}

#[tokio::test]
async fn a_stop_whose_caller_gives_up_still_finishes_with_sigkill() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await; // --stop-grace 2s
    let mut events = driver.watch().await;
    driver
        .create(sandbox(
            "stubborn",
            &["sh", "-c", "trap '' TERM; echo trapped; sleep 60"],
        ))
        .await
        .unwrap();
    wait_phase(&mut events, "stubborn", Phase::Ready).await;
    // Ready means the shell runs; SIGTERM is ignored only once the trap is set.
    wait_for_file(&driver.stdout_of("stubborn"), "trapped").await;

    let mut request = tonic::Request::new(proto::pb::compute::v1::StopSandboxRequest {
        sandbox_id: "stubborn".into(),
        sandbox_name: String::new(),
    });
    request.set_timeout(std::time::Duration::from_millis(300));
    let status = driver.client.stop_sandbox(request).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{status:?}"
    );
    // The stop goes on without the caller: SIGKILL after the 2 s grace period.
    wait_phase(&mut events, "stubborn", Phase::Stopped).await;
    assert!(driver.delete("stubborn").await);
}

#[tokio::test]
async fn the_memory_limit_is_applied_before_the_program_starts() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;
    let mut limited = sandbox("limited", &["sleep", "30"]);
    limited.spec.as_mut().unwrap().template = Some(proto::pb::compute::v1::DriverSandboxTemplate {
        resources: Some(proto::pb::compute::v1::DriverResourceRequirements {
            memory_limit: "256Mi".into(),
            cpu_limit: "500m".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    driver.create(limited).await.unwrap();
    let ready = wait_phase(&mut events, "limited", Phase::Ready).await;
    let pid = &ready.status.as_ref().unwrap().instance_id;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap();
    assert!(line.contains(&(256u64 << 20).to_string()), "{line}");
    let unenforced =
        condition(&ready, "ResourceLimits").expect("the cpu limit is reported as not enforced");
    assert!(
        unenforced.message.contains("cpu limit 500m"),
        "{unenforced:?}"
    );
    assert!(driver.delete("limited").await);
}
