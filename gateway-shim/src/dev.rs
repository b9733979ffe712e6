//! `gateway-shim dev`: the whole suite on one machine.
//!
//! Spawns `compute-driver` and `credentials-driver` from the directory holding this
//! binary, on sockets in the state directory, then runs the gateway against them.
//! Stops everything on SIGTERM/SIGINT, or when a driver exits on its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid};
use proto::cli::LogArgs;
use tokio::process::{Child, Command};

use crate::gateway::{listen, run_gateway};
use crate::{Args, DevArgs, Error, GatewayArgs};

/// How long a driver gets to drain after SIGTERM before it is killed.
const DRIVER_STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs both drivers and the gateway until a shutdown signal.
///
/// # Errors
/// [`Error::Dev`] when a driver binary cannot be started; gateway errors as
/// [`run_gateway`] reports them.
pub async fn run_dev(dev: &DevArgs, args: &Args) -> Result<(), Error> {
    let state_dir = dev.state_dir.clone().unwrap_or_else(default_state_dir);
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .ok_or_else(|| Error::Dev("cannot find the directory of this binary".into()))?;
    let compute_socket = state_dir.join("compute.sock");
    let credentials_socket = state_dir.join("credentials.sock");
    tracing::info!(state_dir = %state_dir.display(), "dev: starting compute-driver, credentials-driver and the gateway");

    let mut compute = spawn_driver(&bin_dir, "compute-driver", &compute_socket, &args.log)?;
    let mut credentials = match spawn_driver(
        &bin_dir,
        "credentials-driver",
        &credentials_socket,
        &args.log,
    ) {
        Ok(child) => child,
        Err(error) => {
            stop_driver("compute-driver", &mut compute).await;
            return Err(error);
        }
    };

    let gateway = GatewayArgs {
        compute_driver_socket: Some(compute_socket),
        credentials_driver_socket: Some(credentials_socket),
        ..args.gateway.clone()
    };
    let result = match listen(gateway.listen).await {
        Ok(listener) => {
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

fn default_state_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/openshell-dev-{}", Uid::effective()))
}

fn spawn_driver(bin_dir: &Path, name: &str, socket: &Path, log: &LogArgs) -> Result<Child, Error> {
    let binary = bin_dir.join(name);
    let log_format = match log.log_format {
        proto::cli::LogFormat::Pretty => "pretty",
        proto::cli::LogFormat::Json => "json",
    };
    Command::new(&binary)
        .arg("--socket")
        .arg(socket)
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
