//! `compute-driver`'s command line as users and the chart type it: the defaults, a
//! realistic Kubernetes command line, and `--check-config` of the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use clap::FromArgMatches as _;
use compute_driver::{Args, BackendKind, ENV_PREFIX, NamespaceLayout};

const BINARY: &str = env!("CARGO_BIN_EXE_compute-driver");

fn parse(argv: &[&str]) -> Args {
    let matches = proto::cli::command::<Args>(ENV_PREFIX)
        .try_get_matches_from(std::iter::once("compute-driver").chain(argv.iter().copied()))
        .unwrap();
    Args::from_arg_matches(&matches).unwrap()
}

#[test]
fn defaults_parse() {
    let args = parse(&["--socket", "/run/compute-driver/sock/compute.sock"]);
    assert_eq!(args.backend, BackendKind::Process);
    assert_eq!(args.stop_grace, Duration::from_secs(10));
    assert_eq!(args.socket.shutdown_grace, Duration::from_secs(10));
    assert!(!args.process.shared_tmp, "private /tmp by default");
    assert!(args.process.hide_path.is_empty());
    let kube = args.kube.config();
    assert_eq!(kube.gateway_id, "default");
    assert_eq!(kube.namespace, "openshell");
    assert!(!args.check.check_config);
}

#[test]
fn a_realistic_kubernetes_command_line_parses() {
    let args = parse(&[
        "--socket=/run/compute-driver/sock/compute.sock",
        "--socket-group=2000",
        "--allowed-uids=1001",
        "--backend=kubernetes",
        "--kube-namespaces=shared",
        "--kube-namespace=openshell-sandboxes",
        "--gateway-id=prod-eu",
        "--default-image=ghcr.io/example/sandbox:1",
        "--image-pull-policy=always",
        "--kube-call-timeout=20s",
        "--shutdown-grace=20s",
        "--metrics-addr=0.0.0.0:9091",
        "--log-format=json",
    ]);
    assert_eq!(args.backend, BackendKind::Kubernetes);
    assert_eq!(args.socket.allowed_uids, vec![1001]);
    assert_eq!(args.kube.kube_namespaces, NamespaceLayout::Shared);
    let kube = args.kube.config();
    assert_eq!(kube.gateway_id, "prod-eu");
    assert_eq!(kube.image_pull_policy, "Always");
    assert_eq!(kube.call_timeout, Duration::from_secs(20));
}

fn check(argv: &[&str]) -> (bool, String) {
    let output = Command::new(BINARY)
        .arg("--check-config")
        .args(argv)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent")
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
fn check_config_of_the_process_backend() {
    let dir = proto::testing::short_dir();
    let socket = dir.path().join("sock/compute.sock");
    let state = dir.path().join("state");
    let good = [
        format!("--socket={}", socket.display()),
        format!("--state-dir={}", state.display()),
        "--hide-path=/srv/gateway".into(),
    ];
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let (ok, text) = check(&good);
    assert!(ok, "{text}");
    assert!(text.contains("configuration OK"), "{text}");
    assert!(
        !state.exists() && !socket.parent().unwrap().exists(),
        "created nothing"
    );

    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bad = [
        format!("--socket=/{}", "s".repeat(120)),
        format!("--state-dir={}", state.display()),
        "--hide-path=relative/path".into(),
        "--socket-group=no-such-group-here".into(),
    ];
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let (ok, text) = check(&bad);
    assert!(!ok, "{text}");
    for named in ["--socket", "--state-dir", "--hide-path"] {
        assert!(
            text.contains(&format!("config error: {named}")),
            "{named}: {text}"
        );
    }
}

#[test]
fn check_config_of_the_kubernetes_backend() {
    let dir = proto::testing::short_dir();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
    )
    .unwrap();
    let socket = format!("--socket={}", dir.path().join("c.sock").display());
    let with_file = format!("--kubeconfig={}", kubeconfig.display());
    let (ok, text) = check(&[&socket, "--backend=kubernetes", &with_file]);
    assert!(ok, "{text}");

    let missing = format!("--kubeconfig={}", dir.path().join("nope").display());
    let (ok, text) = check(&[&socket, "--backend=kubernetes", &missing]);
    assert!(!ok && text.contains("config error: --kubeconfig"), "{text}");

    // Outside a pod, with no kubeconfig anywhere: says so.
    let (ok, text) = check(&[&socket, "--backend=kubernetes", "--gateway-id=-bad-"]);
    assert!(!ok, "{text}");
    assert!(text.contains("--gateway-id"), "{text}");
    assert!(text.contains("config error: --kubeconfig"), "{text}");
}

#[test]
fn check_config_of_the_supervisor_option_names_the_flag_to_fix() {
    let dir = proto::testing::short_dir();
    let socket = format!("--socket={}", dir.path().join("c.sock").display());
    let state = format!("--state-dir={}", dir.path().join("state").display());
    let script = dir.path().join("supervisor");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let supervisor = format!("--supervisor={}", script.display());
    let endpoint = "--supervisor-endpoint=http://10.0.0.5:8080";

    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, text) = check(&[&socket, &state, &supervisor, endpoint]);
    assert!(ok, "{text}");
    assert!(text.contains("supervisor option"), "{text}");

    let cases: [(&[&str], &str); 5] = [
        (
            &[&supervisor],
            "config error: --supervisor-endpoint: required",
        ),
        (
            &["--supervisor=relative/sup", endpoint],
            "config error: --supervisor relative/sup: must be an absolute path",
        ),
        (
            &[endpoint],
            "config error: --supervisor-endpoint: only used with",
        ),
        (
            &[&supervisor, "--supervisor-endpoint=10.0.0.5:8080"],
            "must be an http:// or https:// URL",
        ),
        (
            &["--supervisor-image=ghcr.io/x/supervisor:1", endpoint],
            "config error: --supervisor-image: is for --backend kubernetes",
        ),
    ];
    for (flags, expected) in cases {
        let mut argv = vec![socket.as_str(), state.as_str()];
        argv.extend_from_slice(flags);
        let (ok, text) = check(&argv);
        assert!(!ok && text.contains(expected), "{flags:?}: {text}");
    }

    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, text) = check(&[&socket, &state, &supervisor, endpoint]);
    assert!(!ok && text.contains("not an executable file"), "{text}");

    // The Kubernetes backend takes an image, not a path.
    let (ok, text) = check(&[&socket, "--backend=kubernetes", &supervisor, endpoint]);
    assert!(
        !ok && text.contains("config error: --supervisor: is a host path"),
        "{text}"
    );
}
