//! `kube-sim`: the Kubernetes API simulator as a process, for trying the compute
//! driver's Kubernetes backend by hand. A test peer, never a cluster: see the README
//! for running against kind.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conformance::kube_sim::http::{Shared, serve};
use conformance::kube_sim::kubeconfig;
use conformance::kube_sim::kubelet::Kubelet;
use proto::cli::{LogArgs, parse_duration};

/// A Kubernetes API simulator (core/v1 namespaces, pods, secrets, events) with a
/// simulated kubelet, over plain HTTP on loopback.
#[derive(Parser, Debug)]
#[command(name = "kube-sim", version, about, long_about = None)]
struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at the simulator here.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// How long the simulated kubelet keeps a pod Pending before it is Running.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    ready_delay: Duration,
    /// Logging flags.
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = proto::cli::parse("KUBE_SIM");
    if let Err(error) = args.log.init() {
        eprintln!("kube-sim: {error}");
        return ExitCode::from(2);
    }
    let shared = Shared::default();
    let (addr, server) = match serve(shared.clone(), args.listen).await {
        Ok(bound) => bound,
        Err(error) => {
            eprintln!("kube-sim: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let (_kubelet, _kubelet_task) = Kubelet::spawn(shared, args.ready_delay);
    if let Some(path) = &args.kubeconfig
        && let Err(error) = std::fs::write(path, kubeconfig(addr))
    {
        eprintln!("kube-sim: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    let _ = writeln!(
        std::io::stdout(),
        "{{\"ready\":true,\"server\":\"http://{addr}\"}}"
    );
    tracing::info!(%addr, "kube-sim serving");
    proto::shutdown_signal().await;
    server.abort();
    ExitCode::SUCCESS
}
