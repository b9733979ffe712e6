//! `dev`'s drivers: each spawned from the binary beside this one and restarted with
//! backoff when it exits (saying so), until the suite stops; then SIGTERM, a grace,
//! SIGKILL.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// How long a driver gets to drain after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// First wait before a restart; doubled per quick exit up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A driver that ran this long before exiting restarts after [`FIRST_BACKOFF`] again.
const STEADY: Duration = Duration::from_secs(60);

/// One driver to keep running.
#[derive(Clone, Debug)]
pub(crate) struct DriverSpec {
    /// `compute-driver` or `credentials-driver`.
    pub(crate) name: &'static str,
    /// Its binary.
    pub(crate) binary: PathBuf,
    /// Its arguments.
    pub(crate) args: Vec<OsString>,
}

impl DriverSpec {
    /// Starts the driver.
    ///
    /// # Errors
    /// A message naming the binary and the fix.
    pub(crate) fn spawn(&self) -> Result<Child, String> {
        Command::new(&self.binary)
            .args(&self.args)
            .stdin(Stdio::null())
            // Own process group: a terminal's Ctrl-C reaches only the gateway, which
            // then stops the drivers in order.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                format!(
                    "cannot start {}: {error}; build every binary first with `cargo build --workspace`",
                    self.binary.display()
                )
            })
    }
}

/// Keeps `first` (already started from `spec`) running until `stop` is cancelled, then
/// stops it.
pub(crate) async fn keep_running(spec: DriverSpec, first: Child, stop: CancellationToken) {
    let mut child = first;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = tokio::time::Instant::now();
        let status = tokio::select! {
            status = child.wait() => status,
            () = stop.cancelled() => {
                stop_child(spec.name, &mut child).await;
                return;
            }
        };
        if started.elapsed() >= STEADY {
            backoff = FIRST_BACKOFF;
        }
        tracing::warn!(
            driver = spec.name,
            status = ?status.ok(),
            restart_in = ?backoff,
            "dev: the driver exited; restarting it"
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        child = loop {
            match spec.spawn() {
                Ok(child) => break child,
                Err(error) => {
                    tracing::error!(driver = spec.name, %error, "dev: restart failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        tracing::info!(driver = spec.name, "dev: driver restarted");
    }
}

async fn stop_child(name: &str, child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
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
