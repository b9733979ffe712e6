//! Test support (feature `test-util`): spawn a real driver binary on a socket in a
//! short temporary directory and talk to it. Only ever a dev-dependency, so it may
//! panic like test code does.
#![allow(clippy::expect_used, clippy::print_stderr)]

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

/// A driver binary running on a socket; killed when dropped. Its stderr (the logs)
/// goes to a file, printed when the test fails.
#[derive(Debug)]
pub struct SpawnedDriver {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl SpawnedDriver {
    /// Starts `binary --socket <tmp>/driver.sock <args>` in a fresh short directory.
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn spawn(binary: &Path, args: &[&str]) -> Self {
        let dir = short_dir();
        let mut driver = Self::spawn_in(binary, dir.path(), args);
        driver._dir = Some(dir);
        driver
    }

    /// Starts `binary --socket <dir>/driver.sock <args>`, logging to `<dir>/driver.log`
    /// (appended, so a restarted driver's logs follow the first one's).
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn spawn_in(binary: &Path, dir: &Path, args: &[&str]) -> Self {
        let socket = dir.join("driver.sock");
        let log = dir.join("driver.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(binary)
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("driver binary starts");
        Self {
            child,
            socket,
            log,
            _dir: None,
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Everything the driver logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The driver's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        if std::thread::panicking() {
            eprintln!(
                "---- driver log ({}) ----\n{}",
                self.log.display(),
                self.logs()
            );
        }
    }
}
