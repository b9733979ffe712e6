//! The sandbox token never appears in logs, argv, errors or responses; it reaches the
//! sandbox only as a 0600 file named in its environment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::os::unix::fs::PermissionsExt;

use proto::pb::compute::v1 as pb;
use proto::phase::Phase;
use proto::testing::short_dir;
use support::{Driver, sandbox, wait_for_file, wait_phase};

const TOKEN: &str = "sbx-tok-9f8e7d6c5b4a";

#[tokio::test]
async fn the_token_stays_out_of_logs_argv_errors_and_responses() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;

    let mut with_token = sandbox(
        "tok",
        &[
            "sh",
            "-c",
            "cat \"$OPENSHELL_SANDBOX_TOKEN_FILE\"; echo; sleep 30",
        ],
    );
    with_token.spec.as_mut().unwrap().sandbox_token = TOKEN.into();
    driver.create(with_token.clone()).await.unwrap();
    let ready = wait_phase(&mut events, "tok", Phase::Ready).await;

    // The sandbox can read it through the file the environment names.
    wait_for_file(&driver.stdout_of("tok"), TOKEN).await;
    let token_file = dir.path().join("state/sandboxes/tok/token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Not in argv or the environment of the sandbox process.
    let pid = ready.status.as_ref().unwrap().instance_id.clone();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(TOKEN));
    assert!(!String::from_utf8_lossy(&environ).contains(TOKEN));
    assert!(String::from_utf8_lossy(&environ).contains("OPENSHELL_SANDBOX_TOKEN_FILE="));

    // Not in responses or watch events.
    assert!(!format!("{ready:?}").contains(TOKEN));
    let got = driver.get("tok").await.unwrap();
    assert!(got.spec.unwrap().sandbox_token.is_empty());
    let listed = driver
        .client
        .list_sandboxes(pb::ListSandboxesRequest {})
        .await
        .unwrap();
    assert!(!format!("{listed:?}").contains(TOKEN));

    // Not in errors: a conflicting create and an invalid one that carry the token.
    let mut conflicting = with_token.clone();
    conflicting.spec.as_mut().unwrap().command = vec!["true".into()];
    let status = driver.create(conflicting).await.unwrap_err();
    assert!(!status.message().contains(TOKEN));
    let mut invalid = with_token;
    invalid.id = "bad id".into();
    let status = driver.create(invalid).await.unwrap_err();
    assert!(!status.message().contains(TOKEN));

    assert!(driver.delete("tok").await);
    let logs = driver.process.logs();
    assert!(logs.contains("sandbox created"), "debug logs were captured");
    assert!(
        !logs.contains(TOKEN),
        "the token leaked into the driver's logs"
    );
}
