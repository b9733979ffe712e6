//! Two `gateway-shim serve` processes, started as a user or the chart starts them (the
//! real binary, its own defaults, `--listen`/`--metrics-addr` on port 0), at the same
//! instant on one fresh PostgreSQL database: both come up and answer `/readyz`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conformance::postgres::PostgresPeer;
use proto::testing::SpawnedDriver;

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");
/// Fresh databases, each opened by two replicas at once.
const ROUNDS: usize = 5;

/// A `serve` process, killed when dropped; its JSON log in a file.
struct Replica {
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn command(compute: &Path, db_url: &str, log: &Path) -> Command {
        let mut command = Command::new(GATEWAY);
        command
            .args(["--log-format", "json", "serve", "--compute-driver-socket"])
            .arg(compute)
            .args(["--listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .args(["--db-url", db_url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        command
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The admin address the process logged, once it has; panics if it exits first.
    fn admin_addr(&mut self) -> Option<SocketAddr> {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("gateway-shim serve exited with {status}:\n{}", self.log());
        }
        self.log().lines().find_map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = line.get("fields")?;
            (fields.get("message")?.as_str()? == "serving /healthz, /readyz and /metrics")
                .then(|| fields.get("addr")?.as_str()?.parse().ok())?
        })
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.log.display(), self.log());
        }
    }
}

/// `/readyz` of the replica: its status code, once it answers.
async fn readyz(http: &reqwest::Client, replica: &mut Replica) -> Option<u16> {
    let addr = replica.admin_addr()?;
    let reply = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .ok()?;
    Some(reply.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_started_together_on_one_fresh_postgresql_both_come_up() {
    let drivers = support::ensure_driver_binaries(GATEWAY);
    let peer = PostgresPeer::start().unwrap();
    let dir = proto::testing::short_dir();
    let state = dir.path().join("state");
    let compute = SpawnedDriver::spawn(
        &drivers.join("compute-driver"),
        &["--state-dir", state.to_str().unwrap()],
    );
    compute.channel().await.unwrap();
    let http = reqwest::Client::new();
    for round in 0..ROUNDS {
        let url = peer.fresh_database(&format!("serve{round}")).unwrap();
        let logs = [0, 1].map(|i| dir.path().join(format!("gw{round}-{i}.log")));
        // Both commands built first, then spawned back to back.
        let mut commands = logs
            .each_ref()
            .map(|log| Replica::command(compute.socket(), &url, log));
        let mut replicas: Vec<Replica> = commands
            .iter_mut()
            .zip(&logs)
            .map(|(command, log)| Replica {
                child: command.spawn().unwrap(),
                log: log.clone(),
            })
            .collect();
        for replica in &mut replicas {
            let mut status = None;
            for _ in 0..600 {
                status = readyz(&http, replica).await;
                if status == Some(200) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(
                status,
                Some(200),
                "round {round}: replica not ready:\n{}",
                replica.log()
            );
        }
    }
}
