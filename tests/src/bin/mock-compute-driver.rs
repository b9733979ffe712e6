//! `mock-compute-driver`: the in-memory ComputeDriver mock on a Unix socket.

use std::process::ExitCode;

use clap::Parser;
use conformance::mock::{Faults, MockCompute, parse_failure, serve_compute};
use proto::cli::{LogArgs, SocketArgs};

/// An in-memory, conformant ComputeDriver for tests, with injectable failures.
#[derive(Parser, Debug)]
#[command(name = "mock-compute-driver", version, about, long_about = None)]
struct Args {
    /// Socket flags.
    #[command(flatten)]
    socket: SocketArgs,
    /// Fail the next COUNT calls of RPC with CODE: `RPC=CODE:COUNT` (repeatable).
    #[arg(long, value_name = "RPC=CODE:COUNT", value_parser = parse_failure)]
    fail: Vec<(String, tonic::Code, u32)>,
    /// Logging flags.
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = proto::cli::parse("MOCK_COMPUTE_DRIVER");
    if let Err(error) = args.log.init() {
        eprintln!("mock-compute-driver: {error}");
        return ExitCode::from(2);
    }
    let faults = Faults::default();
    for (rpc, code, count) in &args.fail {
        faults.fail_next(rpc, *code, *count).await;
    }
    match serve_compute(
        &args.socket.socket_config(),
        MockCompute::new(faults),
        proto::shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mock-compute-driver: {error}");
            ExitCode::FAILURE
        }
    }
}
