//! `compute-driver`: parse flags, start logging, serve until a shutdown signal.

use std::process::ExitCode;

use compute_driver::{Args, ENV_PREFIX, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = proto::cli::parse(ENV_PREFIX);
    if let Err(error) = args.log.init() {
        eprintln!("compute-driver: {error}");
        return ExitCode::from(2);
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "compute-driver stopped");
            eprintln!("compute-driver: {error}");
            ExitCode::FAILURE
        }
    }
}
