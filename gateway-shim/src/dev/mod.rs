//! `gateway-shim dev`: the whole suite on one machine.
//!
//! Makes a private runtime directory (0700; sandboxes live in its `compute/`) with a
//! sample credentials config (one static credential, `demo-token`), spawns
//! `compute-driver` (process backend, hiding the whole runtime directory from
//! sandboxes) and `credentials-driver` from the directory holding this binary on
//! sockets there, keeps them running ([`supervise`]), runs the gateway on loopback
//! with a local token written beside them, and prints how to use it. Ctrl-C stops the
//! gateway, then the drivers (which remove their sockets).

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::unistd::Uid;
use proto::cli::LogArgs;
use tokio_util::sync::CancellationToken;

use crate::server::{listen, run_gateway};
use crate::{DevArgs, Error, GatewayConfig};

pub mod supervise;

use supervise::{DriverSpec, keep_running};

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

/// The default runtime directory, `$TMPDIR/openshell-dev-<uid>` (`/tmp` without
/// `TMPDIR`).
pub fn default_state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("openshell-dev-{}", Uid::effective()))
}

/// Runs both drivers and the gateway until a shutdown signal; a driver that exits is
/// restarted with backoff.
///
/// # Errors
/// [`Error::Dev`] when the runtime directory or a driver cannot be set up; gateway
/// errors as [`run_gateway`] reports them.
pub async fn run_dev(dev: &DevArgs, log: &LogArgs) -> Result<(), Error> {
    let state_dir = dev.state_dir.clone().unwrap_or_else(default_state_dir);
    let state_dir = std::path::absolute(&state_dir)
        .map_err(|e| Error::Dev(format!("{}: {e}", state_dir.display())))?;
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .ok_or_else(|| Error::Dev("cannot find the directory of this binary".into()))?;
    prepare(&state_dir).map_err(|e| Error::Dev(format!("{}: {e}", state_dir.display())))?;
    let compute_socket = state_dir.join("compute.sock");
    let credentials_socket = state_dir.join("credentials.sock");
    let log_format = match log.log_format {
        proto::cli::LogFormat::Pretty => "pretty",
        proto::cli::LogFormat::Json => "json",
    };
    let driver = |name: &'static str, socket: &Path, extra: Vec<OsString>| {
        let mut args: Vec<OsString> = vec!["--socket".into(), socket.into()];
        args.extend(extra);
        args.extend(
            ["--log-format", log_format, "--log-level", &log.log_level].map(OsString::from),
        );
        DriverSpec {
            name,
            binary: bin_dir.join(name),
            args,
        }
    };
    // Sandboxes see none of the runtime directory: not the token, the store, the
    // secrets or the sockets (their own work directory and token are bound back).
    let compute = driver(
        "compute-driver",
        &compute_socket,
        vec![
            "--state-dir".into(),
            state_dir.join("compute").into(),
            "--hide-path".into(),
            state_dir.clone().into(),
        ],
    );
    let credentials = driver(
        "credentials-driver",
        &credentials_socket,
        vec![
            "--config".into(),
            state_dir.join("credentials.yaml").into(),
            "--secrets-dir".into(),
            state_dir.join("secrets").into(),
        ],
    );
    let stop = CancellationToken::new();
    let mut drivers = Vec::new();
    for spec in [compute, credentials] {
        match spec.spawn() {
            Ok(child) => drivers.push(tokio::spawn(keep_running(spec, child, stop.clone()))),
            Err(error) => {
                stop.cancel();
                for task in drivers {
                    let _ = task.await;
                }
                return Err(Error::Dev(error));
            }
        }
    }

    let token_file = state_dir.join(TOKEN_FILE);
    let gateway = GatewayConfig {
        credentials_driver_socket: Some(credentials_socket),
        listen: dev.listen,
        db_url: format!("sqlite:{}", state_dir.join("gateway.db").display()),
        local_token_file: Some(token_file.clone()),
        ..GatewayConfig::new(compute_socket)
    };
    let result = match listen(gateway.listen).await {
        Ok(listener) => {
            print_usage(&gateway, &token_file, &bin_dir);
            run_gateway(&gateway, listener, proto::shutdown_signal()).await
        }
        Err(error) => Err(error),
    };
    stop.cancel();
    for task in drivers {
        let _ = task.await;
    }
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

fn print_usage(gateway: &GatewayConfig, token_file: &Path, bin_dir: &Path) {
    let addr = format!("http://{}", gateway.listen);
    let text = format!(
        "\nOpenShell dev suite: gateway on {addr}, drivers on sockets in {dir}\n\
         Use it from another terminal:\n\
         \n  export PATH={bin}:$PATH\
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
        bin = bin_dir.display(),
    );
    let _ = std::io::stderr().write_all(text.as_bytes());
}
