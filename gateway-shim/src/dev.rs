//! `gateway-shim dev`: the whole suite on one machine.
//!
//! Makes a private runtime directory (0700; sandboxes live in its `compute/`) with a
//! sample credentials config (one
//! static credential, `demo-token`), spawns `compute-driver` (process backend) and
//! `credentials-driver` from the directory holding this binary on sockets there, runs
//! the gateway on loopback with a local token written beside them, and prints how to
//! use it. Ctrl-C stops the gateway, then the drivers (which remove their sockets).

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid};
use proto::cli::LogArgs;
use tokio::process::{Child, Command};

use crate::server::{listen, run_gateway};
use crate::{DevArgs, Error, GatewayArgs};

/// How long a driver gets to drain after SIGTERM before it is killed.
const DRIVER_STOP_GRACE: Duration = Duration::from_secs(15);
/// The local token's file name in the runtime directory.
pub const TOKEN_FILE: &str = "gateway.token";
/// Name of the sample static credential.
pub const DEMO_CREDENTIAL: &str = "demo-token";

const SAMPLE_CONFIG: &str =
    "# Written by `gateway-shim dev`: one static credential for trying things out.
credentials:
  demo-token:
    kind: static
    token_ref: demo-token
";

/// The default runtime directory, `/tmp/openshell-dev-<uid>`.
pub fn default_state_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/openshell-dev-{}", Uid::effective()))
}

/// Runs both drivers and the gateway until a shutdown signal.
///
/// # Errors
/// [`Error::Dev`] when the runtime directory or a driver cannot be set up; gateway
/// errors as [`run_gateway`] reports them.
pub async fn run_dev(dev: &DevArgs, log: &LogArgs) -> Result<(), Error> {
    let state_dir = dev.state_dir.clone().unwrap_or_else(default_state_dir);
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .ok_or_else(|| Error::Dev("cannot find the directory of this binary".into()))?;
    prepare(&state_dir).map_err(|e| Error::Dev(format!("{}: {e}", state_dir.display())))?;
    let compute_socket = state_dir.join("compute.sock");
    let credentials_socket = state_dir.join("credentials.sock");
    let config = state_dir.join("credentials.yaml");
    let secrets = state_dir.join("secrets");

    let compute_state = state_dir.join("compute");
    let compute_args = ["--state-dir".as_ref(), compute_state.as_os_str()];
    let mut compute = spawn_driver(
        &bin_dir,
        "compute-driver",
        &compute_socket,
        log,
        &compute_args,
    )?;
    let credentials_args = [
        "--config".as_ref(),
        config.as_os_str(),
        "--secrets-dir".as_ref(),
        secrets.as_os_str(),
    ];
    let mut credentials = match spawn_driver(
        &bin_dir,
        "credentials-driver",
        &credentials_socket,
        log,
        &credentials_args,
    ) {
        Ok(child) => child,
        Err(error) => {
            stop_driver("compute-driver", &mut compute).await;
            return Err(error);
        }
    };

    let token_file = state_dir.join(TOKEN_FILE);
    let gateway = GatewayArgs {
        compute_driver_socket: Some(compute_socket),
        credentials_driver_socket: Some(credentials_socket),
        listen: dev.listen,
        db_url: format!("sqlite:{}", state_dir.join("gateway.db").display()),
        metrics_addr: None,
        local_token_file: Some(token_file.clone()),
        sandbox_token_key_file: None,
        sandbox_token_ttl: Duration::from_secs(30 * 24 * 3600),
        sandbox_endpoint: None,
        driver_call_timeout: Duration::from_secs(10),
        reconcile_interval: Duration::from_secs(30),
        credential_policy: None,
        max_sandboxes_per_owner: 1000,
        max_providers_per_owner: 100,
        oidc: crate::OidcArgs::default(),
    };
    let result = match listen(gateway.listen).await {
        Ok(listener) => {
            print_usage(&gateway, &token_file);
            let shutdown = async {
                tokio::select! {
                    () = proto::shutdown_signal() => {}
                    status = compute.wait() => tracing::error!(?status, "dev: compute-driver exited; stopping"),
                    status = credentials.wait() => tracing::error!(?status, "dev: credentials-driver exited; stopping"),
                }
            };
            run_gateway(&gateway, listener, shutdown).await
        }
        Err(error) => Err(error),
    };
    stop_driver("compute-driver", &mut compute).await;
    stop_driver("credentials-driver", &mut credentials).await;
    result
}

/// The runtime directory (0700) with the sample config and secret (kept if present).
fn prepare(state_dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)?;
    std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))?;
    let secrets = state_dir.join("secrets");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&secrets)?;
    let config = state_dir.join("credentials.yaml");
    if !config.exists() {
        std::fs::write(&config, SAMPLE_CONFIG)?;
    }
    let secret = secrets.join(DEMO_CREDENTIAL);
    if !secret.exists() {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&secret, format!("demo-{value}\n"))?;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn print_usage(gateway: &GatewayArgs, token_file: &Path) {
    let addr = format!("http://{}", gateway.listen);
    let text = format!(
        "\nOpenShell dev suite: gateway on {addr}, drivers on sockets in {dir}\n\
         Use it from another terminal:\n\
         \n  export OPENSHELL_GATEWAY={addr} OPENSHELL_TOKEN_FILE={token}\n\
         \n  gateway-shim sandbox create hello --wait -- sh -c 'echo hello; sleep 600'\
         \n  gateway-shim provider create demo --type generic --credential {DEMO_CREDENTIAL}\
         \n  gateway-shim provider attach hello demo\
         \n  gateway-shim inference set --provider demo --model demo-model\
         \n  gateway-shim sandbox list\
         \n\nCtrl-C stops the gateway and the drivers (sandboxes keep running).\n",
        dir = token_file
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        token = token_file.display(),
    );
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn spawn_driver(
    bin_dir: &Path,
    name: &str,
    socket: &Path,
    log: &LogArgs,
    extra: &[&std::ffi::OsStr],
) -> Result<Child, Error> {
    let binary = bin_dir.join(name);
    let log_format = match log.log_format {
        proto::cli::LogFormat::Pretty => "pretty",
        proto::cli::LogFormat::Json => "json",
    };
    Command::new(&binary)
        .arg("--socket")
        .arg(socket)
        .args(extra)
        .args(["--log-format", log_format, "--log-level", &log.log_level])
        .stdin(Stdio::null())
        // Own process group: a terminal's Ctrl-C reaches only the gateway, which then
        // stops the drivers in order.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            Error::Dev(format!(
                "cannot start {}: {error}; build every binary first with `cargo build --workspace`",
                binary.display()
            ))
        })
}

async fn stop_driver(name: &str, child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    match tokio::time::timeout(DRIVER_STOP_GRACE, child.wait()).await {
        Ok(status) => tracing::info!(driver = name, ?status, "dev: driver stopped"),
        Err(_) => {
            tracing::warn!(
                driver = name,
                "dev: driver did not stop in time; killing it"
            );
            let _ = child.kill().await;
        }
    }
}
