//! Round-trip latency and throughput of an empty unary gRPC call over a Unix socket,
//! through the suite's own serve path (safe bind, peer-credential check, health).
//!
//! The server and the client run on separate single-worker runtimes (as two processes
//! would, one core each); all callers share one HTTP/2 channel, as a gateway does.
//! Run: `cargo bench -p proto --bench uds_roundtrip` (`BENCH_SECONDS` sets the
//! measuring time per level, default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Duration;

use proto::pb::credentials::v1 as pb;
use proto::pb::credentials::v1::credentials_driver_client::CredentialsDriverClient;
use proto::pb::credentials::v1::credentials_driver_server::{
    CredentialsDriver, CredentialsDriverServer,
};
use tokio::time::Instant;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

/// Answers every call with an empty message.
struct Empty;

#[tonic::async_trait]
impl CredentialsDriver for Empty {
    async fn resolve_credential(
        &self,
        _: Request<pb::ResolveCredentialRequest>,
    ) -> Result<Response<pb::ResolveCredentialResponse>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn list_credentials(
        &self,
        _: Request<pb::ListCredentialsRequest>,
    ) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn get_capabilities(
        &self,
        _: Request<pb::GetCapabilitiesRequest>,
    ) -> Result<Response<pb::GetCapabilitiesResponse>, Status> {
        Ok(Response::new(Default::default()))
    }
}

fn single_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn start_server(path: std::path::PathBuf) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        single_worker_runtime().block_on(async move {
            let config = proto::SocketConfig {
                path,
                ..Default::default()
            };
            let socket = proto::bind(&config).unwrap();
            let (health, health_service) = proto::Health::new(Vec::<String>::new()).await;
            let routes =
                Routes::new(CredentialsDriverServer::new(Empty)).add_service(health_service);
            ready_tx.send(()).unwrap();
            proto::serve(
                socket,
                routes,
                health,
                proto::ServeOptions::default(),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
        });
    });
    ready_rx.recv().unwrap();
    stop
}

struct Level {
    callers: usize,
    calls: usize,
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

async fn measure(
    client: &CredentialsDriverClient<tonic::transport::Channel>,
    callers: usize,
    length: Duration,
) -> Level {
    let warmup_until = Instant::now() + Duration::from_millis(500);
    let stop_at = warmup_until + length;
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let started = Instant::now();
                    if started >= stop_at {
                        return latencies;
                    }
                    client
                        .get_capabilities(pb::GetCapabilitiesRequest {})
                        .await
                        .unwrap();
                    if started >= warmup_until {
                        latencies.push(started.elapsed());
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Level {
        callers,
        calls: all.len(),
        p50: at(0.50),
        p99: at(0.99),
        per_second: all.len() as f64 / length.as_secs_f64(),
    }
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::Builder::new()
        .prefix("bench")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("b.sock");
    let stop = start_server(path.clone());

    single_worker_runtime().block_on(async {
        let channel = proto::connect(&path, &proto::ConnectConfig::default())
            .await
            .unwrap();
        let client = CredentialsDriverClient::new(channel);
        println!(
            "empty unary gRPC call over a Unix socket, one shared channel, {seconds} s per level"
        );
        println!(
            "{:>8} {:>10} {:>10} {:>10} {:>12}",
            "callers", "calls", "p50", "p99", "calls/s"
        );
        for callers in [1, 16, 64] {
            let level = measure(&client, callers, Duration::from_secs(seconds)).await;
            println!(
                "{:>8} {:>10} {:>10.1?} {:>10.1?} {:>12.0}",
                level.callers, level.calls, level.p50, level.p99, level.per_second
            );
        }
    });
    let _ = stop.send(());
}
