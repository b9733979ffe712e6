//! `credentials-driver`: parse flags, start logging, serve until a shutdown signal.

use std::process::ExitCode;

use credentials_driver::{Args, ENV_PREFIX, check, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = proto::cli::parse(ENV_PREFIX);
    if args.check.check_config {
        return check(&args).finish("credentials-driver");
    }
    if let Err(error) = args.log.init() {
        eprintln!("credentials-driver: {error}");
        return ExitCode::from(2);
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "credentials-driver stopped");
            ExitCode::FAILURE
        }
    }
}
