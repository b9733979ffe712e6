//! `gateway-shim`'s command line as users type it: `serve`'s defaults are the
//! documented configuration, a realistic command line parses, client subcommands read
//! no generic env vars, `serve --check-config` of the real binary passes a good set-up
//! and names each problem of a bad one, and secret files get private modes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;

use clap::FromArgMatches as _;
use gateway_shim::{Args, Command as Sub, ENV_PREFIX, GatewayConfig, SERVER_COMMANDS};

const BINARY: &str = env!("CARGO_BIN_EXE_gateway-shim");

fn parse(argv: &[&str]) -> Args {
    let matches = proto::cli::command_with_env_on::<Args>(ENV_PREFIX, SERVER_COMMANDS)
        .try_get_matches_from(argv)
        .unwrap();
    Args::from_arg_matches(&matches).unwrap()
}

fn serve_config(argv: &[&str]) -> GatewayConfig {
    let mut all = vec!["gateway-shim", "serve"];
    all.extend(argv);
    match parse(&all).command {
        Sub::Serve(serve) => serve.config().unwrap(),
        other => panic!("not serve: {other:?}"),
    }
}

#[test]
fn serve_defaults_are_the_documented_config() {
    let config = serve_config(&["--compute-driver-socket", "/run/compute-driver/c.sock"]);
    assert_eq!(config, GatewayConfig::new("/run/compute-driver/c.sock"));
    assert_eq!(
        config.sandbox_token_ttl,
        Duration::from_secs(30 * 24 * 3600)
    );
}

#[test]
fn a_realistic_serve_command_line_parses() {
    let config = serve_config(&[
        "--compute-driver-socket=/run/compute-driver/sock/compute.sock",
        "--credentials-driver-socket=/run/credentials-driver/sock/credentials.sock",
        "--listen=0.0.0.0:8080",
        "--metrics-addr=0.0.0.0:9090",
        "--db-url=postgres://gateway:secret@postgres:5432/gateway",
        "--sandbox-token-ttl=7d",
        "--sandbox-endpoint=http://gateway.openshell.svc:8080",
        "--driver-call-timeout=15s",
        "--reconcile-interval=1m",
        "--shutdown-grace=25s",
        "--max-sandboxes-per-owner=50",
        "--oidc-issuer=https://keycloak.example/realms/openshell",
        "--oidc-audience=openshell-gateway",
        "--oidc-scopes-claim=scope",
    ]);
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.sandbox_token_ttl, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(config.reconcile_interval, Duration::from_secs(60));
    assert_eq!(config.shutdown_grace, Duration::from_secs(25));
    assert_eq!(config.max_sandboxes_per_owner, 50);
    let oidc = config.oidc.unwrap();
    assert_eq!(oidc.issuer, "https://keycloak.example/realms/openshell");
    assert_eq!(oidc.scopes_claim.as_deref(), Some("scope"));
    assert!(oidc.roles.is_some(), "RBAC with the default role names");
}

#[test]
fn client_subcommands_read_no_generic_env_vars() {
    let command = proto::cli::command_with_env_on::<Args>(ENV_PREFIX, SERVER_COMMANDS);
    let mut seen = 0;
    for group in command.get_subcommands() {
        for sub in std::iter::once(group).chain(group.get_subcommands()) {
            for arg in sub.get_arguments() {
                let Some(env) = arg.get_env() else { continue };
                let env = env.to_string_lossy();
                seen += 1;
                let server = SERVER_COMMANDS.contains(&group.get_name());
                assert!(
                    server || env.starts_with("OPENSHELL_"),
                    "`{} {}` --{} reads {env}",
                    group.get_name(),
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
    assert!(seen > 10, "env vars were inspected ({seen})");
}

fn check(dir: &Path, extra: &[&str]) -> (bool, String, String) {
    let output = Command::new(BINARY)
        .args(["serve", "--check-config"])
        .args(extra)
        .current_dir(dir)
        .env_remove("OPENSHELL_COMPUTE_DRIVER_SOCKET")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn check_config_passes_a_good_setup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("key"), &[7u8; 32], 0o600);
    write(
        &d.join("policy.yaml"),
        b"token_exchange: open\ngrants:\n  - credentials: [\"users/{owner}/*\"]\n",
        0o644,
    );
    let db = format!("--db-url=sqlite:{}", d.join("store/gateway.db").display());
    let key = format!("--sandbox-token-key-file={}", d.join("key").display());
    let policy = format!("--credential-policy={}", d.join("policy.yaml").display());
    let (ok, stdout, stderr) = check(
        d,
        &[
            "--compute-driver-socket=/run/compute-driver/sock/compute.sock",
            &db,
            &key,
            &policy,
            "--oidc-issuer=https://keycloak.example/realms/x",
            "--oidc-audience=gw",
        ],
    );
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(
        !d.join("store").exists(),
        "the check creates nothing (the store's directory)"
    );
}

#[test]
fn check_config_names_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("key"), &[7u8; 32], 0o644);
    write(&d.join("short"), &[7u8; 8], 0o600);
    write(&d.join("policy.yaml"), b"credentials: [", 0o644);
    let long_socket = format!("--compute-driver-socket=/{}", "s".repeat(120));
    let key = format!("--sandbox-token-key-file={}", d.join("key").display());
    let policy = format!("--credential-policy={}", d.join("policy.yaml").display());
    let (ok, _, stderr) = check(
        d,
        &[
            &long_socket,
            "--db-url=mysql://db/gw",
            &key,
            &policy,
            "--sandbox-endpoint=gateway:8080",
        ],
    );
    assert!(!ok);
    for flag in [
        "--compute-driver-socket",
        "--db-url",
        "--sandbox-token-key-file",
        "chmod 600",
        "--credential-policy",
        "--sandbox-endpoint",
    ] {
        assert!(stderr.contains(flag), "{flag} not named in:\n{stderr}");
    }

    let short = format!("--sandbox-token-key-file={}", d.join("short").display());
    let (ok, _, stderr) = check(d, &["--compute-driver-socket=/run/c.sock", &short]);
    assert!(!ok && stderr.contains("at least 32 bytes"), "{stderr}");

    let (ok, _, stderr) = check(d, &["--oidc-issuer=https://kc.example"]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("--compute-driver-socket"), "{stderr}");
    assert!(stderr.contains("--oidc-audience"), "{stderr}");
}

#[tokio::test]
async fn the_store_file_is_private_and_its_directory_checked() {
    let dir = tempfile::tempdir().unwrap();
    // A store made before the rule (0644) is made 0600 at open.
    let old = dir.path().join("old.db");
    write(&old, b"", 0o644);
    gateway_shim::store::Store::open(&format!("sqlite:{}", old.display()))
        .await
        .unwrap();
    let mode = std::fs::metadata(&old).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A missing directory is created 0700.
    let fresh = dir.path().join("new/store/gateway.db");
    gateway_shim::store::Store::open(&format!("sqlite:{}", fresh.display()))
        .await
        .unwrap();
    let mode = std::fs::metadata(fresh.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    // A directory others may write to is refused, naming it.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = gateway_shim::store::Store::open(&format!(
        "sqlite:{}",
        shared.join("gateway.db").display()
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("shared"), "{error}");
    assert!(!shared.join("gateway.db").exists());
}

#[tokio::test]
async fn a_wrong_socket_path_is_named_once_not_logged_twice_a_second() {
    let dir = proto::testing::short_dir();
    let socket = dir.path().join("no-such-dir/compute.sock");
    let log = dir.path().join("serve.log");
    let flag = format!("--compute-driver-socket={}", socket.display());
    let db = format!("--db-url=sqlite:{}", dir.path().join("gw.db").display());
    let mut serve = support::serve::Serve::spawn(
        support::serve::Serve::command(&log, &[&flag, &db, "--reconcile-interval=1s"]),
        &log,
    );
    for _ in 0..100 {
        if serve.api_addr().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let text = serve.log();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("\"WARN\"")).collect();
    let about_socket: Vec<&&str> = warnings
        .iter()
        .filter(|l| l.contains(socket.to_str().unwrap()))
        .collect();
    assert!(
        !about_socket.is_empty(),
        "no warning names the socket path:\n{text}"
    );
    assert!(
        warnings.len() <= 4,
        "{} warnings in 4 s:\n{}",
        warnings.len(),
        warnings.join("\n")
    );
}
