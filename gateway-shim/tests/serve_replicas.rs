//! Two `gateway-shim serve` processes, started as a user or the chart starts them (the
//! real binary, its own defaults, `--listen`/`--metrics-addr` on port 0), at the same
//! instant on one fresh PostgreSQL database: both come up and answer `/readyz`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use conformance::postgres::PostgresPeer;
use proto::testing::SpawnedDriver;
use support::serve::{GATEWAY, Serve};

/// Fresh databases, each opened by two replicas at once.
const ROUNDS: usize = 5;

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
    let socket = compute.socket().to_str().unwrap().to_owned();
    for round in 0..ROUNDS {
        let url = peer.fresh_database(&format!("serve{round}")).unwrap();
        let logs = [0, 1].map(|i| dir.path().join(format!("gw{round}-{i}.log")));
        let extra = ["--compute-driver-socket", &socket, "--db-url", &url];
        // Both commands built first, then spawned back to back.
        let commands = logs.each_ref().map(|log| Serve::command(log, &extra));
        let mut replicas: Vec<Serve> = commands
            .into_iter()
            .zip(&logs)
            .map(|(command, log)| Serve::spawn(command, log))
            .collect();
        for replica in &mut replicas {
            replica.wait_ready().await;
        }
    }
}
