//! The supervisor option with the real binary (process backend): the supervisor named
//! by `--supervisor` runs as the sandbox's entrypoint with the contract's environment
//! and the user's process handed over (`tests/supervisor/stand-in-supervisor.py` does
//! what upstream's supervisor does on start and reports it to a fake gateway); and
//! without the option, `tty: true` gets a terminal and no command the default shell.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::collections::HashMap;
use std::time::Duration;

use proto::phase::Phase;
use proto::testing::short_dir;
use serde_json::Value;
use support::{Driver, sandbox, wait_for_file, wait_phase};
use tokio::io::AsyncBufReadExt as _;

const STAND_IN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/supervisor/stand-in-supervisor.py"
);

/// A fake gateway: accepts one supervisor session and returns its report.
async fn session(listener: &tokio::net::TcpListener) -> Value {
    let (stream, _) = tokio::time::timeout(Duration::from_secs(15), listener.accept())
        .await
        .expect("the supervisor opened its session in time")
        .unwrap();
    let mut line = String::new();
    tokio::io::BufReader::new(stream)
        .read_line(&mut line)
        .await
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

async fn supervised_driver(dir: &std::path::Path) -> (Driver, tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let stand_in = std::fs::canonicalize(STAND_IN).unwrap();
    let state = dir.join("state");
    let driver = Driver::start_with(
        dir,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--stop-grace",
            "2s",
            "--supervisor",
            stand_in.to_str().unwrap(),
            "--supervisor-endpoint",
            &endpoint,
        ],
    )
    .await;
    (driver, listener, endpoint)
}

#[tokio::test]
async fn the_supervisor_receives_every_variable_of_the_contract_and_the_users_command() {
    let dir = short_dir();
    let (mut driver, listener, endpoint) = supervised_driver(dir.path()).await;
    let mut events = driver.watch().await;

    let mut spec = sandbox("sup", &["sh", "-c", "echo user-process-ran; sleep 30"]);
    spec.name = "sb-uuid-like-name".into();
    let inner = spec.spec.as_mut().unwrap();
    inner.sandbox_token = "the-sandbox-token".into();
    inner.log_level = "DEBUG".into();
    inner.environment = HashMap::from([
        // A client may not redirect the supervisor.
        ("OPENSHELL_ENDPOINT".into(), "http://attacker:1".into()),
        ("OPENSHELL_SANDBOX_NAME".into(), "demo".into()),
    ]);
    driver.create(spec).await.unwrap();
    wait_phase(&mut events, "sup", Phase::Ready).await;

    let report = session(&listener).await;
    let env = &report["env"];
    assert_eq!(env["OPENSHELL_SANDBOX"], "demo", "the user-facing name");
    assert_eq!(env["OPENSHELL_SANDBOX_ID"], "sup");
    assert_eq!(env["OPENSHELL_ENDPOINT"], endpoint.as_str());
    assert_eq!(env["OPENSHELL_LOG_LEVEL"], "debug");
    assert_eq!(
        report["token"], "the-sandbox-token",
        "read from the token file"
    );
    assert!(
        !env.to_string().contains("the-sandbox-token"),
        "the token is a file, never a variable"
    );
    let uid = nix::unistd::Uid::effective().as_raw();
    assert_eq!(env["OPENSHELL_SANDBOX_UID"], uid.to_string().as_str());
    assert_eq!(report["uid"], uid);
    assert_eq!(
        report["main_process"],
        serde_json::json!({"version": 1, "command": ["sh", "-c", "echo user-process-ran; sleep 30"], "tty": false})
    );
    let ssh = env["OPENSHELL_SSH_SOCKET_PATH"].as_str().unwrap();
    assert!(ssh.len() < 108, "{ssh}");
    use std::os::unix::fs::FileTypeExt as _;
    assert!(
        std::fs::metadata(ssh).unwrap().file_type().is_socket(),
        "the supervisor bound its SSH socket at {ssh}"
    );
    // The supervisor ran the user's process.
    wait_for_file(&driver.stdout_of("sup"), "user-process-ran").await;

    // A create without a command hands the supervisor the default shell, with a tty.
    driver
        .create(support::sandbox("sup-shell", &[]))
        .await
        .unwrap();
    let report = session(&listener).await;
    assert_eq!(report["env"]["OPENSHELL_SANDBOX_ID"], "sup-shell");
    assert_eq!(
        report["main_process"],
        serde_json::json!({"version": 1, "command": ["/bin/bash", "-l"], "tty": true})
    );
    assert_ne!(
        report["env"]["OPENSHELL_SSH_SOCKET_PATH"], ssh,
        "each sandbox's supervisor gets its own SSH socket"
    );
}

#[tokio::test]
async fn without_the_option_tty_gets_a_terminal_and_no_command_the_default_shell() {
    let dir = short_dir();
    let mut driver = Driver::start(dir.path()).await;
    let mut events = driver.watch().await;

    let mut with_tty = sandbox("tty", &["sh", "-c", "tty; sleep 30"]);
    with_tty.spec.as_mut().unwrap().tty = true;
    driver.create(with_tty).await.unwrap();
    driver
        .create(sandbox("no-tty", &["sh", "-c", "tty; sleep 30"]))
        .await
        .unwrap();
    wait_for_file(&driver.stdout_of("tty"), "/dev/pts/").await;
    wait_for_file(&driver.stdout_of("no-tty"), "not a tty").await;

    driver.create(sandbox("shell", &[])).await.unwrap();
    let ready = wait_phase(&mut events, "shell", Phase::Ready).await;
    let pid = ready.status.unwrap().instance_id;
    // A login shell on a terminal waits for input: it is still running a while later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sandbox = driver.get("shell").await.unwrap();
    assert_eq!(proto::phase::phase_of(&sandbox), Phase::Ready);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"/bin/bash\0-l\0");
    let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert!(
        stdin.to_string_lossy().starts_with("/dev/pts/"),
        "{stdin:?}"
    );
}
