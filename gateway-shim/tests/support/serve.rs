//! `gateway-shim serve` as a real process, as a user or the chart starts it: flags on
//! the command line, JSON logs to a file, both addresses on port 0 and read back from
//! the log.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");

/// A running `serve`, killed when dropped (its log printed if the test panics).
pub struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    /// `gateway-shim --log-format json serve --listen 127.0.0.1:0 --metrics-addr
    /// 127.0.0.1:0 <extra>`, logging to `log`.
    pub fn command(log: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(GATEWAY);
        command
            .args(["--log-format", "json", "serve"])
            .args(["--listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        command
    }

    /// Spawns `command` (from [`Serve::command`]) logging to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Self {
        Self {
            child: command.spawn().unwrap(),
            log: log.to_owned(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address a log line with `message` gave in `field`, once logged; panics if
    /// the process exits first.
    fn logged_addr(&mut self, message: &str, field: &str) -> Option<SocketAddr> {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("gateway-shim serve exited with {status}:\n{}", self.log());
        }
        self.log().lines().find_map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = line.get("fields")?;
            (fields.get("message")?.as_str()? == message)
                .then(|| fields.get(field)?.as_str()?.parse().ok())?
        })
    }

    /// The admin address (`/readyz`), once logged.
    pub fn admin_addr(&mut self) -> Option<SocketAddr> {
        self.logged_addr("serving /healthz, /readyz and /metrics", "addr")
    }

    /// The API address, once logged.
    pub fn api_addr(&mut self) -> Option<SocketAddr> {
        self.logged_addr(
            "gateway listening; NOT_SERVING until the drivers answer",
            "listen",
        )
    }

    /// Waits (up to 30 s) until `/readyz` answers 200; returns the API address.
    pub async fn wait_ready(&mut self) -> SocketAddr {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Some(admin) = self.admin_addr()
                && let Ok(reply) = http.get(format!("http://{admin}/readyz")).send().await
                && reply.status() == 200
                && let Some(api) = self.api_addr()
            {
                return api;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway-shim serve never became ready:\n{}", self.log());
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The compute driver (process backend, state in `dir/state`) and a `serve` on it with
/// SQLite in `dir`, its log in `dir/gateway.log`, and `extra` flags; once ready.
pub async fn with_compute(
    dir: &Path,
    extra: &[&str],
) -> (proto::testing::SpawnedDriver, Serve, SocketAddr) {
    let drivers = super::ensure_driver_binaries(GATEWAY);
    let state = dir.join("state");
    let compute = proto::testing::SpawnedDriver::spawn(
        &drivers.join("compute-driver"),
        &["--state-dir", state.to_str().unwrap()],
    );
    compute.channel().await.unwrap();
    let db = format!("sqlite:{}", dir.join("gateway.db").display());
    let mut flags = vec![
        "--compute-driver-socket",
        compute.socket().to_str().unwrap(),
        "--db-url",
        &db,
    ];
    flags.extend_from_slice(extra);
    let log = dir.join("gateway.log");
    let mut gateway = Serve::spawn(Serve::command(&log, &flags), &log);
    let api = gateway.wait_ready().await;
    (compute, gateway, api)
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.log.display(), self.log());
        }
    }
}
