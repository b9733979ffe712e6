//! The README's walk-through, automated: `gateway-shim dev` (the real gateway and both
//! real drivers as processes), then the CLI as a user would type it. A sandbox runs the
//! CLI itself to resolve its provider's credential and fetch its inference bundle with
//! its own token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");

struct Dev {
    child: Child,
    state: PathBuf,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Dev {
    fn start() -> Self {
        support::ensure_driver_binaries(GATEWAY);
        let dir = proto::testing::short_dir();
        let state = dir.path().join("dev");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
        let child = Command::new(GATEWAY)
            .args([
                "dev",
                "--state-dir",
                state.to_str().unwrap(),
                "--listen",
                &addr,
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let dev = Self {
            child,
            state,
            addr,
            _dir: dir,
        };
        for _ in 0..300 {
            if dev.cli(&["sandbox", "list"]).status.success() {
                return dev;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the suite did not come up:\n{}", dev.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.parent().unwrap().join("dev.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(GATEWAY)
            .args(args)
            .env("OPENSHELL_GATEWAY", format!("http://{}", self.addr))
            .env("OPENSHELL_TOKEN_FILE", self.state.join("gateway.token"))
            .env_remove("OPENSHELL_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a CLI command that must succeed, with `-o json`, and parses its output.
    fn json(&self, args: &[&str]) -> Value {
        // Flags before the arguments: `sandbox create` ends with `-- COMMAND...`.
        let mut all = args.to_vec();
        all.splice(2..2, ["-o", "json"]);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "gateway-shim {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn wait_phase(&self, name: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = self.json(&["sandbox", "get", name]);
            if last["status"]["phase"] == want {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{name} never reached {want}: {last}");
    }

    fn sandbox_file(&self, id: &str, file: &str) -> String {
        std::fs::read_to_string(self.state.join("compute/sandboxes").join(id).join(file))
            .unwrap_or_default()
    }

    fn stop(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "dev exited with {status}:\n{}",
            self.log()
        );
        for socket in ["compute.sock", "credentials.sock"] {
            assert!(!self.state.join(socket).exists(), "{socket} left behind");
        }
    }
}

#[test]
fn the_readme_walkthrough_works_end_to_end() {
    let dev = Dev::start();
    let token_mode = std::fs::metadata(dev.state.join("gateway.token")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&token_mode.permissions()) & 0o777,
        0o600
    );

    // The sandbox's own program: the CLI, with only what the gateway put in its
    // environment (endpoint and token file).
    let script = format!(
        "until {g} credential resolve demo -o json; do sleep 0.2; done; \
         until {g} inference bundle -o json | grep -q api_key; do sleep 0.2; done; \
         {g} inference bundle -o json; echo WALKTHROUGH-DONE; exec sleep 600",
        g = GATEWAY
    );
    let sandbox = dev.json(&[
        "sandbox", "create", "hello", "--wait", "--", "sh", "-c", &script,
    ]);
    assert_eq!(sandbox["status"]["phase"], "Ready", "{sandbox}");
    let id = sandbox["id"].as_str().unwrap().to_owned();

    let provider = dev.json(&[
        "provider",
        "create",
        "demo",
        "--type",
        "generic",
        "--credential",
        "demo-token",
        "--endpoint",
        "https://llm.example/v1",
    ]);
    assert_eq!(provider["name"], "demo");
    assert!(
        provider.get("token").is_none(),
        "credential values are never returned"
    );
    let attached = dev.json(&["provider", "attach", "hello", "demo"]);
    assert_eq!(attached["providers"], serde_json::json!(["demo"]));
    let route = dev.json(&[
        "inference",
        "set",
        "--provider",
        "demo",
        "--model",
        "demo-model",
    ]);
    assert_eq!(route["name"], "inference.local");

    let mut stdout = String::new();
    for _ in 0..300 {
        stdout = dev.sandbox_file(&id, "stdout.log");
        if stdout.contains("WALKTHROUGH-DONE") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        stdout.contains("WALKTHROUGH-DONE"),
        "sandbox output:\n{stdout}\n{}",
        dev.sandbox_file(&id, "stderr.log")
    );
    let secret = std::fs::read_to_string(dev.state.join("secrets/demo-token")).unwrap();
    let mut documents =
        serde_json::Deserializer::from_str(stdout.trim_end_matches("WALKTHROUGH-DONE\n"))
            .into_iter::<Value>()
            .map(Result::unwrap);
    let resolved = documents.next().unwrap();
    assert_eq!(resolved["token"], secret.trim());
    assert_eq!(resolved["endpoint"], "https://llm.example/v1");
    let bundle = documents.next().unwrap();
    let routes = bundle["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0]["name"], "inference.local");
    assert_eq!(routes[0]["model"], "demo-model");
    assert_eq!(routes[0]["api_key"], secret.trim());

    dev.json(&["sandbox", "stop", "hello"]);
    dev.wait_phase("hello", "Stopped");
    dev.json(&["sandbox", "start", "hello"]);
    dev.wait_phase("hello", "Ready");
    let detached = dev.json(&["provider", "detach", "hello", "demo"]);
    assert_eq!(detached["providers"], serde_json::json!([]));
    let deleted = dev.json(&["sandbox", "delete", "hello"]);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(dev.json(&["sandbox", "list"]), serde_json::json!([]));

    let missing = dev.cli(&["sandbox", "get", "hello"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NotFound"));
    assert!(
        !dev.log().contains(secret.trim()),
        "the secret never reaches the logs"
    );
    dev.stop();
}

#[test]
fn cli_errors_say_what_to_do() {
    let out = Command::new(GATEWAY)
        .args([
            "sandbox",
            "list",
            "--token-file",
            "/nonexistent/gateway.token",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read the token file /nonexistent/gateway.token"),
        "{stderr}"
    );

    let out = Command::new(GATEWAY)
        .args([
            "sandbox",
            "list",
            "--token",
            "x",
            "--gateway",
            "http://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the gateway at http://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("gateway-shim dev"), "{stderr}");

    // An address without a scheme is named as such, not as a gateway that is down.
    let out = Command::new(GATEWAY)
        .args([
            "sandbox",
            "list",
            "--token",
            "x",
            "--gateway",
            "127.0.0.1:8080",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has no scheme: write http://127.0.0.1:8080"),
        "{stderr}"
    );
    assert!(!stderr.contains("is it running"), "{stderr}");
}

#[test]
fn help_lists_every_flag_with_its_env_var() {
    let help = |args: &[&str]| {
        let out = Command::new(GATEWAY)
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let serve = help(&["serve"]);
    for env in [
        "OPENSHELL_COMPUTE_DRIVER_SOCKET",
        "OPENSHELL_CREDENTIALS_DRIVER_SOCKET",
        "GATEWAY_LISTEN",
        "GATEWAY_DB_URL",
        "GATEWAY_METRICS_ADDR",
        "GATEWAY_LOCAL_TOKEN_FILE",
        "GATEWAY_SANDBOX_TOKEN_KEY_FILE",
        "GATEWAY_SANDBOX_TOKEN_TTL",
        "GATEWAY_SANDBOX_ENDPOINT",
        "GATEWAY_DRIVER_CALL_TIMEOUT",
        "GATEWAY_RECONCILE_INTERVAL",
        "GATEWAY_LOG_LEVEL",
        "OPENSHELL_OIDC_ISSUER",
        "OPENSHELL_OIDC_AUDIENCE",
        "OPENSHELL_OIDC_JWKS_TTL",
        "OPENSHELL_OIDC_ROLES_CLAIM",
        "OPENSHELL_OIDC_ADMIN_ROLE",
        "OPENSHELL_OIDC_USER_ROLE",
        "OPENSHELL_OIDC_SCOPES_CLAIM",
    ] {
        assert!(serve.contains(env), "serve --help lacks {env}");
    }
    let client = help(&["sandbox", "list"]);
    for env in [
        "OPENSHELL_GATEWAY",
        "OPENSHELL_TOKEN_FILE",
        "OPENSHELL_TOKEN",
    ] {
        assert!(client.contains(env), "sandbox list --help lacks {env}");
    }
    let dev = help(&["dev"]);
    assert!(dev.contains("GATEWAY_STATE_DIR"), "{dev}");
}

/// What a new user stumbled on, each fixed: a failed `create --wait` exits non-zero and
/// says why; a finished sandbox is Completed, not Error; `OPENSHELL_SANDBOX_NAME` is
/// the name; `-o json` errors are JSON, printed once; `provider update` changes only
/// the fields given; a driver killed under `dev` is restarted.
#[test]
fn what_a_new_user_stumbled_on_is_fixed() {
    let dev = Dev::start();

    let failed = dev.cli(&[
        "sandbox", "create", "bad", "--wait", "--", "sh", "-c", "exit 3",
    ]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "a failed sandbox exits non-zero");
    assert!(
        stderr.contains("sandbox bad failed: Failed: main process exited with status 3"),
        "{stderr}"
    );

    let done = dev.json(&[
        "sandbox",
        "create",
        "done",
        "--wait",
        "--",
        "sh",
        "-c",
        "echo \"name=$OPENSHELL_SANDBOX_NAME\"",
    ]);
    // `--wait` returns at Ready or at the end; a command this short may be seen Ready
    // first (it is running once its exec succeeded), then Completed.
    let mut done = done;
    for _ in 0..100 {
        if done["status"]["phase"] != "Ready" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        done = dev.json(&["sandbox", "get", "done"]);
    }
    assert_eq!(done["status"]["phase"], "Completed", "{done}");
    let id = done["id"].as_str().unwrap();
    assert_eq!(dev.sandbox_file(id, "stdout.log"), "name=done\n");

    let missing = dev.cli(&["sandbox", "get", "nope", "-o", "json"]);
    assert!(!missing.status.success());
    let error: Value = serde_json::from_slice(&missing.stderr).unwrap_or_else(|e| {
        panic!(
            "-o json error is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&missing.stderr)
        )
    });
    assert!(
        error["error"].as_str().unwrap().contains("NotFound"),
        "{error}"
    );

    dev.json(&[
        "provider",
        "create",
        "p",
        "--type",
        "generic",
        "--credential",
        "demo-token",
        "--endpoint",
        "https://a.example",
        "--config",
        "k=v",
    ]);
    let updated = dev.json(&["provider", "update", "p", "--endpoint", "https://b.example"]);
    assert_eq!(updated["endpoint"], "https://b.example");
    assert_eq!(updated["type"], "generic", "kept: {updated}");
    assert_eq!(updated["credential"], "demo-token", "kept: {updated}");
    assert_eq!(updated["config"]["k"], "v", "kept: {updated}");

    // A sandbox's output, followed until it ends, and its tail.
    dev.json(&[
        "sandbox",
        "create",
        "talker",
        "--",
        "sh",
        "-c",
        "echo out1; echo err1 >&2; sleep 1; echo out2",
    ]);
    let followed = dev.cli(&["sandbox", "logs", "talker", "--follow"]);
    assert!(followed.status.success(), "{followed:?}");
    assert_eq!(String::from_utf8_lossy(&followed.stdout), "out1\nout2\n");
    assert_eq!(String::from_utf8_lossy(&followed.stderr), "err1\n");
    let tail = dev.cli(&["sandbox", "logs", "talker", "--tail", "5"]);
    assert_eq!(String::from_utf8_lossy(&tail.stdout), "out2\n");
    let nope = dev.cli(&["sandbox", "logs", "nope"]);
    assert!(String::from_utf8_lossy(&nope.stderr).contains("NotFound"));

    // Kill the compute driver: dev says so and starts it again.
    let pid_of = |name: &str| -> Option<i32> {
        let out = Command::new("pgrep")
            .args(["-f", &format!("{name} --socket {}", dev.state.display())])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    };
    let first = pid_of("compute-driver").expect("the compute driver runs");
    kill(Pid::from_raw(first), Signal::SIGKILL).unwrap();
    let mut again = None;
    for _ in 0..100 {
        again = pid_of("compute-driver").filter(|pid| *pid != first);
        if again.is_some() && dev.cli(&["sandbox", "list"]).status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(again.is_some(), "not restarted:\n{}", dev.log());
    assert!(dev.log().contains("restarting it"), "{}", dev.log());
    let listed = dev.json(&["sandbox", "create", "after", "--wait", "--", "sleep", "60"]);
    assert_eq!(listed["status"]["phase"], "Ready");
    dev.stop();
}
