//! Test support (feature `test-util`): spawn a real driver binary on a socket in a
//! short temporary directory and talk to it. Only ever a dev-dependency, so it may
//! panic like test code does.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tonic::transport::Channel;

use crate::uds::{ConnectConfig, ConnectError, connect};

/// A temporary directory with a short path (socket paths must fit in 108 bytes).
///
/// # Panics
/// When `/tmp` is not writable.
pub fn short_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sd")
        .tempdir_in("/tmp")
        .expect("a temporary directory under /tmp")
}

/// A driver binary running on `dir/driver.sock`; killed when dropped.
#[derive(Debug)]
pub struct SpawnedDriver {
    child: Child,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl SpawnedDriver {
    /// Starts `binary --socket <dir>/driver.sock <args>` with stderr inherited (so test
    /// output shows its logs).
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn spawn(binary: &Path, args: &[&str]) -> Self {
        let dir = short_dir();
        let socket = dir.path().join("driver.sock");
        let child = Command::new(binary)
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("driver binary starts");
        Self { child, socket, dir }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The temporary directory holding the socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits (up to 30 s) until the driver answers health, then returns a channel.
    ///
    /// # Errors
    /// [`ConnectError`] when it never does.
    pub async fn channel(&self) -> Result<Channel, ConnectError> {
        connect(&self.socket, &ConnectConfig::default()).await
    }

    /// Sends a signal to the driver process.
    ///
    /// # Panics
    /// When the process is gone.
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in i32"));
        kill(pid, signal).expect("signal delivered");
    }

    /// Waits for the process to exit, up to `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SpawnedDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
