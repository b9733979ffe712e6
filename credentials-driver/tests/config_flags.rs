//! `credentials-driver`'s command line as users and the chart type it: the defaults, a
//! realistic command line, and `--check-config` of the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use clap::FromArgMatches as _;
use credentials_driver::{Args, ENV_PREFIX};

const BINARY: &str = env!("CARGO_BIN_EXE_credentials-driver");

fn parse(argv: &[&str]) -> Args {
    let matches = proto::cli::command::<Args>(ENV_PREFIX)
        .try_get_matches_from(std::iter::once("credentials-driver").chain(argv.iter().copied()))
        .unwrap();
    Args::from_arg_matches(&matches).unwrap()
}

#[test]
fn defaults_parse() {
    let args = parse(&["--socket", "/run/credentials-driver/sock/credentials.sock"]);
    assert_eq!(
        args.secrets_dir,
        PathBuf::from("/etc/credentials-driver/secrets")
    );
    assert_eq!(args.reload_interval, Duration::from_secs(2));
    assert_eq!(args.idp_timeout, Duration::from_secs(10));
    assert_eq!(args.exchange_cache_size, 10_000);
    assert!(args.config.is_none());
}

#[test]
fn a_realistic_command_line_parses() {
    let args = parse(&[
        "--socket=/run/credentials-driver/sock/credentials.sock",
        "--socket-group=2000",
        "--allowed-uids=1001",
        "--config=/etc/credentials-driver/config/credentials.yaml",
        "--secrets-dir=/etc/credentials-driver/secrets",
        "--reload-interval=5s",
        "--negative-cache-ttl=1m",
        "--metrics-addr=0.0.0.0:9092",
    ]);
    assert_eq!(args.socket.socket_group.as_deref(), Some("2000"));
    assert_eq!(args.negative_cache_ttl, Duration::from_secs(60));
}

fn check(argv: &[&str]) -> (bool, String) {
    let output = Command::new(BINARY)
        .arg("--check-config")
        .args(argv)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn check_config_loads_the_config_and_every_secret_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("gh"), "token\n").unwrap();
    let config = dir.path().join("credentials.yaml");
    std::fs::write(
        &config,
        "credentials:\n  gh:\n    kind: static\n    token_ref: gh\n  bot:\n    token_endpoint: https://kc.example/token\n    client_id: bot\n    client_secret_ref: bot-secret\n",
    )
    .unwrap();
    let socket = format!("--socket={}", dir.path().join("c.sock").display());
    let config_flag = format!("--config={}", config.display());
    let secrets_flag = format!("--secrets-dir={}", secrets.display());

    let (ok, text) = check(&[&socket, &config_flag, &secrets_flag]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("config error: credentials.bot.client_secret_ref"),
        "{text}"
    );
    assert!(text.contains("ok: credentials.gh.token_ref"), "{text}");

    std::fs::write(secrets.join("bot-secret"), "s3cret\n").unwrap();
    let (ok, text) = check(&[&socket, &config_flag, &secrets_flag]);
    assert!(ok, "{text}");
    assert!(!text.contains("s3cret"), "never prints a secret: {text}");

    std::fs::write(&config, "credentials:\n  x:\n    kind: nope\n").unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ca = format!("--idp-ca-file={}", config.display());
    let (ok, text) = check(&[&socket, &config_flag, &secrets_flag, &ca]);
    assert!(!ok);
    for named in ["--config", "--secrets-dir", "--idp-ca-file"] {
        assert!(
            text.contains(&format!("config error: {named}")),
            "{named}: {text}"
        );
    }
}
