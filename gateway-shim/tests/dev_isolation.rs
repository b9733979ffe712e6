//! `gateway-shim dev` run by an unprivileged user, as a new user would: a sandbox
//! tries to read the local admin token, the sample secrets, the store (with the
//! signing key) and the config, to reach the drivers' sockets and the host's /tmp; all
//! of it is hidden, while its own token stays readable. Needs root to start the suite
//! as another user (skipped otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");
const NOBODY: u32 = 65534;

struct Suite {
    child: Child,
    state: PathBuf,
    addr: String,
}

impl Drop for Suite {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let _ = self.child.wait();
    }
}

impl Suite {
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(GATEWAY)
            .args(args)
            .env("OPENSHELL_GATEWAY", format!("http://{}", self.addr))
            .env("OPENSHELL_TOKEN_FILE", self.state.join("gateway.token"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// Copies the three binaries where the other user can run them (the build may sit
/// under a 0700 directory).
fn binaries_for_nobody(dir: &Path) -> PathBuf {
    let build = support::ensure_driver_binaries(GATEWAY);
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for name in ["gateway-shim", "compute-driver", "credentials-driver"] {
        std::fs::copy(build.join(name), bin.join(name)).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_dev_sandbox_sees_none_of_the_suites_files() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root to start the suite as another user");
        return;
    }
    // Outside /tmp, so that hiding the runtime directory is tested apart from the
    // private /tmp.
    let dir = tempfile::Builder::new()
        .prefix("sd")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = binaries_for_nobody(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let state = home.join("dev");
    let marker = tempfile::Builder::new()
        .prefix("host-marker")
        .tempfile_in("/tmp")
        .unwrap();
    std::fs::set_permissions(marker.path(), std::fs::Permissions::from_mode(0o644)).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
    let child = Command::new("/usr/bin/setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(bin.join("gateway-shim"))
        .args([
            "dev",
            "--state-dir",
            state.to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .current_dir(&home)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let suite = Suite {
        child,
        state: state.clone(),
        addr,
    };
    let dev_log = || std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default();
    let mut up = false;
    for _ in 0..300 {
        if suite.cli(&["sandbox", "list"]).status.success() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(up, "the suite did not come up:\n{}", dev_log());

    let d = state.display();
    let script = format!(
        "for f in {d}/gateway.token {d}/secrets/demo-token {d}/gateway.db {d}/credentials.yaml \
         {d}/compute.sock {d}/credentials.sock {d}/compute/.lock; do \
           if cat \"$f\" >/dev/null 2>&1; then echo \"READ $f\"; \
           elif [ -e \"$f\" ]; then echo \"SEES $f\"; fi; done; \
         [ -e {marker} ] && echo SEES-HOST-TMP; \
         cat \"$OPENSHELL_SANDBOX_TOKEN_FILE\" >/dev/null && echo OWN-TOKEN; \
         echo SNOOP-DONE; exec sleep 600",
        marker = marker.path().display()
    );
    let out = suite.cli(&[
        "sandbox", "create", "snoop", "-o", "json", "--", "sh", "-c", &script,
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dev_log()
    );
    let sandbox: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = sandbox["id"].as_str().unwrap();
    let stdout_file = state.join("compute/sandboxes").join(id).join("stdout.log");
    let mut seen = String::new();
    for _ in 0..200 {
        seen = std::fs::read_to_string(&stdout_file).unwrap_or_default();
        if seen.contains("SNOOP-DONE") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr_file = stdout_file.with_file_name("stderr.log");
    assert!(
        seen.contains("SNOOP-DONE"),
        "{seen}\n{}\n{}",
        std::fs::read_to_string(stderr_file).unwrap_or_default(),
        dev_log()
    );
    assert!(
        seen.contains("OWN-TOKEN"),
        "its own token stays readable: {seen}"
    );
    assert!(
        !seen.contains("READ") && !seen.contains("SEES"),
        "the sandbox reached the suite's files:\n{seen}"
    );
    // The files it could not see are really there.
    for file in [
        "gateway.token",
        "secrets/demo-token",
        "gateway.db",
        "compute.sock",
    ] {
        assert!(state.join(file).exists(), "{file} exists on the host");
    }
    let deleted = suite.cli(&["sandbox", "delete", "snoop"]);
    assert!(deleted.status.success());
}
