//! `mock-credentials-driver`: the in-memory CredentialsDriver mock on a Unix socket,
//! serving `mock-static` and `mock-exchange` (subject tokens starting with `valid-`).

use std::process::ExitCode;

use clap::Parser;
use conformance::mock::{Faults, MockCredentials, parse_failure, serve_credentials};
use proto::cli::{LogArgs, SocketArgs};

/// An in-memory, conformant CredentialsDriver for tests, with injectable failures.
#[derive(Parser, Debug)]
#[command(name = "mock-credentials-driver", version, about, long_about = None)]
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
    let args: Args = proto::cli::parse("MOCK_CREDENTIALS_DRIVER");
    if let Err(error) = args.log.init() {
        eprintln!("mock-credentials-driver: {error}");
        return ExitCode::from(2);
    }
    let faults = Faults::default();
    for (rpc, code, count) in &args.fail {
        faults.fail_next(rpc, *code, *count).await;
    }
    let mock = MockCredentials::with_defaults(faults);
    match serve_credentials(&args.socket.socket_config(), mock, proto::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mock-credentials-driver: {error}");
            ExitCode::FAILURE
        }
    }
}
