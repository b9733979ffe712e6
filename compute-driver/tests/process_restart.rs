//! Nothing is lost when the driver dies: kill -9, restart, re-adopt.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use proto::phase::{Phase, phase_of};
use proto::testing::short_dir;
use support::{Driver, condition, sandbox, wait_phase};

#[tokio::test]
async fn sandboxes_survive_kill_9_of_the_driver_and_are_re_adopted() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;
    driver
        .create(sandbox("keeps-running", &["sleep", "60"]))
        .await
        .unwrap();
    driver
        .create(sandbox("was-stopped", &["sleep", "60"]))
        .await
        .unwrap();
    let running = wait_phase(&mut events, "keeps-running", Phase::Ready).await;
    let pid = running.status.unwrap().instance_id;
    wait_phase(&mut events, "was-stopped", Phase::Ready).await;
    driver.stop("was-stopped").await;

    driver.process.signal(Signal::SIGKILL);
    driver
        .process
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("driver died");
    let sandbox_pid: i32 = pid.parse().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{sandbox_pid}")).exists(),
        "the sandbox outlives the driver"
    );

    let mut restarted = Driver::start(dir.path()).await;
    let mut ids = restarted.list_ids().await;
    ids.sort();
    assert_eq!(ids, ["keeps-running", "was-stopped"]);

    let adopted = restarted.get("keeps-running").await.unwrap();
    assert_eq!(phase_of(&adopted), Phase::Ready);
    assert_eq!(
        adopted.status.as_ref().unwrap().instance_id,
        pid,
        "same process, re-adopted"
    );
    let stopped = restarted.get("was-stopped").await.unwrap();
    assert_eq!(condition(&stopped, "Suspended").unwrap().status, "True");

    // The re-adopted process is still under control: Stop ends it.
    let mut events = restarted.watch().await;
    restarted.stop("keeps-running").await;
    wait_phase(&mut events, "keeps-running", Phase::Stopped).await;
    assert!(
        !std::path::Path::new(&format!("/proc/{sandbox_pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{sandbox_pid}/stat"))
                .unwrap()
                .contains(") Z")
    );
    assert!(restarted.delete("keeps-running").await);
    assert!(restarted.delete("was-stopped").await);
}

#[tokio::test]
async fn a_sandbox_that_ended_while_the_driver_was_down_is_reported_lost() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;
    driver
        .create(sandbox("short", &["sleep", "60"]))
        .await
        .unwrap();
    let ready = wait_phase(&mut events, "short", Phase::Ready).await;
    let pid: i32 = ready.status.unwrap().instance_id.parse().unwrap();

    driver.process.signal(Signal::SIGKILL);
    driver
        .process
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("driver died");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut restarted = Driver::start(dir.path()).await;
    let lost = restarted.get("short").await.unwrap();
    assert_eq!(phase_of(&lost), Phase::Error);
    assert_eq!(condition(&lost, "Ready").unwrap().reason, "ProcessLost");
    assert!(restarted.delete("short").await);
}
