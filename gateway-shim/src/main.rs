//! `gateway-shim`: parse flags, start logging, run until a shutdown signal.

use std::process::ExitCode;

use gateway_shim::{Args, ENV_PREFIX, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = proto::cli::parse(ENV_PREFIX);
    if let Err(error) = args.log.init() {
        eprintln!("gateway-shim: {error}");
        return ExitCode::from(2);
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "gateway-shim stopped");
            eprintln!("gateway-shim: {error}");
            ExitCode::FAILURE
        }
    }
}
